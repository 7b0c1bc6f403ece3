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

# free_port: prints a free TCP port on 127.0.0.1 (bound, read, released).
free_port() {
  node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

# start_postgres DIR: a private throwaway PostgreSQL, as internal/pgtest
# starts one for the Go tests: initdb in a fresh directory, pg_ctl start on
# a free loopback port (trust authentication, no fsync). As root it runs as
# the "postgres" user (initdb refuses root). Sets and exports PG_DSN (the
# "postgres" database); stop_postgres stops it and removes its files. Its
# log is DIR/postgres.log. Returns 1, after saying why, on failure.
start_postgres() {
  local bin attempt port
  bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
  if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
    echo "tests/lib.sh: PostgreSQL server binaries not found (apt-get install -y postgresql)" >&2
    return 1
  fi
  # Not under DIR: the postgres user must be able to reach its data.
  pg_dir="$(mktemp -d "/tmp/switchboard-pg.XXXXXX")"
  pg_bin="$bin"
  pg_as=()
  if [ "$(id -u)" = 0 ]; then
    chown postgres: "$pg_dir"
    pg_as=(runuser -u postgres --)
  fi
  if ! "${pg_as[@]}" "$bin/initdb" -D "$pg_dir/data" -A trust -U postgres --no-sync -E UTF8 >"$1/postgres.log" 2>&1; then
    echo "tests/lib.sh: initdb failed:" >&2; cat "$1/postgres.log" >&2
    return 1
  fi
  for attempt in 1 2 3; do
    port="$(free_port)"
    if "${pg_as[@]}" "$bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/log" -w -t 60 \
      -o "-p $port -k $pg_dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
      start >>"$1/postgres.log" 2>&1; then
      export PG_DSN="postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
      return 0
    fi
    cat "$pg_dir/log" >>"$1/postgres.log" 2>/dev/null || true
  done
  echo "tests/lib.sh: pg_ctl start failed:" >&2; cat "$1/postgres.log" >&2
  return 1
}

# stop_postgres: stops what start_postgres started (safe to call twice).
stop_postgres() {
  [ -n "${pg_dir:-}" ] || return 0
  "${pg_as[@]}" "$pg_bin/pg_ctl" -D "$pg_dir/data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$pg_dir"
  pg_dir=""
}
