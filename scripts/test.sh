#!/usr/bin/env bash
# The whole test suite. Installs what it needs on a fresh Debian machine
# (Go modules, npm packages, python3-websockets, PostgreSQL and Redis servers,
# Chromium for the console's browser test),
# then runs:
#   go      go vet, golangci-lint (.golangci.yml) and go test -race ./..., and
#           the same for the bench/wslib module
#   pusher  real clients in Node: pusher-js, pusher (server SDK), laravel-echo, ws,
#           with tests/pusher/cluster.test.mjs on 3-node Redis and NATS clusters
#   pusher-redis, pusher-nats
#           the whole Pusher suite again, each file on a 3-node cluster of that
#           engine with its clients and REST calls spread over the nodes
#   cluster-failure
#           3-node clusters under failure (tests/cluster): a node cut off
#           through a TCP proxy, kill -9 of the NATS stream leader, redis-server
#           and external nats-server restarts, a rolling SIGTERM restart under a
#           reconnect storm (300 clients; CLUSTER_FULL=1: 5,000)
#   python  a strict independent WebSocket client (Debian's python3-websockets)
#   damon   a Node client behaving as Damon's reference SocketClient
#   dcl     real Decentraland libraries (@dcl/protocol, @dcl/crypto) in Node
#   talo    the Talo Godot/Unity clients' traffic replayed in Node (ws)
#   talo-redis, talo-nats, dcl-redis, dcl-nats, damon-redis, damon-nats,
#   python-redis, python-nats
#           that suite again on a 3-node cluster of that engine, each client
#           (and HTTP call) on the next node in turn; Talo's nodes share a
#           PostgreSQL store (tests/clusternodes.mjs, docs/cluster.md)
# With no argument it runs them all ("lint" alone runs only golangci-lint,
# as `make lint` does). The server binary the suites after "go"
# test is built once here (or taken from SWITCHBOARD_BIN).
set -euo pipefail
cd "$(dirname "$0")/.."
parts=("$@")
# The other suites on 3-node clusters (make test-cluster-suites).
cluster_suites=(talo-redis talo-nats dcl-redis dcl-nats damon-redis damon-nats python-redis python-nats)
[ ${#parts[@]} -gt 0 ] || parts=(go pusher pusher-redis pusher-nats cluster-failure python damon dcl talo "${cluster_suites[@]}")
for part in "${parts[@]}"; do
  case "$part" in
    go | lint | pusher | pusher-redis | pusher-nats | cluster-failure | python | damon | dcl | talo) ;;
    talo-redis | talo-nats | dcl-redis | dcl-nats | damon-redis | damon-nats | python-redis | python-nats) ;;
    *) echo "unknown part $part (go, lint, pusher, pusher-redis, pusher-nats, cluster-failure, python, damon, dcl, talo, ${cluster_suites[*]})" >&2; exit 2 ;;
  esac
done

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
if [ -z "${SWITCHBOARD_BIN:-}" ] && [[ " ${parts[*]} " != " go " ]] && [[ " ${parts[*]} " != " lint " ]]; then
  bin_dir="$(mktemp -d "${TMPDIR:-/tmp}/switchboard-test.XXXXXX")"
  trap 'rm -rf "$bin_dir"' EXIT
  source tests/lib.sh
  switchboard_bin "$bin_dir" || exit 1
fi

# golangci-lint at the version .golangci.yml is written for: the one on PATH
# if it is that version, else the one in $(go env GOPATH)/bin, installed
# there with `go install` when missing (a few minutes on a small machine).
golangci_version=2.15.0
golangci_lint() {
  local bin
  for bin in "$(command -v golangci-lint || true)" "$(go env GOPATH)/bin/golangci-lint"; do
    if [ -n "$bin" ] && [ -x "$bin" ] && "$bin" version 2>/dev/null | grep -Eq "version v?$golangci_version "; then
      "$bin" "$@"
      return
    fi
  done
  echo "== installing golangci-lint v$golangci_version into $(go env GOPATH)/bin"
  GOBIN="$(go env GOPATH)/bin" go install "github.com/golangci/golangci-lint/v2/cmd/golangci-lint@v$golangci_version"
  "$(go env GOPATH)/bin/golangci-lint" "$@"
}

