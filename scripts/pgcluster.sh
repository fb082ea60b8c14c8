#!/usr/bin/env bash
# Project-local PostGIS cluster for geoservice.
#
#   scripts/pgcluster.sh ensure   install PostGIS/pgRouting if missing, init, start, create the database
#   scripts/pgcluster.sh stop     stop the cluster (no-op when it is not running)
#
# Everything is skipped when GEOSERVICE_DATABASE_URL points at another server.
# The cluster lives under $GEOSERVICE_DATA_DIR/pg (default .data/pg). When the
# postgres user cannot reach that folder (a checkout under a mode-700 home), it
# lives under /var/lib/geoservice/clusters/<hash of the data dir> instead.
# Port and password are chosen at init and remembered in $DATA_DIR/cluster.env.
set -euo pipefail

PG_BIN=/usr/lib/postgresql/15/bin
PG_EXT=/usr/share/postgresql/15/extension
PG_LIB=/usr/lib/postgresql/15/lib
PACKAGES="postgresql-15-postgis-3 postgresql-15-pgrouting"
DB_NAME=geoservice

die() { echo "pgcluster: $*" >&2; exit 2; }

if [ -n "${GEOSERVICE_DATABASE_URL:-}" ]; then
  echo "pgcluster: GEOSERVICE_DATABASE_URL is set; using that server, no local cluster."
  exit 0
fi

DATA_DIR=$(mkdir -p "${GEOSERVICE_DATA_DIR:-.data}" && cd "${GEOSERVICE_DATA_DIR:-.data}" && pwd)
ENV_FILE="$DATA_DIR/cluster.env"

as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

cluster_dir() {
  if [ "$(id -u)" != 0 ] || runuser -u postgres -- test -x "$DATA_DIR" 2>/dev/null; then
    echo "$DATA_DIR/pg"
  else
    echo "/var/lib/geoservice/clusters/$(printf '%s' "$DATA_DIR" | sha1sum | cut -c1-12)/pg"
  fi
}

have_extensions() {
  # Both the SQL scripts and the shared libraries: `apt-get remove` can leave the scripts.
  [ -f "$PG_EXT/postgis.control" ] && [ -f "$PG_EXT/pgrouting.control" ] \
    && compgen -G "$PG_LIB/postgis-3*.so" >/dev/null && compgen -G "$PG_LIB/libpgrouting-*.so" >/dev/null \
    && [ -x "$PG_BIN/initdb" ]
}

