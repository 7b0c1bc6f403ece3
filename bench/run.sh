#!/usr/bin/env bash
# Run the benchmark scenarios against one server on this machine and write
# one JSON result per scenario (bench/results/<server>/<scenario>.json; the
# schema: docs/bench/results.md).
#
#   bench/run.sh                                  # Switchboard, full suite
#   bench/run.sh --server soketi                  # soketi (installed by bench/compare.sh)
#   BENCH_QUICK=1 bench/run.sh                    # small, fast version of every scenario
#   bench/run.sh --scenario fanout-2k-1ch         # one scenario (comma list for several)
#   bench/run.sh --list                           # the scenario names
#
# `make bench` (bench/compare.sh) runs this for both servers and renders
# docs/benchmarks.md. Each scenario gets a freshly started server (so memory
# figures start from a clean baseline and one crash cannot spoil the rest),
# pinned to CPU 0 with taskset; the generator is pinned to CPU 1. Everything
# stays on loopback. The Damon, ws-room and write-floor scenarios run for
# Switchboard only. Progress lines go to the terminal and to
# <scenario>.log (every BENCH_PROGRESS_EVERY, default 10s).
# This is a benchmark, not a test: it is never part of the test command or CI.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="$ROOT/bench/.bin"
SERVER=switchboard
RESULTS="$ROOT/bench/results"
ONLY=""
PORT="${BENCH_PORT:-6001}"
DAMON_PORT="${BENCH_DAMON_PORT:-42069}"
DAMON_TOKEN="bench-token"
QUICK="${BENCH_QUICK:-0}"
PROGRESS_EVERY="${BENCH_PROGRESS_EVERY:-10s}"
LIST=0

usage() { sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
while [ $# -gt 0 ]; do
	case "$1" in
	--server) SERVER="$2"; shift 2 ;;
	--results) RESULTS="$2"; shift 2 ;;
	--scenario | --only) ONLY="$2"; shift 2 ;;
	--quick) QUICK=1; shift ;;
	--list) LIST=1; shift ;;
	-h | --help) usage 0 ;;
	*) echo "run.sh: unknown argument $1" >&2; usage 2 ;;
	esac
done

