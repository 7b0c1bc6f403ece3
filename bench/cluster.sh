#!/usr/bin/env bash
# Three-node cluster benchmark (issue 8): Switchboard on its Redis engine,
# Switchboard on its embedded NATS engine, and soketi on its Redis adapter,
# each as three processes on this machine sharing one redis-server.
#
#   bench/cluster.sh                         # every server, full length (steps of 20 s)
#   BENCH_QUICK=1 bench/cluster.sh           # short steps, small counts: for development
#   bench/cluster.sh --servers sb-redis      # some of: sb-redis sb-nats soketi
#   bench/cluster.sh --phases "ceiling kill" # some of: rr one ceiling damon kill
#   BENCH_STEP=10s bench/cluster.sh          # step length
#   BENCH_RAMP=2000,4000,8000 bench/cluster.sh     # ceiling ramp rates (publishes/s)
#
# Workload (sockudo's): 900 subscribers spread round-robin over the 3 nodes,
# 100 channels (9 subscribers each, 3 per node), so every publish is 9
# deliveries, 6 of them on another node than the one the HTTP publish went
# to. Per server it runs:
#   rr-3n       1,000 and 5,000 publishes/s, round-robin over the nodes' HTTP APIs
#   one-3n      the same, every publish to node 1
#   ceiling-3n  publish rate ramped (BENCH_RAMP) until a step misses a delivery
#               or its p99 exceeds BENCH_CEILING_P99 (500 ms): the highest
#               deliveries/s the 3 nodes sustain
#   ceiling-1n  the same ramp with every subscriber and publish on node 1 (the
#               other two idle in the cluster): the 1-node ceiling
#   damon       (Switchboard) 300 Damon clients over the nodes: store
#               operations per connect/disconnect (target 0)
#   kill        a presence member on node 3, one watcher on nodes 1 and 2;
#               SIGKILL node 3 and time member_removed on the watchers
# Switchboard runs also scrape /metrics (switchboard_cluster_*): store
# operations per subscribe, broker messages per publish.
#
# Nothing is pinned: the 3 nodes, redis-server and the generator share the
# machine's cores (a 2-core machine runs 5 busy processes on 2 cores), so
# the absolute figures are lower than on separate machines; the ratios
# between servers measured the same way are the comparable part.
# Results: bench/results-cluster/<server>/<phase>.json (git-ignored).
# Not a test: never run from the test command or CI.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="$ROOT/bench/.bin"
RESULTS="$ROOT/bench/results-cluster"
SERVERS="sb-redis sb-nats soketi"
PHASES="${BENCH_PHASES:-rr one ceiling damon kill}"
QUICK="${BENCH_QUICK:-0}"
NODE_TIMEOUT="${BENCH_NODE_TIMEOUT:-10s}"
CEIL_P99="${BENCH_CEILING_P99:-500ms}"
if [ "$QUICK" = 1 ]; then
	STEP="${BENCH_STEP:-4s}" FIXED="${BENCH_FIXED_RATES:-200,1000}" RAMP="${BENCH_RAMP:-500,1000,2000}"
	CONNS=90 CHANNELS=10 DAMON=30 KILL_WAIT=15s
else
	STEP="${BENCH_STEP:-20s}" FIXED="${BENCH_FIXED_RATES:-1000,5000}" RAMP="${BENCH_RAMP:-2000,3000,4000,5000,6000,8000,10000,13000,16000}"
	CONNS=900 CHANNELS=100 DAMON=300 KILL_WAIT=30s
fi

usage() { sed -n '2,35p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
while [ $# -gt 0 ]; do
	case "$1" in
	--servers) SERVERS="$2"; shift 2 ;;
	--phases) PHASES="$2"; shift 2 ;;
	--results) RESULTS="$2"; shift 2 ;;
	--quick) QUICK=1; STEP=4s FIXED=200,1000 RAMP=500,1000,2000 CONNS=90 CHANNELS=10 DAMON=30 KILL_WAIT=15s; shift ;;
	-h | --help) usage 0 ;;
	*) echo "cluster.sh: unknown argument $1" >&2; usage 2 ;;
	esac
