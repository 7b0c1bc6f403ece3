#!/usr/bin/env bash
# The whole test suite. Installs what it needs on a fresh Debian machine
# (Go modules, npm packages, python3-websockets), then runs:
#   go    go vet + go test -race ./...
#   pusher  real clients in Node: pusher-js, pusher (server SDK), laravel-echo, ws
#   python  a strict independent WebSocket client (Debian's python3-websockets)
#   damon   a Node client behaving as Damon's reference SocketClient
#   dcl     real Decentraland libraries (@dcl/protocol, @dcl/crypto) in Node
# With no argument it runs them all. The server binary the suites after "go"
# test is built once here (or taken from SWITCHBOARD_BIN).
set -euo pipefail
cd "$(dirname "$0")/.."
parts=("$@")
[ ${#parts[@]} -gt 0 ] || parts=(go pusher python damon dcl)

apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "== installing ${missing[*]}"
  local sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

# The suites after "go" all test the same server binary: build it once.
if [ -z "${SWITCHBOARD_BIN:-}" ] && [[ " ${parts[*]} " != " go " ]]; then
  bin_dir="$(mktemp -d "${TMPDIR:-/tmp}/switchboard-test.XXXXXX")"
  trap 'rm -rf "$bin_dir"' EXIT
  source tests/lib.sh
  SWITCHBOARD_BIN="$(switchboard_bin "$bin_dir")"
  export SWITCHBOARD_BIN
fi

for part in "${parts[@]}"; do
  case "$part" in
    go)
      echo "== go vet"
      go vet ./...
      echo "== go test -race"
      go test -race -count=1 -timeout 15m ./...
      ;;
    pusher)
      if [ -x tests/pusher/run.sh ]; then echo "== pusher (Node real clients)"; tests/pusher/run.sh; fi
      ;;
    python)
      if [ -x tests/python/run.sh ]; then
        apt_install python3-websockets
        echo "== python strict client"; tests/python/run.sh
      fi
      ;;
    damon)
      if [ -x tests/damon/run.sh ]; then echo "== damon (SocketClient-style Node client)"; tests/damon/run.sh; fi
      ;;
    dcl)
      if [ -x tests/dcl/run.sh ]; then echo "== dcl (Decentraland libraries)"; tests/dcl/run.sh; fi
      ;;
    *) echo "unknown part $part (go, pusher, python, damon, dcl)"; exit 2 ;;
  esac
done
