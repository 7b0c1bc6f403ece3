#!/usr/bin/env bash
# Runs every Go fuzz target in the module, one after another, for FUZZTIME
# each (default 20s), and ends with a markdown table of executions and
# results per target. A crash does not stop the run: the failing input is
# written under the package's testdata/fuzz/<Target>/ (commit it: it then
# runs as a seed in `make test`), the target is marked FAIL and the script
# exits 1 at the end.
#
#   scripts/fuzz.sh                        # make fuzz (20s each)
#   FUZZTIME=10m scripts/fuzz.sh           # make fuzz-long
#   FUZZTIME=20s FUZZPARALLEL=1 nice -n 19 scripts/fuzz.sh   # gentle, on a shared machine
#
# Env: FUZZTIME (go test -fuzztime), FUZZPARALLEL (go test -parallel, the
# fuzzing workers; default GOMAXPROCS), FUZZLOG (directory for each
# target's output; a temp dir by default, kept when a target fails).
# Not part of `make test` or CI: the seed corpora already run there as
# ordinary tests.
set -euo pipefail
cd "$(dirname "$0")/.."
time="${FUZZTIME:-20s}"
parallel=()
[ -z "${FUZZPARALLEL:-}" ] || parallel=(-parallel "$FUZZPARALLEL")
logdir="${FUZZLOG:-$(mktemp -d "${TMPDIR:-/tmp}/switchboard-fuzz.XXXXXX")}"
mkdir -p "$logdir"

rows=()
failed=0
for pkg in $(go list ./...); do
  targets="$(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true)"
  for target in $targets; do
    short="${pkg#github.com/switchboard-rt/switchboard/}"
    log="$logdir/$(echo "$short" | tr / _)_$target.log"
    echo "== $short $target ($time)"
    set +e
    go test -run '^$' -fuzz "^${target}\$" -fuzztime "$time" "${parallel[@]}" "$pkg" >"$log" 2>&1
    rc=$?
    set -e
    tail -n 3 "$log"
    execs="$(grep -o 'execs: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)"
    if [ $rc -eq 0 ]; then
      result="ok"
    else
      failed=1
      crash="$(grep -o 'testdata/fuzz/[^ ]*' "$log" | tail -n 1 || true)"
      result="FAIL${crash:+ ($crash)}; log $log"
    fi
    rows+=("| $short | $target | ${execs:-?} | $result |")
  done
done

echo
echo "Fuzzing, $time per target ($(date -u +%Y-%m-%d), $(go env GOVERSION), $(nproc) CPUs):"
echo
echo "| package | target | executions | result |"
echo "|---|---|---|---|"
printf '%s\n' "${rows[@]}"
if [ $failed -eq 0 ] && [ -z "${FUZZLOG:-}" ]; then rm -rf "$logdir"; fi
exit $failed
