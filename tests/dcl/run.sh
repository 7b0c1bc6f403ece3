#!/usr/bin/env bash
# Black-box tests of Switchboard's Decentraland ws-room transport with the
# real Decentraland libraries (@dcl/protocol codec, @dcl/crypto auth chains,
# ws). Builds the server, starts it on a free loopback port with a config
# file, runs `node --test`, stops it.
#
#   tests/dcl/run.sh                     # every *.test.mjs
#   tests/dcl/run.sh rooms.test.mjs      # some files
#
# Env: SWITCHBOARD_BIN (use this binary, skip the build), DCL_TIMEOUT (whole
# run, seconds, default 300), DCL_TIMEOUT_SCALE (multiplies the tests' upper
# bounds on waits, default 1; 3 on a cluster), DCL_CLUSTER=redis|nats (three
# nodes of one cluster, each socket on the next node), DCL_SERVER_LOG_LEVEL (default debug, so a failure shows each close with its time; the log
# is printed when a test fails).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cd "$here"

source "$repo/tests/lib.sh"
require_tools node npm go

npm ci --no-audit --no-fund --loglevel=error

tmp="$(mktemp -d "${TMPDIR:-/tmp}/switchboard-dcl.XXXXXX")"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

switchboard_bin "$tmp" || exit 1
bin="$SWITCHBOARD_BIN"

if [ -n "${DCL_CLUSTER:-}" ]; then
  # DCL_CLUSTER=redis|nats: three nodes of one cluster on that engine
  # (tests/clusternodes.mjs); the harness opens each socket on the next node.
  require_tools redis-server
  cat >"$tmp/template.json" <<JSON
{"listen": "127.0.0.1:\$HTTP_PORT", "log": {"level": "${DCL_SERVER_LOG_LEVEL:-debug}"},
 "limits": {"connection_rate": {"per_second": 0}}, "pusher": {"enabled": false}, "damon": {"enabled": false},
 "talo": {"enabled": false},
 "dcl": {"enabled": true, "path_prefixes": ["/rooms", "/mini-comms"], "handshake_timeout": "1s",
         "max_message_bytes": 16384, "idle_timeout": "90s", "room_capacity": 150}}
JSON
  node "$repo/tests/clusternodes.mjs" "$DCL_CLUSTER" 3 "$tmp/template.json" "$tmp/cluster" &
  server_pid=$!
  until [ -f "$tmp/cluster/nodes.json" ]; do
    kill -0 "$server_pid" 2>/dev/null || { echo "run.sh: the $DCL_CLUSTER cluster did not start" >&2; exit 1; }
    sleep 0.1
  done
  ports="$(node -e 'console.log(require(process.argv[1]).map((n) => n.http).join(" "))' "$tmp/cluster/nodes.json")"
  DCL_WS_URL="" DCL_HTTP_URL=""
  for p in $ports; do
    DCL_WS_URL+="${DCL_WS_URL:+,}ws://127.0.0.1:$p"
    DCL_HTTP_URL+="${DCL_HTTP_URL:+,}http://127.0.0.1:$p"
  done
  export DCL_WS_URL DCL_HTTP_URL
  # Cross-node hops on a busy 2-core machine: longer upper bounds on waits.
  export DCL_TIMEOUT_SCALE="${DCL_TIMEOUT_SCALE:-3}"
  echo "switchboard: 3-node $DCL_CLUSTER cluster on ports $ports"
else
port="$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
cat >"$tmp/config.yaml" <<EOF
listen: 127.0.0.1:$port
log:
  level: ${DCL_SERVER_LOG_LEVEL:-debug}
limits:
  connection_rate: {per_second: 0}  # many connections from 127.0.0.1
pusher:
  enabled: false
damon:
  enabled: false
talo:
  enabled: false  # no store file in the suite's directory
dcl:
  enabled: true
  path_prefixes: [/rooms, /mini-comms]
  handshake_timeout: 1s
  max_message_bytes: 16384
  idle_timeout: 90s
  room_capacity: 150
EOF

"$bin" serve -config "$tmp/config.yaml" >"$tmp/server.log" 2>&1 &
server_pid=$!
for i in $(seq 1 100); do
  if curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "run.sh: the server exited:" >&2; cat "$tmp/server.log" >&2; exit 1
  fi
  [ "$i" = 100 ] && { echo "run.sh: the server is not ready after 10 s" >&2; cat "$tmp/server.log" >&2; exit 1; }
  sleep 0.1
done
echo "switchboard on 127.0.0.1:$port (pid $server_pid)"

  export DCL_WS_URL="ws://127.0.0.1:$port"
  export DCL_HTTP_URL="http://127.0.0.1:$port"

fi

files=("$@")
[ ${#files[@]} -gt 0 ] || files=(*.test.mjs)

set +e
timeout --kill-after=10 "${DCL_TIMEOUT:-300}" \
  node --test --test-reporter=spec --test-concurrency=4 --test-timeout=120000 "${files[@]}" 2>&1 | tee "$tmp/tests.out"
rc=${PIPESTATUS[0]}
set -e
if [ $rc -ne 0 ]; then
  [ $rc -eq 124 ] || [ $rc -eq 137 ] && echo "run.sh: the suite exceeded ${DCL_TIMEOUT:-300} s" >&2
  for log in "$tmp/server.log" "$tmp"/cluster/node*/server.log; do
    [ -f "$log" ] || continue
    echo "---- $log ----" >&2
    tail -n 200 "$log" >&2
  done
  # Last, so that a CI log's tail shows which assertion failed, not only
  # the servers' last lines.
  echo "---- the failures again ----" >&2
  sed -n '/failing tests:/,$p' "$tmp/tests.out" | head -n 150 >&2
fi
if ! kill -0 "$server_pid" 2>/dev/null; then
  echo "run.sh: the server died during the tests" >&2
  rc=1
fi
exit $rc