log() { printf '%s [bench] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Scenario table: name and generator arguments. Quick mode shrinks every
# count and duration so the whole suite takes a few minutes. Scenarios in
# SWITCHBOARD_ONLY are skipped for other servers; "write-floor" is the Go
# benchmark BenchmarkLoopbackWriteFloor, not the generator.
declare -a NAMES ARGS
add() { NAMES+=("$1"); ARGS+=("$2"); }
SWITCHBOARD_ONLY=" damon-global-2k damon-group-2k-20g dcl-2k-20rooms write-floor "
DAMON="damon --tcp 127.0.0.1:$DAMON_PORT --token $DAMON_TOKEN --senders 4"
if [ "$QUICK" = 1 ]; then
	add fanout-2k-1ch "fanout --conns 500 --channels 1 --rates 2,10,40,160 --step 3s --pause 1s"
	add fanout-10k-1000ch "fanout --conns 1000 --channels 100 --rates 20,100,400 --step 3s --pause 1s"
	add idle-10k "idle --conns 2000 --channels 100 --settle 2s --hold 3s"
	add idle-19k "idle --conns 3000 --channels 100 --settle 2s --hold 3s"
	add churn "churn --rate 100 --duration 3s --hold 500ms"
	add client-events "client-events --conns 200 --channels 20 --rate 200 --duration 3s"
	add presence "presence --conns 100 --channels 5 --rate 20 --duration 3s --hold 1s"
	add damon-global-2k "$DAMON --intent GLOBAL --conns 300 --groups 1 --rates 5,20,80 --step 3s --pause 1s"
	add damon-group-2k-20g "$DAMON --intent GROUP --conns 300 --groups 10 --rates 20,100,400 --step 3s --pause 1s"
	add dcl-2k-20rooms "dcl --conns 200 --rooms 4 --rates 20,100,400 --step 3s --pause 1s"
	add write-floor "-test.benchtime 100x"
	FLOOR_PACED_ROUNDS=3
else
	# 2,000 subscribers on one channel: each publish is 2,000 deliveries.
	add fanout-2k-1ch "fanout --conns 2000 --channels 1 --rates 1,2,5,10,15,20,25,30,35,40,50,60,70,80,90,100,120,140,160,200 --step 10s --max-p99 100ms"
	# 10,000 subscribers over 1,000 channels: each publish is 10 deliveries.
	add fanout-10k-1000ch "fanout --conns 10000 --channels 1000 --rates 20,50,100,250,500,1000,1500,2000,2500,3000,3500,4000,5000,6500,8000 --step 10s --max-p99 100ms"
	add idle-10k "idle --conns 10000 --channels 100 --settle 5s --hold 20s"
	add idle-19k "idle --conns 19000 --channels 100 --settle 5s --hold 20s"
	add churn "churn --rate 200 --duration 20s --hold 1s"
	# 2 client events/s per connection: under Pusher's 10/s per-connection limit.
	add client-events "client-events --conns 1000 --channels 100 --rate 2000 --duration 20s"
	add presence "presence --conns 500 --channels 10 --rate 50 --duration 20s --hold 2s"
	# Damon GLOBAL: each EVENT reaches all 2,004 connections (senders too),
	# like fanout-2k-1ch; GROUP: 20 groups of 100, each EVENT 100 deliveries.
	# --settle 12s: the idle RSS is read once the connections could park
	# (ParkAfter, 2 s, after a handshake of several messages) and the
	# heap trimmer has run (every 5 s), as the idle scenarios wait too.
	add damon-global-2k "$DAMON --intent GLOBAL --conns 2000 --groups 1 --settle 12s --rates 1,2,5,10,15,20,25,30,35,40,50,60,70,80,90,100,120,140,160,200 --step 10s --max-p99 100ms"
	add damon-group-2k-20g "$DAMON --intent GROUP --conns 2000 --groups 20 --settle 12s --rates 20,50,100,250,500,1000,1500,2000,2500,3000,3500,4000,5000 --step 10s --max-p99 100ms"
	# ws-room: 20 rooms of 100 peers (the default room_capacity is 150);
	# each update reaches the other 99 peers of its room.
	add dcl-2k-20rooms "dcl --conns 2000 --rooms 20 --settle 12s --rates 20,50,100,250,500,1000,1500,2000,2500,3000,3500,4000,5000 --step 10s --max-p99 100ms"
	add write-floor "-test.benchtime 1000x"
	FLOOR_PACED_ROUNDS=30
fi

if [ "$LIST" = 1 ]; then
	printf '%s\n' "${NAMES[@]}"
	exit 0
fi
if [ -n "$ONLY" ]; then
	for want in ${ONLY//,/ }; do
		printf '%s\n' "${NAMES[@]}" | grep -qx -- "$want" || die "unknown scenario $want (bench/run.sh --list)"
	done
fi

summary() {
	command -v jq >/dev/null || return 0
	jq -r '
	  def ms(x): (x*100|round/100|tostring) + "ms";
	  if .go_bench then (.go_bench | map("\(.name): \(.metrics["cpu-ns/delivery"] // "-") cpu-ns/delivery") | join(", "))
	  elif .best and .idle then "RSS/idle conn \(.idle.server_rss_per_conn_bytes // "-") B; best \(.best.deliveries_per_s) deliveries/s at \(.best.rate)/s, p99 \(ms(.best.latency.p99_ms)), \(.best.server_cpu_us_per_delivery // "-") µs/delivery"
	  elif .idle then "held \(.idle.held), server RSS/conn \(.idle.server_rss_per_conn_bytes // "-") B, lost \(.idle.lost)"
	  elif .churn then "\(.churn.completed_per_s) cycles/s, failed \(.churn.failed), connect p99 \(ms(.churn.connect_latency.p99_ms))"
	  elif .best then "best \(.best.deliveries_per_s) deliveries/s at \(.best.rate)/s, p99 \(ms(.best.latency.p99_ms))"
	  elif (.steps|length) > 0 then "\(.steps[-1].deliveries_per_s) deliveries/s, p99 \(ms(.steps[-1].latency.p99_ms)), missing \(.steps[-1].missing)"
	  else "no result" end' "$1"
}

OUT="$RESULTS/$SERVER"
mkdir -p "$BIN" "$OUT"
# Build output and results are artifacts, never committed.
printf '*\n' >"$BIN/.gitignore"
[ -f "$RESULTS/.gitignore" ] || printf '*\n' >"$RESULTS/.gitignore"

# Both processes get the largest open-file limit allowed: 19,000 idle
# connections need 19,000 descriptors on each side.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# CPU pinning: server on CPU 0, generator on CPU 1, when there are two CPUs.
SRV_PIN=() GEN_PIN=()
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
	SRV_PIN=(taskset -c 0)
	GEN_PIN=(taskset -c 1)
else
	log "warning: no taskset or fewer than 2 CPUs; server and generator share CPUs"
fi

log "building the load generator"
(cd "$ROOT" && go build -o "$BIN/switchboard-bench" ./cmd/switchboard-bench)
GEN="$BIN/switchboard-bench"

case "$SERVER" in
switchboard)
	log "building switchboard"
	(cd "$ROOT" && go build -o "$BIN/switchboard" ./cmd/switchboard) || die "cmd/switchboard does not build"
	;;
soketi)
	SOKETI_JS="$ROOT/bench/soketi/node_modules/@soketi/soketi/bin/server.js"
	[ -f "$SOKETI_JS" ] || die "soketi is not installed; run bench/compare.sh (or: cd bench/soketi && npm install)"
	;;
