#!/usr/bin/env bash
# Measures every WebSocket library mode of wsbench-server and prints a
# markdown table. Results feed docs/websocket-library.md.
#
#   bench/wslib/run.sh
#
# Knobs (environment): LIBS, IDLE_CONNS (10000), FANOUT_SUBS (2000),
# FANOUT_MSGS (500), MSG_SIZE (100), ROUNDS (3), PORT (9100; PORT+1 is the
# control port), OUT (directory for raw logs; a temp dir by default),
# REPORT_ONLY=1 (reprint the table from the logs already in OUT).
#
# gobwas-prebuilt-nobatch is a diagnostic row, not a candidate: the
# prebuilt design with writev replaced by one write(2) per frame, to show how
# much of the fan-out gain is batching.
#
# Each mode runs in a fresh server process per phase (idle, fan-out) so that
# one phase's heap does not leak into the other's numbers. The server is
# pinned to CPU 0 and the client to CPU 1 when taskset and 2+ CPUs exist.
# Everything talks over loopback only, and every client run is bounded by
# both its own -timeout and timeout(1).
set -euo pipefail
cd "$(dirname "$0")"

LIBS=${LIBS:-"gws gorilla gobwas coder gobwas-prebuilt gobwas-prebuilt-nobatch"}
IDLE_CONNS=${IDLE_CONNS:-10000}
FANOUT_SUBS=${FANOUT_SUBS:-2000}
FANOUT_MSGS=${FANOUT_MSGS:-500}
MSG_SIZE=${MSG_SIZE:-100}
ROUNDS=${ROUNDS:-3}
PORT=${PORT:-9100}
CTL_PORT=$((PORT + 1))
OUT=${OUT:-$(mktemp -d -t wslib-bench.XXXXXX)}
mkdir -p "$OUT"

PIN_SERVER=()
PIN_CLIENT=()
if command -v taskset >/dev/null 2>&1 && [ "$(nproc)" -ge 2 ]; then
	PIN_SERVER=(taskset -c 0)
	PIN_CLIENT=(taskset -c 1)
fi

srv_pid=""
stop_server() {
	if [ -n "$srv_pid" ]; then
		kill "$srv_pid" 2>/dev/null || true
		wait "$srv_pid" 2>/dev/null || true
		srv_pid=""
	fi
}
trap stop_server EXIT

# run_phase LIB PHASE CLIENT-ARGS...: one fresh server, one client run.
run_phase() {
	local lib=$1 phase=$2
	shift 2
	echo "-- $lib / $phase"
	"${PIN_SERVER[@]}" bin/wsbench-server -lib "$lib" \
		-addr "127.0.0.1:$PORT" -ctl "127.0.0.1:$CTL_PORT" \
		>"$OUT/$lib-$phase.server.log" 2>&1 &
	srv_pid=$!
	timeout 300 "${PIN_CLIENT[@]}" bin/wsbench-client \
		-ws "ws://127.0.0.1:$PORT/" -ctl "http://127.0.0.1:$CTL_PORT" \
		-mode "$phase" -timeout 280s "$@" | tee "$OUT/$lib-$phase.client.log"
	stop_server
	sleep 1 # let the closed sockets drain before the next server starts
}

measure() {
	echo "== machine: nproc=$(nproc) $(go version | cut -d' ' -f3-) kernel=$(uname -r)"
	echo "== cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
	echo "== nofile: soft=$(ulimit -Sn) hard=$(ulimit -Hn); pinning: ${PIN_SERVER[*]:-none} / ${PIN_CLIENT[*]:-none}"
	echo "== raw logs: $OUT"
	echo "== loadavg at start: $(cut -d' ' -f1-3 /proc/loadavg)"
	go build -o bin/ ./cmd/wsbench-server ./cmd/wsbench-client
	for lib in $LIBS; do
		run_phase "$lib" idle -conns "$IDLE_CONNS"
		run_phase "$lib" fanout -conns "$FANOUT_SUBS" -msgs "$FANOUT_MSGS" \
			-size "$MSG_SIZE" -rounds "$ROUNDS"
	done
	echo "== loadavg at end: $(cut -d' ' -f1-3 /proc/loadavg) (other load skews wall-clock rates most)"
}

# kv FILE KEY: value of KEY in the RESULT line of FILE.
kv() { grep '^RESULT' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }

# report prints the table from the RESULT lines in $OUT. Ratios are against
# the best mode in the same column of the same run, because the machine is
# too noisy to compare absolute numbers between runs.
report() {
	local rows="$OUT/rows.tsv" lib i f
	: >"$rows"
	for lib in $LIBS; do
		i="$OUT/$lib-idle.client.log" f="$OUT/$lib-fanout.client.log"
		printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$lib" \
			"$(kv "$i" per_conn_gc)" "$(kv "$i" per_conn_settled)" "$(kv "$i" goroutines)" \
			"$(kv "$f" deliveries_per_s)" "$(kv "$f" cpu_us_per_delivery)" >>"$rows"
	done
	echo
	echo "Idle: $IDLE_CONNS connections. Fan-out: $FANOUT_SUBS subscribers x $FANOUT_MSGS msgs of ${MSG_SIZE} B, median of $ROUNDS rounds."
	echo "Ratios (in parentheses) are against the best mode in the same column of this run."
	echo
	awk -F'\t' '
		{ lib[NR]=$1; gc[NR]=$2; st[NR]=$3; gr[NR]=$4; rate[NR]=$5; cpu[NR]=$6
		  if (NR==1 || $2<bgc) bgc=$2; if (NR==1 || $5>brate) brate=$5; if (NR==1 || $6<bcpu) bcpu=$6 }
		END {
			print "| mode | idle B/conn (after GC) | idle B/conn (no GC) | goroutines @idle | fan-out deliveries/s (wall) | server CPU µs/delivery | deliveries per server CPU-second |"
			print "|---|---:|---:|---:|---:|---:|---:|"
			for (i=1; i<=NR; i++)
				printf "| %s | %d (%.1fx) | %d | %d | %d (%.2fx) | %.3f (%.1fx) | %d |\n",
					lib[i], gc[i], gc[i]/bgc, st[i], gr[i], rate[i], rate[i]/brate,
					cpu[i], cpu[i]/bcpu, 1e6/cpu[i]
		}' "$rows"
}

if [ "${REPORT_ONLY:-0}" != 1 ]; then
	measure
fi
report
