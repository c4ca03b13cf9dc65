#!/usr/bin/env bash
# Start a private PostgreSQL on 127.0.0.1 for the store tests and print its URL on stdout.
#
#   CREDITLAB_TEST_PG_URL="$(.ci/start-postgres.sh)"; export CREDITLAB_TEST_PG_URL
#
# - Uses CREDITLAB_TEST_PG_URL as it is when that server already answers.
# - Installs PostgreSQL with apt when no server binaries are there (root only).
# - Runs its own cluster (not the distribution's): data in $CREDITLAB_PG_DATA
#   (default /tmp/creditlab-pg), port $CREDITLAB_PG_PORT (default 55432), listening
#   on 127.0.0.1 only, trust authentication for local test use. It keeps running
#   after this script so later runs reuse it; stop it with
#   kill "$(head -1 "$CREDITLAB_PG_DATA/postmaster.pid")".
# - Creates the database creditlab_test when missing.
# Everything but the URL goes to stderr.
set -euo pipefail

PORT="${CREDITLAB_PG_PORT:-55432}"
DATA="${CREDITLAB_PG_DATA:-/tmp/creditlab-pg}"
DB="creditlab_test"
log() { echo "start-postgres: $*" >&2; }

if [ -n "${CREDITLAB_TEST_PG_URL:-}" ] && command -v psql >/dev/null \
   && psql "${CREDITLAB_TEST_PG_URL/+psycopg/}" -qAtc 'select 1' >/dev/null 2>&1; then
  log "using the server already at CREDITLAB_TEST_PG_URL"
  echo "$CREDITLAB_TEST_PG_URL"
  exit 0
fi

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
BIN="$(pg_bin)"
if [ -z "$BIN" ] || [ ! -x "$BIN/initdb" ]; then
  if [ "$(id -u)" != 0 ]; then
    log "PostgreSQL server binaries are missing and this user cannot install them;" \
        "install the 'postgresql' package or set CREDITLAB_TEST_PG_URL"
    exit 1
  fi
  log "installing PostgreSQL with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql >&2
  BIN="$(pg_bin)"
fi

# PostgreSQL refuses to run as root: run the server as the postgres user then.
if [ "$(id -u)" = 0 ]; then
  id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql postgres
  AS=(runuser -u postgres --)
else
  AS=()
fi

mkdir -p "$DATA"
[ "$(id -u)" = 0 ] && chown postgres: "$DATA" && chmod 700 "$DATA"

if ! "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT"; then
  if [ ! -f "$DATA/PG_VERSION" ]; then
    log "creating a cluster in $DATA"
    "${AS[@]}" "$BIN/initdb" -D "$DATA" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >&2
  fi
  log "starting PostgreSQL on 127.0.0.1:$PORT"
  "${AS[@]}" "$BIN/pg_ctl" -D "$DATA" -l "$DATA/server.log" -w -t 60 \
    -o "-h 127.0.0.1 -p $PORT -k $DATA" start >&2
fi

PSQL=("$BIN/psql" -h 127.0.0.1 -p "$PORT" -U postgres -qAt)
if [ "$("${PSQL[@]}" -d postgres -c "select 1 from pg_database where datname = '$DB'")" != 1 ]; then
  "${PSQL[@]}" -d postgres -c "create database $DB" >&2
fi
echo "postgresql+psycopg://postgres@127.0.0.1:$PORT/$DB"
