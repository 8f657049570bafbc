#!/usr/bin/env bash
# Runs a command with DATABASE_URL pointing at a PostgreSQL server.
#
# When DATABASE_URL is already set, the command runs against that server.
# Otherwise a throwaway cluster is created from this machine's PostgreSQL
# binaries, on a free loopback port, and removed when the command ends.
#
#   scripts/with-postgres.sh cargo test --workspace
set -euo pipefail

if [ "$#" -eq 0 ]; then
  echo "usage: $0 COMMAND [ARGS...]" >&2
  exit 2
fi

if [ -n "${DATABASE_URL:-}" ]; then
  exec "$@"
fi

find_bindir() {
  if command -v pg_config >/dev/null 2>&1; then
    local d
    d=$(pg_config --bindir 2>/dev/null || true)
    if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then echo "$d"; return; fi
  fi
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then echo "$d"; return; fi
  done
  if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
    dirname "$(command -v initdb)"; return
  fi
}

bindir=$(find_bindir)
if [ -z "$bindir" ]; then
  cat >&2 <<'MSG'
error: the Postgres tests need a PostgreSQL server, and none was found.
Either set DATABASE_URL to a server you can create databases on, or install
the server binaries (initdb, pg_ctl), e.g. on Debian/Ubuntu:
    apt-get install postgresql
MSG
  exit 1
fi

workdir=$(mktemp -d /tmp/sync-pg.XXXXXX)
chmod 755 "$workdir"

# initdb refuses to run as root: run the server as the postgres user then.
as_owner=()
if [ "$(id -u)" -eq 0 ]; then
  if ! id postgres >/dev/null 2>&1; then
    useradd --system --no-create-home postgres
  fi
  chown postgres "$workdir"
  as_owner=(runuser -u postgres --)
fi

port=""
for candidate in $(shuf -i 20000-60000 -n 50); do
  if ! (exec 3<>"/dev/tcp/127.0.0.1/$candidate") 2>/dev/null; then
    port=$candidate
    break
  fi
done
if [ -z "$port" ]; then
  echo "error: no free loopback port found for the test PostgreSQL server" >&2
  exit 1
fi

cleanup() {
  "${as_owner[@]}" "$bindir/pg_ctl" -D "$workdir/data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$workdir"
}
trap cleanup EXIT INT TERM

"${as_owner[@]}" "$bindir/initdb" -D "$workdir/data" -U postgres --auth=trust -E UTF8 --no-sync >"$workdir/initdb.log" 2>&1 || {
  cat "$workdir/initdb.log" >&2
  exit 1
}
"${as_owner[@]}" "$bindir/pg_ctl" -D "$workdir/data" -l "$workdir/server.log" -w \
  -o "-p $port -k $workdir -c listen_addresses=127.0.0.1 -c max_connections=200" start >/dev/null || {
  cat "$workdir/server.log" >&2
  exit 1
}

export DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
# Tests that stop and start the server (outage tests) find it here.
export SYNC_TEST_PG_BINDIR="$bindir"
export SYNC_TEST_PG_DATA="$workdir/data"
# The user that owns the cluster (pg_ctl must run as it); empty: this user.
if [ "${#as_owner[@]}" -gt 0 ]; then export SYNC_TEST_PG_RUNAS=postgres; else export SYNC_TEST_PG_RUNAS=""; fi
echo "with-postgres: throwaway PostgreSQL on 127.0.0.1:$port ($bindir)" >&2
"$@"