# run_lint: the server module, then bench/wslib (its own module; the root
# .golangci.yml applies to it too).
run_lint() {
  echo "== golangci-lint"
  golangci_lint run ./...
  echo "== golangci-lint (bench/wslib module)"
  (cd bench/wslib && golangci_lint run ./...)
}

# run_suite NAME: runs tests/NAME/run.sh. A suite whose script is missing or
# lost its executable bit fails the run: skipping it would report green for
# tests that never ran.
run_suite() {
  local script="tests/$1/run.sh"
  if [ ! -f "$script" ]; then
    echo "FAIL: $script is missing" >&2
    exit 1
  fi
  if [ ! -x "$script" ]; then
    echo "FAIL: $script is not executable (git update-index --chmod=+x $script)" >&2
    exit 1
  fi
  shift
  "$script" "$@"
}

for part in "${parts[@]}"; do
  case "$part" in
    go)
      # internal/pgtest (Talo's store on PostgreSQL) and the redis engine
      # run real servers, and the console's browser test
      # (internal/server/console_browser_test.go) drives headless Chromium;
      # with CI set these tests fail instead of skipping when the binaries
      # are missing.
      apt_install postgresql redis-server chromium
      echo "== go vet"
      go vet ./...
      run_lint
      echo "== go test -race"
      go test -race -count=1 -timeout 15m ./...
      # bench/wslib is its own module (the WebSocket libraries it compares
      # stay out of the server's go.mod), so ./... above does not reach it;
      # its tests check that every library mode delivers what it measures.
      echo "== go test -race (bench/wslib module)"
      (cd bench/wslib && go vet ./... && go test -race -count=1 -timeout 5m ./...)
      ;;
    lint)
      run_lint
      ;;
    pusher)
      apt_install redis-server
      echo "== pusher (Node real clients)"; run_suite pusher
      ;;
    pusher-redis | pusher-nats)
      apt_install redis-server
      engine="${part#pusher-}"
      echo "== pusher on a 3-node $engine cluster"
      # Every file but the cluster file, which starts clusters of its own.
      files=()
      for f in tests/pusher/*.test.mjs; do
        [ "$(basename "$f")" = cluster.test.mjs ] || files+=("$(basename "$f")")
      done
      PUSHER_CLUSTER="$engine" run_suite pusher "${files[@]}"
      ;;
    cluster-failure)
      apt_install redis-server
      echo "== cluster failure tests (3-node clusters on Redis and NATS)"; run_suite cluster
      ;;
    python)
      apt_install python3-websockets
      echo "== python strict client"; run_suite python
      ;;
    damon)
      echo "== damon (SocketClient-style Node client)"; run_suite damon
      ;;
    dcl)
      echo "== dcl (Decentraland libraries)"; run_suite dcl
      ;;
    talo)
      echo "== talo (Godot/Unity client traffic, ws)"; run_suite talo
      ;;
    talo-redis | talo-nats)
      apt_install redis-server postgresql
      echo "== talo on 3-node ${part#talo-} clusters (shared PostgreSQL store)"
      TALO_CLUSTER="${part#talo-}" run_suite talo
      ;;
    dcl-redis | dcl-nats)
      apt_install redis-server
      echo "== dcl on a 3-node ${part#dcl-} cluster"
      DCL_CLUSTER="${part#dcl-}" run_suite dcl
      ;;
    damon-redis | damon-nats)
      apt_install redis-server
      echo "== damon on a 3-node ${part#damon-} cluster"
      DAMON_CLUSTER="${part#damon-}" run_suite damon
      ;;
    python-redis | python-nats)
      apt_install redis-server python3-websockets
      echo "== python strict client on 3-node ${part#python-} clusters"
      PY_CLUSTER="${part#python-}" run_suite python
      ;;
  esac
done