install_packages() {
  if have_extensions; then
    return
  fi
  echo "pgcluster: installing $PACKAGES ..."
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $PACKAGES >/dev/null
  elif command -v sudo >/dev/null && command -v apt-get >/dev/null && sudo -n true 2>/dev/null; then
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $PACKAGES >/dev/null
  else
    die "PostGIS 3 and pgRouting for PostgreSQL 15 are missing and cannot be installed here: install the Debian/Ubuntu packages '$PACKAGES', or set GEOSERVICE_DATABASE_URL to a PostGIS server."
  fi
  have_extensions || die "installing $PACKAGES did not provide the postgis and pgrouting extensions."
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

init_cluster() {
  local dir=$1
  [ -f "$dir/PG_VERSION" ] && return
  echo "pgcluster: creating a PostgreSQL cluster in $dir"
  mkdir -p "$dir"
  if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$dir"; fi
  chmod 700 "$dir"
  local port password pwfile
  port=$(free_port)
  password=$(python3 -c 'import secrets; print(secrets.token_urlsafe(18))')
  pwfile=$(mktemp)
  printf '%s\n' "$password" >"$pwfile"
  chmod 644 "$pwfile"
  as_pg "$PG_BIN/initdb" -D "$dir" -U postgres --pwfile="$pwfile" -E UTF8 --locale=C.UTF-8 \
    --auth-local=peer --auth-host=scram-sha-256 >"$DATA_DIR/initdb.log" 2>&1 \
    || { rm -f "$pwfile"; die "initdb failed; see $DATA_DIR/initdb.log"; }
  rm -f "$pwfile"
  as_pg mkdir -p "$dir/socket"
  as_pg tee -a "$dir/postgresql.conf" >/dev/null <<CONF
# geoservice local cluster
port = $port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir/socket'
shared_buffers = 256MB
work_mem = 32MB
maintenance_work_mem = 256MB
max_connections = 100
CONF
  printf 'PGDIR=%s\nPORT=%s\nPASSWORD=%s\n' "$dir" "$port" "$password" | as_pg tee "$dir/geoservice.env" >/dev/null
  as_pg chmod 600 "$dir/geoservice.env"
}

remember_cluster() {
  # cluster.env is a copy of the cluster's own record, restored if .data was cleaned.
  local dir=$1
  (umask 077 && cat "$dir/geoservice.env" >"$ENV_FILE")
}

start_cluster() {
  local dir=$1
  if as_pg "$PG_BIN/pg_ctl" -D "$dir" status >/dev/null 2>&1; then return; fi
  as_pg "$PG_BIN/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 60 start >/dev/null \
    || die "the cluster in $dir did not start; see $dir/server.log"
}

create_database() {
  local dir=$1 port=$2
  local psql=("$PG_BIN/psql" -h "$dir/socket" -p "$port" -U postgres -v ON_ERROR_STOP=1 -qtA)
  if [ -z "$(as_pg "${psql[@]}" -d postgres -c "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'")" ]; then
    as_pg "${psql[@]}" -d postgres -c "CREATE DATABASE $DB_NAME"
  fi
  as_pg "${psql[@]}" -d "$DB_NAME" -c "SET client_min_messages = warning; CREATE EXTENSION IF NOT EXISTS postgis; CREATE EXTENSION IF NOT EXISTS pgrouting;"
}

create_logins() {
  # The API reads as geoservice_api (a member of geoservice_reader) and records patrol
  # positions and events as geoservice_rec (geoservice_recorder), the ETL writes as
  # geoservice_etl (geoservice_writer); migrations grant those groups their rights.
  local dir=$1 port=$2
  local psql=("$PG_BIN/psql" -h "$dir/socket" -p "$port" -U postgres -v ON_ERROR_STOP=1 -qtA)
  local pair login group var password
  for pair in geoservice_api:geoservice_reader:API_PASSWORD geoservice_etl:geoservice_writer:ETL_PASSWORD \
      geoservice_rec:geoservice_recorder:RECORDER_PASSWORD; do
    IFS=: read -r login group var <<<"$pair"
    password=$(as_pg sed -n "s/^$var=//p" "$dir/geoservice.env")
    if [ -z "$password" ]; then
      password=$(python3 -c 'import secrets; print(secrets.token_urlsafe(18))')
      printf '%s=%s\n' "$var" "$password" | as_pg tee -a "$dir/geoservice.env" >/dev/null
    fi
    as_pg "${psql[@]}" -d postgres >/dev/null <<SQL
SET client_min_messages = warning;
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$group') THEN CREATE ROLE $group NOLOGIN; END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$login') THEN CREATE ROLE $login LOGIN; END IF;
END \$\$;
ALTER ROLE $login LOGIN PASSWORD '$password';
GRANT $group TO $login;
SQL
  done
}

cmd=${1:-}
case "$cmd" in
  ensure)
    install_packages
    dir=$(cluster_dir)
    init_cluster "$dir"
    remember_cluster "$dir"
    # shellcheck disable=SC1090
    . "$ENV_FILE"
    start_cluster "$PGDIR"
    create_database "$PGDIR" "$PORT"
    create_logins "$PGDIR" "$PORT"
    remember_cluster "$PGDIR"
    echo "pgcluster: PostGIS up on 127.0.0.1:$PORT (cluster $PGDIR)"
    ;;
  stop)
    [ -f "$ENV_FILE" ] || { echo "pgcluster: no local cluster"; exit 0; }
    # shellcheck disable=SC1090
    . "$ENV_FILE"
    if as_pg "$PG_BIN/pg_ctl" -D "$PGDIR" status >/dev/null 2>&1; then
      as_pg "$PG_BIN/pg_ctl" -D "$PGDIR" -m fast -w stop >/dev/null
      echo "pgcluster: stopped"
    else
      echo "pgcluster: not running"
    fi
    ;;
  *)
    die "usage: scripts/pgcluster.sh ensure|stop"
    ;;
esac