*) die "unknown server $SERVER (switchboard or soketi)" ;;
esac

SERVER_PID=""
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/${2:-$PORT}") 2>/dev/null; }

start_server() {
	if port_open; then
		die "something already listens on 127.0.0.1:$PORT; stop it first"
	fi
	local logf="$1"
	case "$SERVER" in
	switchboard)
		if port_open "" "$DAMON_PORT"; then
			die "something already listens on 127.0.0.1:$DAMON_PORT (Damon TCP); stop it or set BENCH_DAMON_PORT"
		fi
		# Listen on loopback only; the default app is app-id/app-key/app-secret.
		# The generator opens thousands of connections from 8 loopback
		# addresses: the per-address connection rate limit is off, and so is
		# the API rate limit (the fan-out ramps publish up to 8,000/s). Damon
		# gets the token the damon scenarios identify with; Talo's store
		# lives with the build output.
		cat >"$BIN/switchboard.yaml" <<-EOF
			limits: {connection_rate: {per_second: 0}, api_rate: {per_second: 0}}
			damon: {enabled: true, listen: "127.0.0.1:$DAMON_PORT", token: "$DAMON_TOKEN"}
			talo: {store_path: "$BIN/talo.db"}
		EOF
		SWITCHBOARD_LISTEN="127.0.0.1:$PORT" SWITCHBOARD_LOG_LEVEL=warn \
			"${SRV_PIN[@]}" "$BIN/switchboard" serve -config "$BIN/switchboard.yaml" >"$logf" 2>&1 &
		;;
	soketi)
		# soketi.json keeps the WebSocket/HTTP server, the metrics server and
		# the UDP discovery on 127.0.0.1 and enables client events.
		SOKETI_PORT="$PORT" "${SRV_PIN[@]}" node "$SOKETI_JS" start --config="$ROOT/bench/soketi/soketi.json" >"$logf" 2>&1 &
		;;
	esac
	SERVER_PID=$!
	for _ in $(seq 1 150); do
		if port_open; then
			sleep 0.5 # let it finish starting up after the listen
			return 0
		fi
		kill -0 "$SERVER_PID" 2>/dev/null || { tail -20 "$logf" >&2; die "$SERVER exited during start-up"; }
		sleep 0.2
	done
	die "$SERVER did not listen on $PORT within 30 s"
}

