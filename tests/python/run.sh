#!/usr/bin/env bash
# Strict Python WebSocket check of Switchboard's Pusher protocol.
#
#   tests/python/run.sh
#
# Uses Debian's python3-websockets with /usr/bin/python3 (installs it with
# apt-get when missing), builds the server unless SWITCHBOARD_BIN is set,
# and runs test_pusher_strict.py, which starts and stops its own server (a
# 3-node cluster of that engine with PY_CLUSTER=redis|nats).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
PY=/usr/bin/python3

if ! "$PY" -c 'import websockets' 2>/dev/null; then
  echo "installing python3-websockets (Debian package)..."
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-websockets >/dev/null
fi
"$PY" -c 'import websockets, sys; print("python", sys.version.split()[0], "websockets", websockets.__version__)'

tmp="$(mktemp -d "${TMPDIR:-/tmp}/switchboard-py-run.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
source "$repo/tests/lib.sh"
# PY_CLUSTER=redis|nats: each server is a 3-node cluster (tests/clusternodes.mjs).
[ -z "${PY_CLUSTER:-}" ] || require_tools node redis-server
switchboard_bin "$tmp" || exit 1

cd "$here"
export PYTHONDONTWRITEBYTECODE=1
exec timeout --kill-after=10 "${PY_TIMEOUT:-180}" "$PY" -m unittest -v test_pusher_strict
