#!/usr/bin/env bash
# Damon front-end black-box suite: builds switchboard, starts it with the
# Damon TCP listener on a free loopback port (ping interval 300 ms), and
# runs the Node tests (node:test, no npm dependencies) against it.
#
#   tests/damon/run.sh                   # every *.test.mjs here
#   tests/damon/run.sh damon.test.mjs    # some files
#
# Env: SWITCHBOARD_BIN (skip the build), DAMON_TIMEOUT (whole run, s, default 120),
# DAMON_CLUSTER=redis|nats (three nodes of one cluster, clients spread over them).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

source "$repo/tests/lib.sh"
require_tools node go

tmp="$(mktemp -d "${TMPDIR:-/tmp}/switchboard-damon.XXXXXX")"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

switchboard_bin "$tmp" || exit 1
bin="$SWITCHBOARD_BIN"

token="t-$RANDOM$RANDOM"
if [ -n "${DAMON_CLUSTER:-}" ]; then
  # DAMON_CLUSTER=redis|nats: three nodes of one cluster on that engine
  # (tests/clusternodes.mjs), the clients spread over them in turn.
  require_tools redis-server
  cat >"$tmp/template.json" <<JSON
{"listen": "127.0.0.1:\$HTTP_PORT", "log": {"level": "debug"}, "shutdown": {"timeout": "3s"},
 "limits": {"connection_rate": {"per_second": 0}}, "pusher": {"enabled": false}, "talo": {"enabled": false},
 "damon": {"enabled": true, "listen": "127.0.0.1:\$EXTRA_PORT", "token": "$token", "ping_interval": "300ms"}}
JSON
  node "$repo/tests/clusternodes.mjs" "$DAMON_CLUSTER" 3 "$tmp/template.json" "$tmp/cluster" &
  server_pid=$!
  until [ -f "$tmp/cluster/nodes.json" ]; do
    kill -0 "$server_pid" 2>/dev/null || { echo "run.sh: the $DAMON_CLUSTER cluster did not start" >&2; exit 1; }
    sleep 0.1
  done
  damon_port="$(node -e 'console.log(require(process.argv[1]).map((n) => n.extra).join(","))' "$tmp/cluster/nodes.json")"
  echo "damon on a 3-node $DAMON_CLUSTER cluster, TCP ports $damon_port"
else
# Two free loopback ports from the OS (HTTP and Damon TCP).
read -r http_port damon_port < <(node -e '
const net = require("net");
const a = net.createServer().listen(0, "127.0.0.1", () => {
  const b = net.createServer().listen(0, "127.0.0.1", () => {
    console.log(a.address().port, b.address().port); a.close(); b.close();
  });
});')
cat >"$tmp/config.yaml" <<YAML
listen: "127.0.0.1:$http_port"
log: {level: debug}
shutdown: {timeout: 3s}
limits: {connection_rate: {per_second: 0}}  # many connections from 127.0.0.1
pusher: {enabled: false}
talo: {enabled: false}  # no store file where the suite runs
damon:
  enabled: true
  listen: "127.0.0.1:$damon_port"
  token: "$token"
  ping_interval: 300ms
YAML

"$bin" serve -config "$tmp/config.yaml" >"$tmp/server.log" 2>&1 &
server_pid=$!

# Ready when /readyz answers 200 (the Damon listener is bound before that).
node -e '
const url = process.argv[1], deadline = Date.now() + 20000;
(async () => {
  for (;;) {
    try { const r = await fetch(url); if (r.status === 200) return; } catch {}
    if (Date.now() > deadline) { console.error("server not ready"); process.exit(1); }
    await new Promise((r) => setTimeout(r, 50));
  }
})();' "http://127.0.0.1:$http_port/readyz" || { cat "$tmp/server.log" >&2; exit 1; }
fi

cd "$here"
files=("$@")
[ ${#files[@]} -gt 0 ] || files=(*.test.mjs)
set +e
DAMON_HOST=127.0.0.1 DAMON_PORT="$damon_port" DAMON_TOKEN="$token" DAMON_PING_MS=300 \
  timeout --kill-after=10 "${DAMON_TIMEOUT:-120}" \
  node --test --test-reporter=spec --test-concurrency=1 "${files[@]}"
rc=$?
set -e
if [ $rc -ne 0 ]; then
  for log in "$tmp/server.log" "$tmp"/cluster/node*/server.log; do
    [ -f "$log" ] || continue
    echo "--- $log (last 80 lines) ---" >&2
    tail -n 80 "$log" >&2
  done
fi
exit $rc
