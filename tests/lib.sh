# Shared by the suites' run.sh scripts; sourced, never run.

tests_repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# require_tools NAME...: stop with status 2, naming the first one missing.
require_tools() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null || { echo "run.sh: $tool is required" >&2; exit 2; }
  done
}

# switchboard_bin DIR prints the server binary to test: $SWITCHBOARD_BIN
# when set (scripts/test.sh builds it once for every suite), else a fresh
# build in DIR. Use as bin="$(switchboard_bin "$tmp")" so a failed build
# stops the script under set -e.
switchboard_bin() {
  if [ -n "${SWITCHBOARD_BIN:-}" ]; then
    echo "$SWITCHBOARD_BIN"
    return
  fi
  echo "building switchboard..." >&2
  (cd "$tests_repo" && go build -o "$1/switchboard" ./cmd/switchboard) >&2
  echo "$1/switchboard"
}
