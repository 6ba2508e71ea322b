#!/usr/bin/env bash
# A throwaway PostgreSQL server for the PostgreSQL store tests (tests/store_postgres.rs).
#
#   scripts/test-postgres.sh [start]   install PostgreSQL if needed, create the cluster once,
#                                      start it, wait until it answers, print the export line
#   scripts/test-postgres.sh stop      stop it (the data stays in target/pg-data)
#   scripts/test-postgres.sh url       print the export line only
#
# The cluster lives in target/pg-data, listens on 127.0.0.1:55432 only (no Unix socket), and
# has one login role, flowgate/flowgate, that may create databases (each test creates its own).
# Idempotent: running `start` again on a running cluster only prints the export line.
# Run as root (the server runs as the `postgres` user through runuser) or as the user that
# owns target/pg-data.
set -euo pipefail
cd "$(dirname "$0")/.."

PORT=55432
HOST=127.0.0.1
DATA="$PWD/target/pg-data"
URL="postgres://flowgate:flowgate@$HOST:$PORT/postgres"

log() { printf 'test-postgres: %s\n' "$*" >&2; }

# Runs a server binary as the cluster's owner.
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

# The newest installed server binaries (Debian layout), or nothing.
find_bin() {
  local dir
  for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$dir/initdb" ]; then
      echo "$dir"
      return
    fi
  done
}

install_server() {
  if [ "$(id -u)" -ne 0 ]; then
    log "no PostgreSQL server found under /usr/lib/postgresql and not root: install the 'postgresql' package"
    exit 1
  fi
  log "installing Debian's postgresql package"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq postgresql >/dev/null
}

running() {
  [ -f "$DATA/PG_VERSION" ] && as_owner "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1
}

init_cluster() {
  log "creating the cluster in $DATA"
  mkdir -p "$DATA"
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres:postgres "$DATA"
  fi
  chmod 700 "$DATA"
  as_owner "$BIN/initdb" -D "$DATA" -U postgres -E UTF8 --locale=C.UTF-8 \
    --auth-local=peer --auth-host=scram-sha-256 >/dev/null
  cat >>"$DATA/postgresql.conf" <<EOF

# scripts/test-postgres.sh
listen_addresses = '$HOST'
port = $PORT
unix_socket_directories = ''
max_connections = 200
EOF
  # The role, in single-user mode (the superuser has no password and no socket to log in on).
  echo "CREATE ROLE flowgate LOGIN CREATEDB PASSWORD 'flowgate'" |
    as_owner "$BIN/postgres" --single -D "$DATA" postgres >"$DATA/../pg-setup.log" 2>&1 || {
    cat "$DATA/../pg-setup.log" >&2
    exit 1
  }
  touch "$DATA/.flowgate-ready"
}

start() {
  if [ -f "$DATA/PG_VERSION" ] && [ ! -f "$DATA/.flowgate-ready" ]; then
    # A cluster whose set-up was interrupted: start over.
    as_owner "$BIN/pg_ctl" -D "$DATA" -m fast stop >/dev/null 2>&1 || true
    rm -rf "$DATA"
  fi
  if [ ! -f "$DATA/PG_VERSION" ]; then
    init_cluster
  fi
  if ! running; then
    log "starting PostgreSQL ($("$BIN/postgres" --version)) on $HOST:$PORT"
    as_owner "$BIN/pg_ctl" -D "$DATA" -l "$DATA/server.log" -w -t 60 start >/dev/null
  fi
  for _ in $(seq 1 60); do
    if "$BIN/pg_isready" -q -h "$HOST" -p "$PORT"; then
      echo "export TEST_PG_URL=$URL"
      return
    fi
    sleep 1
  done
  log "PostgreSQL did not become ready; see $DATA/server.log"
  exit 1
}

stop() {
  if running; then
    as_owner "$BIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null
    log "stopped"
  else
    log "not running"
  fi
}

cmd="${1:-start}"
case "$cmd" in
  url)
    echo "export TEST_PG_URL=$URL"
    exit 0
    ;;
  start | stop) ;;
  *)
    echo "usage: $0 [start|stop|url]" >&2
    exit 2
    ;;
esac

BIN="$(find_bin)"
if [ -z "$BIN" ]; then
  if [ "$cmd" = stop ]; then
    log "not running"
    exit 0
  fi
  install_server
  BIN="$(find_bin)"
  if [ -z "$BIN" ]; then
    log "no initdb under /usr/lib/postgresql/*/bin after installing postgresql"
    exit 1
  fi
fi
"$cmd"
