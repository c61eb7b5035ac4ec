#!/usr/bin/env bash
# Start a throw-away PostgreSQL server on 127.0.0.1 for the store tests and the Dask sweep check.
# Usage: source .ci/postgres.sh   (exports SPIKELAB_TEST_POSTGRES_URL; the server stops when the shell exits)
# Installs Debian's postgresql package when no server binaries are on the machine.
set -euo pipefail
PG_PORT="${PG_PORT:-55432}"
pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }
if [ -z "$(pg_bin)" ] || [ ! -x "$(pg_bin)/initdb" ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
PG_BIN="$(pg_bin)"
PG_DATA="$(mktemp -d /tmp/spikelab-pg.XXXXXX)"
chown postgres "$PG_DATA"
runuser -u postgres -- "$PG_BIN/initdb" -D "$PG_DATA" -A trust -U postgres >/dev/null
runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_DATA/server.log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PG_DATA -c max_connections=200 -c fsync=off" start >/dev/null
stop_postgres() { runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast stop >/dev/null 2>&1 || true; rm -rf "$PG_DATA"; }
trap stop_postgres EXIT
export SPIKELAB_TEST_POSTGRES_URL="postgresql+psycopg2://postgres@127.0.0.1:$PG_PORT/postgres"
echo "PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PG_PORT"
