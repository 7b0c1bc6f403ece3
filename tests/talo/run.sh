#!/usr/bin/env bash
# Black-box tests of Switchboard's Talo Socket: the Godot plugin's and the
# Unity package's HTTP and WebSocket traffic replayed with fetch and ws.
# Builds the server (or takes SWITCHBOARD_BIN); each test file starts it
# with a configuration of its own (harness.mjs: temporary SQLite store,
# game and key made with `switchboard talo create-game/create-key`).
#
#   tests/talo/run.sh                     # every *.test.mjs
#   tests/talo/run.sh flows.test.mjs      # some files
#
# Env: TALO_CLUSTER=redis|nats (each file's server is a 3-node cluster on
# that engine with a shared PostgreSQL store; run.sh starts PostgreSQL),
# SWITCHBOARD_BIN (use this binary, skip the build), TALO_TIMEOUT (whole
# run, seconds, default 120), TALO_TIMEOUT_SCALE (multiplies the tests'
# upper bounds on waits, default 1), TALO_SERVER_LOG_LEVEL (default debug;
# the server log's tail is printed when a test fails).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cd "$here"

source "$repo/tests/lib.sh"
require_tools node npm go

npm ci --no-audit --no-fund --loglevel=error

tmp="$(mktemp -d "${TMPDIR:-/tmp}/switchboard-talo.XXXXXX")"
trap 'stop_postgres; rm -rf "$tmp"' EXIT

switchboard_bin "$tmp" || exit 1
if [ -n "${TALO_CLUSTER:-}" ]; then
  # TALO_CLUSTER=redis|nats: each file's server is three nodes of one
  # cluster on that engine sharing one PostgreSQL store (a database per
  # file on this run's PostgreSQL), requests and sockets spread over them.
  require_tools redis-server psql
  start_postgres "$tmp" || exit 1
  export TALO_PG_DSN="$PG_DSN"
  echo "talo on 3-node $TALO_CLUSTER clusters, store on PostgreSQL ($PG_DSN)"
fi
# The servers' directories (config, store, log) go under $tmp.
mkdir -p "$tmp/servers"
export TMPDIR="$tmp/servers"

files=("$@")
[ ${#files[@]} -gt 0 ] || files=(*.test.mjs)

set +e
timeout --kill-after=10 "${TALO_TIMEOUT:-120}" \
  node --test --test-reporter=spec --test-concurrency=3 --test-timeout=60000 "${files[@]}"
rc=$?
set -e
if [ $rc -ne 0 ]; then
  [ $rc -eq 124 ] || [ $rc -eq 137 ] && echo "run.sh: the suite exceeded ${TALO_TIMEOUT:-120} s" >&2
  for log in "$tmp"/servers/*/server.log "$tmp"/servers/*/node*/server.log; do
    [ -f "$log" ] || continue
    echo "---- $log (tail) ----" >&2
    tail -n 60 "$log" >&2
  done
fi
exit $rc