stop_server() {
	[ -n "$SERVER_PID" ] || return 0
	kill -TERM "$SERVER_PID" 2>/dev/null || true
	for _ in $(seq 1 50); do
		kill -0 "$SERVER_PID" 2>/dev/null || break
		sleep 0.2
	done
	kill -KILL "$SERVER_PID" 2>/dev/null || true
	wait "$SERVER_PID" 2>/dev/null || true
	SERVER_PID=""
}
trap stop_server EXIT INT TERM

# write_floor runs BenchmarkLoopbackWriteFloor (internal/transport) pinned
# to the server's CPU: the bare cost of one loopback write per recipient,
# measured in the same suite as the protocol fan-outs it is compared with.
# Its remote sub-benchmarks put the readers on the generator's CPU.
write_floor() {
	local name="$1" args="$2" cmd="$3" readers=""
	[ ${#GEN_PIN[@]} -gt 0 ] && readers="${GEN_PIN[2]}"
	(cd "$ROOT" && go test -c -o "$BIN/transport.test" ./internal/transport/) || return 1
	# shellcheck disable=SC2086 # args is a word list by design
	# The 2,000-reader runs at the slow steps' pace take a second per round
	# at 1/s, so they run apart with FLOOR_PACED_ROUNDS rounds.
	(cd "$ROOT/internal/transport" && SWITCHBOARD_FLOOR_READERS_CPUS="$readers" "${SRV_PIN[@]}" "$BIN/transport.test" -test.run '^$' \
		-test.bench 'LoopbackWriteFloor' -test.skip 'LoopbackWriteFloor/2000subs' $args &&
		SWITCHBOARD_FLOOR_READERS_CPUS="$readers" "${SRV_PIN[@]}" "$BIN/transport.test" -test.run '^$' \
			-test.bench 'LoopbackWriteFloor/2000subs-remote-every' -test.benchtime "${FLOOR_PACED_ROUNDS}x") >"$OUT/$name.log" 2>&1 || return 1
	"$GEN" gobench --label "$SERVER" --run "$name" --command "$cmd" <"$OUT/$name.log" >"$OUT/$name.json"
}

failed=0
for i in "${!NAMES[@]}"; do
	name="${NAMES[$i]}"
	if [ -n "$ONLY" ] && [[ ",$ONLY," != *",$name,"* ]]; then continue; fi
	if [ "$SERVER" != switchboard ] && [[ "$SWITCHBOARD_ONLY" == *" $name "* ]]; then
		log "$SERVER: $name: Switchboard only, skipped"
		continue
	fi
	cmd="bench/run.sh --server $SERVER --scenario $name"
	[ "$QUICK" = 1 ] && cmd="BENCH_QUICK=1 $cmd"
	if [ "$name" = write-floor ]; then
		log "$SERVER: $name: go test -bench LoopbackWriteFloor ${ARGS[$i]} ./internal/transport/"
		if write_floor "$name" "${ARGS[$i]}" "$cmd"; then
			log "$SERVER: $name: $(summary "$OUT/$name.json")"
		else
			failed=$((failed + 1))
			log "$SERVER: $name: the benchmark failed, see $OUT/$name.log"
		fi
		continue
	fi
	log "$SERVER: $name: starting server"
	start_server "$OUT/$name.server.log"
	log "$SERVER: $name: switchboard-bench ${ARGS[$i]}"
	# Progress and log lines go to the terminal and to the scenario's log.
	# shellcheck disable=SC2086 # ARGS entries are word lists by design
	if "${GEN_PIN[@]}" "$GEN" ${ARGS[$i]} --port "$PORT" --server-pid "$SERVER_PID" \
		--label "$SERVER" --run "$name" --command "$cmd" --progress-every "$PROGRESS_EVERY" \
		--json >"$OUT/$name.json" 2> >(tee "$OUT/$name.log" >&2); then
		log "$SERVER: $name: $(summary "$OUT/$name.json")"
	else
		failed=$((failed + 1))
		log "$SERVER: $name: generator failed, see $OUT/$name.log"
	fi
	stop_server
	sleep 1
done
log "$SERVER: results in $OUT"
[ "$failed" = 0 ]
