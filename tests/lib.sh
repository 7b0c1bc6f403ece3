# Shared by the suites' run.sh scripts and scripts/test.sh; sourced, never run.

tests_repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# require_tools NAME...: stop with status 2, naming the first one missing.
require_tools() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null || { echo "run.sh: $tool is required" >&2; exit 2; }
  done
}

# switchboard_bin DIR sets and exports SWITCHBOARD_BIN, the server binary to
# test: the one already named there (scripts/test.sh builds it once for every
# suite), else a fresh build in DIR/switchboard. It returns 1, after saying
# why, when the build fails or the binary is not an executable file.
#
# Call it as a plain command, never inside $(...): a command substitution
# runs in a subshell where set -e does not apply, so a failed build used to
# go unnoticed there. Callers still write `switchboard_bin "$tmp" || exit 1`,
# because set -e is also off inside a function called in a || list.
switchboard_bin() {
  if [ -z "${SWITCHBOARD_BIN:-}" ]; then
    echo "building switchboard..." >&2
    rm -f "$1/switchboard"
    if ! (cd "$tests_repo" && go build -o "$1/switchboard" ./cmd/switchboard) >&2; then
      echo "tests/lib.sh: go build ./cmd/switchboard failed" >&2
      return 1
    fi
    SWITCHBOARD_BIN="$1/switchboard"
  fi
  if [ ! -f "$SWITCHBOARD_BIN" ] || [ ! -x "$SWITCHBOARD_BIN" ]; then
    echo "tests/lib.sh: the server binary $SWITCHBOARD_BIN is not an executable file" >&2
    return 1
  fi
  export SWITCHBOARD_BIN
}
