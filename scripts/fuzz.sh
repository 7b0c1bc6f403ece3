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
#   scripts/fuzz.sh ./internal/protocol/pusher/...           # some packages
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
pkgs=("$@")
[ ${#pkgs[@]} -gt 0 ] || pkgs=(./...)
for pkg in $(go list "${pkgs[@]}"); do
  targets="$(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true)"
  for target in $targets; do
    short="${pkg#github.com/switchboard-rt/switchboard/}"
    log="$logdir/$(echo "$short" | tr / _)_$target.log"
    corpus="$(go list -f '{{.Dir}}' "$pkg")/testdata/fuzz/$target"
    before="$(ls "$corpus" 2>/dev/null || true)"
    echo "== $short $target ($time)"
    set +e
    go test -run '^$' -fuzz "^${target}\$" -fuzztime "$time" "${parallel[@]}" "$pkg" >"$log" 2>&1
    rc=$?
    set -e
    tail -n 3 "$log"
    execs="$(grep -o 'execs: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)"
    new="$(comm -13 <(echo "$before") <(ls "$corpus" 2>/dev/null || true) | head -n 1)"
    if [ $rc -eq 0 ]; then
      result="ok"
    elif [ -z "$new" ] && ! grep -q 'Failing input written' "$log" &&
      [ "$(grep -A1 -- '^--- FAIL' "$log" | tail -n 1 | tr -d '[:space:]')" = "contextdeadlineexceeded" ]; then
      # Go 1.26's fuzz coordinator can fail a target exactly at the
      # -fuzztime deadline, having found nothing (golang/go#75804, fixed
      # in Go 1.27): no input was written, so there is nothing to fix.
      result="ok (no failing input; ended on Go's fuzztime deadline race, golang/go#75804)"
    else
      failed=1
      result="FAIL${new:+ (testdata/fuzz/$target/$new)}; log $log"
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
