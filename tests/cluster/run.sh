#!/usr/bin/env bash
# Cluster failure tests (issue 8): 3-node Switchboard clusters on real
# redis-server, a real external nats-server and embedded NATS, with a node
# cut off through a TCP proxy, the stream leader killed, the broker
# restarted, and a rolling SIGTERM restart under a reconnect storm.
#
#   tests/cluster/run.sh                       # every *.test.mjs here
#   tests/cluster/run.sh partition.test.mjs    # some files
#
# Env: CLUSTER_FULL=1 (the long mode: the 5,000-connection storm;
# `make test-cluster-failure-long`), CLUSTER_STORM (connections in the
# storm; default 300, 5000 with CLUSTER_FULL), CLUSTER_TIMEOUT (whole run,
# seconds, default 420), SWITCHBOARD_BIN, NATS_SERVER_BIN (skip the builds).
# The clients and the harness are tests/pusher's (its node_modules).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

source "$repo/tests/lib.sh"
require_tools node npm go redis-server

(cd "$repo/tests/pusher" && npm ci --no-audit --no-fund --loglevel=error)

tmp="$(mktemp -d "${TMPDIR:-/tmp}/switchboard-cluster-run.XXXXXX")"
# CLUSTER_KEEP=1 keeps the servers' configs and logs for a look afterwards.
[ -n "${CLUSTER_KEEP:-}" ] || trap 'rm -rf "$tmp"' EXIT
switchboard_bin "$tmp" || exit 1

# "External NATS" is a plain nats-server at the version go.mod pins
# (Debian's 2.9 lacks the per-message TTL the engine needs).
if [ -z "${NATS_SERVER_BIN:-}" ]; then
  echo "building nats-server..." >&2
  (cd "$repo" && go build -o "$tmp/nats-server" github.com/nats-io/nats-server/v2) || { echo "run.sh: go build nats-server failed" >&2; exit 1; }
  NATS_SERVER_BIN="$tmp/nats-server"
fi
export NATS_SERVER_BIN

# The storm opens many sockets from this process.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

cd "$here"
files=("$@")
[ ${#files[@]} -gt 0 ] || files=(*.test.mjs)

export TMPDIR="$tmp"
set +e
# One file at a time: each runs 3-node clusters, some kill brokers, and the
# machine may have two cores.
timeout --kill-after=10 "${CLUSTER_TIMEOUT:-420}" \
  node --test --test-reporter=spec --test-concurrency=1 --test-timeout=300000 "${files[@]}" \
  2>&1 | tee "$tmp/report.txt"
rc=${PIPESTATUS[0]}
set -e
if [ $rc -ne 0 ]; then
  for log in "$tmp"/switchboard-pusher-*/server.log "$tmp"/switchboard-natsd-*/nats-server.log; do
    [ -f "$log" ] || continue
    echo "---- last lines of $log"
    tail -n 40 "$log"
  done
  # The end of the output is what CI shows: name the failing tests there.
  echo "---- the failing tests (repeated from the report above)"
  sed -n '/failing tests:/,$p' "$tmp/report.txt" | head -n 80
fi
if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
  echo "run.sh: the suite exceeded ${CLUSTER_TIMEOUT:-420} s" >&2
fi
exit $rc
