#!/usr/bin/env bash
# Run Switchboard's black-box end-to-end suite (pusher-js, pusher SDK,
# laravel-echo, raw ws) against a freshly built server binary.
#
#   tests/pusher/run.sh                    # all *.test.mjs files
#   tests/pusher/run.sh rest.test.mjs      # some files
#
# Env: PUSHER_CONCURRENCY (files run at once, default 4), PUSHER_TIMEOUT (whole
# run, seconds, default 300), SWITCHBOARD_BIN (skip the build, use this
# binary), PUSHER_SERVER_LOG_LEVEL (default debug; each server's log is
# printed, last lines only, when the run fails).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cd "$here"

source "$repo/tests/lib.sh"
require_tools node npm go

if [ -f package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
else
  npm install --no-audit --no-fund --loglevel=error
fi

tmp="$(mktemp -d "${TMPDIR:-/tmp}/switchboard-pusher-run.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
switchboard_bin "$tmp" || exit 1

files=("$@")
if [ ${#files[@]} -eq 0 ]; then
  files=(*.test.mjs)
fi

# Each server the harness starts keeps its config and log in a directory
# under TMPDIR: inside this run's temp dir, they go when the run ends.
export TMPDIR="$tmp"
set +e
timeout --kill-after=10 "${PUSHER_TIMEOUT:-300}" \
  node --test --test-reporter=spec --test-concurrency="${PUSHER_CONCURRENCY:-4}" --test-timeout=90000 "${files[@]}" \
  2>&1 | tee "$tmp/report.txt"
rc=${PIPESTATUS[0]}
set -e
if [ $rc -ne 0 ]; then
  # CI keeps nothing but this output: show what each server said last,
  # then the failing tests again, so that the end of the output names them.
  for log in "$tmp"/switchboard-pusher-*/server.log; do
    [ -f "$log" ] || continue
    echo "---- last lines of $log"
    tail -n 60 "$log"
  done
  echo "---- the failing tests (repeated from the report above)"
  sed -n '/failing tests:/,$p' "$tmp/report.txt" | head -n 80
fi
if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
  echo "run.sh: the suite exceeded ${PUSHER_TIMEOUT:-300} s" >&2
fi
exit $rc