done

log() { printf '%s [cluster] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

command -v redis-server >/dev/null || die "redis-server is required (apt-get install redis-server)"
command -v curl >/dev/null || die "curl is required"
mkdir -p "$BIN" "$RESULTS"
printf '*\n' >"$BIN/.gitignore"
printf '*\n' >"$RESULTS/.gitignore"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

WORK="$(mktemp -d "${TMPDIR:-/tmp}/sb-cluster-bench.XXXXXX")"
PIDS=()
REDIS_PID=""
cleanup() {
	for p in "${PIDS[@]}" $REDIS_PID; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}" $REDIS_PID; do
		for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null || true
	done
	# The nodes' logs outlive the run (results dir, git-ignored): a slow
	# reap is explained by them (BENCH_LOG_LEVEL=info shows NATS leaders).
	mkdir -p "$RESULTS/logs" && cp "$WORK"/*.log "$RESULTS/logs/" 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

# free_port asks the kernel for a free loopback port (there is a small race
# with other processes on the machine; start-up fails loudly if it is lost).
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_ready() { # url pid name
	for _ in $(seq 1 300); do
		if curl -fsS -o /dev/null --max-time 1 "$1" 2>/dev/null; then return 0; fi
		kill -0 "$2" 2>/dev/null || { tail -20 "$WORK/$3.log" >&2; die "$3 exited during start-up"; }
		sleep 0.2
	done
	tail -20 "$WORK/$3.log" >&2
	die "$3 not ready at $1 within 60 s"
}

log "building switchboard and the load generator"
(cd "$ROOT" && go build -o "$BIN/switchboard-bench" ./cmd/switchboard-bench && go build -o "$BIN/switchboard" ./cmd/switchboard)
GEN="$BIN/switchboard-bench"
SOKETI_JS="$ROOT/bench/soketi/node_modules/@soketi/soketi/bin/server.js"

REDIS_PORT="$(free_port)"
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$WORK" \
	>"$WORK/redis.log" 2>&1 &
REDIS_PID=$!
for _ in $(seq 1 100); do port_open "$REDIS_PORT" && break; sleep 0.1; done
port_open "$REDIS_PORT" || die "redis-server did not listen on $REDIS_PORT"
log "redis-server pid $REDIS_PID on 127.0.0.1:$REDIS_PORT"
redis_flush() { redis-cli -p "$REDIS_PORT" flushall >/dev/null 2>&1 || true; }

DAMON_TOKEN="bench-damon-token"
NODE_PORTS=() NODE_PIDS=()

start_switchboard() { # engine
	local engine="$1" routes="" i
	local np=() rp=()
	for i in 1 2 3; do np+=("$(free_port)"); rp+=("$(free_port)"); done
	for i in 0 1 2; do routes="$routes${routes:+, }nats-route://127.0.0.1:${rp[$i]}"; done
	NODE_PORTS=() NODE_PIDS=()
	for i in 0 1 2; do
		local cfg="$WORK/sb-$engine-$((i + 1)).yaml"
		{
			printf 'listen: 127.0.0.1:%s\n' "${np[$i]}"
			printf 'log: {level: %s}\n' "${BENCH_LOG_LEVEL:-warn}"
			# The generator opens hundreds of connections per second from a few
			# loopback addresses, and publishes up to 16,000 times a second to one
			# app: the connection and HTTP API rate limits are off.
			printf 'limits: {connection_rate: {per_second: 0}, api_rate: {per_second: 0}}\n'
			printf 'damon: {enabled: true, tcp: false, websocket: true, token: %s}\n' "$DAMON_TOKEN"
			printf 'talo: {enabled: false}\n'
			printf 'cluster:\n  engine: %s\n  node_name: bench%s\n  node_timeout: %s\n' "$engine" "$((i + 1))" "$NODE_TIMEOUT"
			if [ "$engine" = redis ]; then
				printf '  redis: {url: "redis://127.0.0.1:%s"}\n' "$REDIS_PORT"
			else
				printf '  nats: {embedded: true, listen: "127.0.0.1:%s", routes: [%s], store_dir: "%s"}\n' \
					"${rp[$i]}" "$routes" "$WORK/nats-$((i + 1))"
			fi
		} >"$cfg"
		"$BIN/switchboard" serve -config "$cfg" >"$WORK/sb-$engine-$((i + 1)).log" 2>&1 &
		NODE_PIDS+=($!)
		PIDS+=($!)
		NODE_PORTS+=("${np[$i]}")
	done
	for i in 0 1 2; do wait_ready "http://127.0.0.1:${NODE_PORTS[$i]}/readyz" "${NODE_PIDS[$i]}" "sb-$engine-$((i + 1))"; done
}

start_soketi() {
	[ -f "$SOKETI_JS" ] || die "soketi is not installed: (cd bench/soketi && npm install --no-package-lock)"
	NODE_PORTS=() NODE_PIDS=()
	local i p
	for i in 1 2 3; do
		p="$(free_port)"
		# Redis adapter for messages and cross-node queries; the rate limiter
		# and cache on Redis too, as soketi's docs advise for several nodes.
		# bench/soketi/soketi.json keeps every listener on 127.0.0.1.
		SOKETI_PORT="$p" SOKETI_ADAPTER_DRIVER=redis SOKETI_DB_REDIS_HOST=127.0.0.1 SOKETI_DB_REDIS_PORT="$REDIS_PORT" \
			SOKETI_RATE_LIMITER_DRIVER=redis SOKETI_CACHE_DRIVER=redis \
			node "$SOKETI_JS" start --config="$ROOT/bench/soketi/soketi.json" >"$WORK/soketi-$i.log" 2>&1 &
		NODE_PIDS+=($!)
		PIDS+=($!)
		NODE_PORTS+=("$p")
	done
	for i in 0 1 2; do wait_ready "http://127.0.0.1:${NODE_PORTS[$i]}/" "${NODE_PIDS[$i]}" "soketi-$((i + 1))"; done
}

stop_nodes() {
	local p
	for p in "${NODE_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${NODE_PIDS[@]}"; do
		for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
		kill -KILL "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	NODE_PIDS=()
}

nodes_list() { # [count]
	local n="${1:-3}" i out=""
	for i in $(seq 0 $((n - 1))); do out="$out${out:+,}127.0.0.1:${NODE_PORTS[$i]}"; done
	echo "$out"
}

failed=0
gen() { # server phase args...
	local server="$1" phase="$2"
	shift 2
	mkdir -p "$RESULTS/$server"
	log "$server: $phase: switchboard-bench $*"
	if "$GEN" "$@" --label "$server" --json --no-progress >"$RESULTS/$server/$phase.json" 2>"$RESULTS/$server/$phase.log"; then
		log "$server: $phase: $(summary "$RESULTS/$server/$phase.json")"
	else
		failed=$((failed + 1))
		log "$server: $phase: generator failed, see $RESULTS/$server/$phase.log"
		tail -5 "$RESULTS/$server/$phase.log" >&2 || true
	fi
}

summary() {
	command -v jq >/dev/null || return 0
	jq -r '
	  def r(x): (x*100|round/100|tostring);
	  if .cluster.kill then [.cluster.kill.watchers[] | "\(.node): " + (if .member_removed then "member_removed after \(.delay_ms) ms" else "no member_removed" end)] | join("; ")
	  elif .cluster.damon_store_ops_per_connect then "store ops per Damon connect \(.cluster.damon_store_ops_per_connect.ops_per_unit), per disconnect \(.cluster.damon_store_ops_per_disconnect.ops_per_unit // "-")"
	  else ([.steps[] as $s | .cluster.steps[] | select(.name == $s.name) |
	        "\($s.name): \($s.deliveries_per_s) dlv/s p50/p99/p99.9 \(r($s.latency.p50_ms))/\(r($s.latency.p99_ms))/\(r($s.latency.p99_9_ms)) ms, cross p99 \(r(.cross_node_latency.p99_ms)) ms, missing \($s.missing)" +
	        (if .broker_messages_per_publish then ", broker msgs/publish \(.broker_messages_per_publish)" else "" end) +
	        (if $s.pass then "" else " FAIL" end)] | join(" | ")) +
	       (if .cluster.store_ops_per_subscribe then " | store ops/subscribe \(.cluster.store_ops_per_subscribe.ops_per_unit)" else "" end)
	  end' "$1" 2>/dev/null || echo "(no summary)"
}

numsub_probe() { # server step: Redis pub/sub subscribers per channel, during the first step
	sleep $((10 + ${2%s}))
	{
		echo "# redis-cli PUBSUB NUMSUB (channel, subscribed connections), $(date -u +%H:%M:%S)"
		redis-cli -p "$REDIS_PORT" pubsub channels '*' | sort | head -6 | while read -r ch; do
			redis-cli -p "$REDIS_PORT" pubsub numsub "$ch" | paste -sd' '
		done
	} >"$RESULTS/$1/numsub.txt" 2>&1
}

want() { case " $PHASES " in *" $1 "*) return 0 ;; esac; return 1; }

run_server() {
	local server="$1" metrics=()
	case "$server" in
	sb-redis) redis_flush; start_switchboard redis; metrics=(--metrics) ;;
	sb-nats) start_switchboard nats; metrics=(--metrics) ;;
	soketi) redis_flush; start_soketi ;;
	*) die "unknown server $server (sb-redis, sb-nats, soketi)" ;;
	esac
	log "$server: nodes $(nodes_list) pids ${NODE_PIDS[*]}"
	local common=(--conns "$CONNS" --channels "$CHANNELS" --step "$STEP" --pause 2s --publish-workers 64)
	# Redis fans a PUBLISH out to every connection subscribed to the channel;
	# PUBSUB NUMSUB during the run says how many that is per channel.
	[ "$server" = sb-nats ] || ! want rr || numsub_probe "$server" "$STEP" &
	want rr && gen "$server" rr-3n cluster --nodes "$(nodes_list)" "${common[@]}" --rates "$FIXED" --keep-going --publish round-robin "${metrics[@]}"
	want one && gen "$server" one-3n cluster --nodes "$(nodes_list)" "${common[@]}" --rates "$FIXED" --keep-going --publish one --publish-node 0 "${metrics[@]}"
	want ceiling && gen "$server" ceiling-3n cluster --nodes "$(nodes_list)" "${common[@]}" --rates "$RAMP" --max-p99 "$CEIL_P99" --publish round-robin
	want ceiling && gen "$server" ceiling-1n cluster --nodes "$(nodes_list 1)" "${common[@]}" --rates "$RAMP" --max-p99 "$CEIL_P99" --publish one "${metrics[@]}"
	if [ "$server" != soketi ] && want damon; then
		SWITCHBOARD_DAMON_TOKEN="$DAMON_TOKEN" gen "$server" damon cluster-damon --nodes "$(nodes_list)" --conns "$DAMON"
	fi
	want kill && gen "$server" kill cluster-kill --nodes "$(nodes_list)" --victim 2 --victim-pid "${NODE_PIDS[2]}" --wait "$KILL_WAIT" --settle 1s
	stop_nodes
}

for s in $SERVERS; do
	log "=== $s ==="
	run_server "$s"
done
log "results in $RESULTS"
[ "$failed" = 0 ]
