#!/usr/bin/env bash
# Start a throwaway PostgreSQL server for the tests, on 127.0.0.1:55432 (or $PGPORT), with a
# database `ivr_test`, owned by the `postgres` user in a temporary folder. Prints the folder
# on stdout; stop it with `scripts/postgres.sh stop FOLDER`.
set -euo pipefail
port="${PGPORT:-55432}"
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -n "$bin" ] || { echo "PostgreSQL server binaries not found (apt-get install postgresql)" >&2; exit 1; }
as_postgres() {
  if [ "$(id -un)" = postgres ]; then "$@"; elif [ "$(id -u)" -eq 0 ]; then su postgres -s /bin/sh -c "$(printf '%q ' "$@")"; else sudo -u postgres "$@"; fi
}
if [ "${1:-}" = stop ]; then
  as_postgres "$bin/pg_ctl" -D "$2/data" -m fast stop >/dev/null || true
  rm -rf "$2"
  exit 0
fi
dir=$(mktemp -d /tmp/ivr-pg.XXXXXX)
chown postgres "$dir" 2>/dev/null || true
chmod 755 "$dir"
as_postgres "$bin/initdb" -D "$dir/data" -A trust -U postgres >/dev/null
as_postgres "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w \
  -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
"$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -qc "CREATE DATABASE ivr_test" >/dev/null
echo "$dir"
