#!/usr/bin/env bash
# Runs every Go fuzz target for FUZZTIME each (default 20s). Not part of
# `make test`: the seed corpora already run there as ordinary tests.
set -euo pipefail
cd "$(dirname "$0")/.."
time="${FUZZTIME:-20s}"
for pkg in $(go list ./...); do
  for target in $(go test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true); do
    echo "== $pkg $target"
    go test -run '^$' -fuzz "^${target}\$" -fuzztime "$time" "$pkg"
  done
done
