#!/usr/bin/env bash
# Run the benchmark scenarios against one Pusher-protocol server on this
# machine and write one JSON report per scenario.
#
#   bench/run.sh                      # Switchboard, full suite (what `make bench` runs)
#   bench/run.sh --server soketi      # soketi (installed by bench/compare.sh)
#   BENCH_QUICK=1 bench/run.sh        # small, fast version of every scenario
#   bench/run.sh --only fanout-2k-1ch # one scenario
#
# Each scenario gets a freshly started server (so memory figures start from a
# clean baseline and one crash cannot spoil the rest), pinned to CPU 0 with
# taskset; the generator is pinned to CPU 1. Everything stays on loopback.
# This is a benchmark, not a test: it is never part of the test command or CI.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="$ROOT/bench/.bin"
SERVER=switchboard
RESULTS="$ROOT/bench/results"
ONLY=""
PORT="${BENCH_PORT:-6001}"
QUICK="${BENCH_QUICK:-0}"

usage() { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
while [ $# -gt 0 ]; do
	case "$1" in
	--server) SERVER="$2"; shift 2 ;;
	--results) RESULTS="$2"; shift 2 ;;
	--only) ONLY="$2"; shift 2 ;;
	--quick) QUICK=1; shift ;;
	-h | --help) usage 0 ;;
	*) echo "run.sh: unknown argument $1" >&2; usage 2 ;;
	esac
done

log() { printf '%s [bench] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

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
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; }

start_server() {
	if port_open; then
		die "something already listens on 127.0.0.1:$PORT; stop it first"
	fi
	local logf="$1"
	case "$SERVER" in
	switchboard)
		# Listen on loopback only; the default app is app-id/app-key/app-secret.
		# The generator opens thousands of connections from 8 loopback
		# addresses: the per-address connection rate limit is off.
		printf 'limits: {connection_rate: {per_second: 0}}\n' >"$BIN/switchboard.yaml"
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

# Scenario table: name and generator arguments. Quick mode shrinks every
# count and duration so the whole suite takes about a minute.
declare -a NAMES ARGS
add() { NAMES+=("$1"); ARGS+=("$2"); }
if [ "$QUICK" = 1 ]; then
	add fanout-2k-1ch "fanout --conns 500 --channels 1 --rates 2,10,40,160 --step 3s --pause 1s"
	add fanout-10k-1000ch "fanout --conns 1000 --channels 100 --rates 20,100,400 --step 3s --pause 1s"
	add idle-10k "idle --conns 2000 --channels 100 --settle 2s --hold 3s"
	add idle-19k "idle --conns 3000 --channels 100 --settle 2s --hold 3s"
	add churn "churn --rate 100 --duration 3s --hold 500ms"
	add client-events "client-events --conns 200 --channels 20 --rate 200 --duration 3s"
	add presence "presence --conns 100 --channels 5 --rate 20 --duration 3s --hold 1s"
else
	# 2,000 subscribers on one channel: each publish is 2,000 deliveries.
	add fanout-2k-1ch "fanout --conns 2000 --channels 1 --rates 1,2,5,10,15,20,25,30,35,40,50,60,70,80,90,100,120 --step 10s --max-p99 100ms"
	# 10,000 subscribers over 1,000 channels: each publish is 10 deliveries.
	add fanout-10k-1000ch "fanout --conns 10000 --channels 1000 --rates 20,50,100,250,500,1000,1500,2000,2500,3000,3500,4000,5000,6500,8000 --step 10s --max-p99 100ms"
	add idle-10k "idle --conns 10000 --channels 100 --settle 5s --hold 20s"
	add idle-19k "idle --conns 19000 --channels 100 --settle 5s --hold 20s"
	add churn "churn --rate 200 --duration 20s --hold 1s"
	# 2 client events/s per connection: under Pusher's 10/s per-connection limit.
	add client-events "client-events --conns 1000 --channels 100 --rate 2000 --duration 20s"
	add presence "presence --conns 500 --channels 10 --rate 50 --duration 20s --hold 2s"
fi

summary() {
	command -v jq >/dev/null || return 0
	jq -r '
	  def ms(x): (x*100|round/100|tostring) + "ms";
	  if .idle then "held \(.idle.held), server RSS/conn \(.idle.server_rss_per_conn_bytes // "-") B, lost \(.idle.lost)"
	  elif .churn then "\(.churn.completed_per_s) cycles/s, failed \(.churn.failed), connect p99 \(ms(.churn.connect_latency.p99_ms))"
	  elif .best then "best \(.best.deliveries_per_s) deliveries/s at \(.best.rate)/s, p99 \(ms(.best.latency.p99_ms))"
	  elif (.steps|length) > 0 then "\(.steps[-1].deliveries_per_s) deliveries/s, p99 \(ms(.steps[-1].latency.p99_ms)), missing \(.steps[-1].missing)"
	  else "no result" end' "$1"
}

failed=0
for i in "${!NAMES[@]}"; do
	name="${NAMES[$i]}"
	if [ -n "$ONLY" ] && [ "$ONLY" != "$name" ]; then continue; fi
	log "$SERVER: $name: starting server"
	start_server "$OUT/$name.server.log"
	log "$SERVER: $name: switchboard-bench ${ARGS[$i]}"
	# shellcheck disable=SC2086 # ARGS entries are word lists by design
	if "${GEN_PIN[@]}" "$GEN" ${ARGS[$i]} --port "$PORT" --server-pid "$SERVER_PID" \
		--label "$SERVER" --json --no-progress >"$OUT/$name.json" 2>"$OUT/$name.log"; then
		log "$SERVER: $name: $(summary "$OUT/$name.json")"
	else
		failed=$((failed + 1))
		log "$SERVER: $name: generator failed, see $OUT/$name.log"
		tail -5 "$OUT/$name.log" >&2 || true
	fi
	stop_server
	sleep 1
done
log "$SERVER: results in $OUT"
[ "$failed" = 0 ]
