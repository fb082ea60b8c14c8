#!/usr/bin/env bash
# Project-local PostGIS cluster for geoservice.
#
#   scripts/pgcluster.sh ensure   install PostGIS/pgRouting if missing, init, start, create the
#                                 roles and the database
#   scripts/pgcluster.sh stop     stop the cluster (no-op when it is not running)
#
# The superuser (postgres) is used here only: it makes the roles, the database OWNER
# geoservice_owner (a login that is no superuser and cannot create roles), the extensions
# and the audit log's guard (geoservice/migrations/audit_guard.sql), in template1 too so
# that databases the owner makes (CREATEDB: the tests) have them. A cluster made by an
# older version of this script, where postgres owned everything, is converted in place.
#
# Everything is skipped when GEOSERVICE_DATABASE_URL points at another server.
# The cluster lives under $GEOSERVICE_DATA_DIR/pg (default .data/pg). When the
# postgres user cannot reach that folder (a checkout under a mode-700 home), it
# lives under /var/lib/geoservice/clusters/<hash of the data dir> instead.
# Port and passwords are chosen at init and remembered in $DATA_DIR/cluster.env:
# PASSWORD (postgres, for DBA work only), OWNER_PASSWORD (geoservice_owner: migrations),
# API_PASSWORD, ETL_PASSWORD, RECORDER_PASSWORD (the service's and the ETL's logins).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
GUARD_SQL="$ROOT/geoservice/migrations/audit_guard.sql"

PG_BIN=/usr/lib/postgresql/15/bin
PG_EXT=/usr/share/postgresql/15/extension
PG_LIB=/usr/lib/postgresql/15/lib
PACKAGES="postgresql-15-postgis-3 postgresql-15-pgrouting"
DB_NAME=geoservice
OWNER=geoservice_owner

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

pg_psql() {
  # psql as the superuser on the cluster's socket: pg_psql DIR PORT DATABASE [psql args]
  local dir=$1 port=$2 db=$3
  shift 3
  as_pg "$PG_BIN/psql" -h "$dir/socket" -p "$port" -U postgres -d "$db" -v ON_ERROR_STOP=1 -qtAX "$@"
}

password_for() {
  # The password recorded as $2 in the cluster's record, made (and recorded) when missing.
  local dir=$1 var=$2 password
  password=$(as_pg sed -n "s/^$var=//p" "$dir/geoservice.env")
  if [ -z "$password" ]; then
    password=$(python3 -c 'import secrets; print(secrets.token_urlsafe(18))')
    printf '%s=%s\n' "$var" "$password" | as_pg tee -a "$dir/geoservice.env" >/dev/null
  fi
  printf '%s' "$password"
}

create_roles() {
  # The owner: migrations, `geoservice db upgrade`, the tests' arrangements. No superuser, no
  # CREATEROLE (on PostgreSQL 15 that would let it grant itself any role, pg_execute_server_program
  # included); CREATEDB for the tests' databases. A member of the three groups, so that a
  # process given only the owner's URL can take its group role (`-c role=geoservice_writer`).
  # The API reads as geoservice_api (a member of geoservice_reader) and records patrol
  # positions and events as geoservice_rec (geoservice_recorder), the ETL writes as
  # geoservice_etl (geoservice_writer); migrations grant those groups their rights.
  local dir=$1 port=$2
  local pair login group var password
  password=$(password_for "$dir" OWNER_PASSWORD)
  pg_psql "$dir" "$port" postgres >/dev/null <<SQL
SET client_min_messages = warning;
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$OWNER') THEN CREATE ROLE $OWNER LOGIN; END IF;
END \$\$;
ALTER ROLE $OWNER LOGIN NOSUPERUSER NOCREATEROLE CREATEDB NOREPLICATION NOBYPASSRLS PASSWORD '$password';
SQL
  for pair in geoservice_api:geoservice_reader:API_PASSWORD geoservice_etl:geoservice_writer:ETL_PASSWORD \
      geoservice_rec:geoservice_recorder:RECORDER_PASSWORD; do
    IFS=: read -r login group var <<<"$pair"
    password=$(password_for "$dir" "$var")
    pg_psql "$dir" "$port" postgres >/dev/null <<SQL
SET client_min_messages = warning;
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$group') THEN CREATE ROLE $group NOLOGIN; END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$login') THEN CREATE ROLE $login LOGIN; END IF;
END \$\$;
ALTER ROLE $login LOGIN NOSUPERUSER NOCREATEROLE NOCREATEDB NOREPLICATION NOBYPASSRLS PASSWORD '$password';
GRANT $group TO $login;
GRANT $group TO $OWNER;
SQL
  done
}

prepare_database() {
  # As the superuser: the extensions and the audit log's guard (both idempotent).
  local dir=$1 port=$2 db=$3
  # on stdin: the postgres user may not be able to read the checkout (a mode-700 home)
  pg_psql "$dir" "$port" "$db" -1 -f - <"$GUARD_SQL" >/dev/null
  pg_psql "$dir" "$port" "$db" -c "SET client_min_messages = warning; CREATE EXTENSION IF NOT EXISTS postgis; CREATE EXTENSION IF NOT EXISTS pgrouting;" >/dev/null
}

create_database() {
  local dir=$1 port=$2
  # template1 first: every database made from it (the owner's, the tests') starts with them
  prepare_database "$dir" "$port" template1
  if [ -z "$(pg_psql "$dir" "$port" postgres -c "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'")" ]; then
    pg_psql "$dir" "$port" postgres -c "CREATE DATABASE $DB_NAME OWNER $OWNER"
  fi
  prepare_database "$dir" "$port" "$DB_NAME"
  hand_over "$dir" "$port"
}

hand_over() {
  # A database made by an older version of this script belongs to postgres, and so does
  # everything the migrations made in it: give the database, the geoservice schema and every
  # object of it (and the project's objects in public, e.g. the road_edges view) to the owner.
  # Extensions' objects stay the superuser's. Nothing to do the second time.
  local dir=$1 port=$2
  pg_psql "$dir" "$port" "$DB_NAME" >/dev/null <<SQL
SET client_min_messages = warning;
ALTER DATABASE $DB_NAME OWNER TO $OWNER;
DO \$\$
DECLARE
  item record;
  owner_oid oid := '$OWNER'::regrole;
BEGIN
  IF to_regnamespace('geoservice') IS NOT NULL THEN
    EXECUTE 'ALTER SCHEMA geoservice OWNER TO $OWNER';
  END IF;
  -- tables first (their indexes and their serial columns' sequences follow them), then views,
  -- the remaining sequences, functions and types
  FOR item IN
    SELECT c.oid::regclass AS name, c.relkind
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname IN ('geoservice', 'public') AND c.relowner <> owner_oid
      AND c.relkind IN ('r', 'p', 'f', 'v', 'm', 'S')
      AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                      AND d.objid = c.oid AND d.deptype = 'e')
    ORDER BY CASE c.relkind WHEN 'S' THEN 2 WHEN 'v' THEN 1 WHEN 'm' THEN 1 ELSE 0 END, c.oid
  LOOP
    CONTINUE WHEN (SELECT relowner FROM pg_class WHERE oid = item.name) = owner_oid;
    EXECUTE format('ALTER %s %s OWNER TO $OWNER',
                   CASE item.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW'
                        WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'f' THEN 'FOREIGN TABLE'
                        ELSE 'TABLE' END, item.name);
  END LOOP;
  FOR item IN
    SELECT p.oid::regprocedure AS name, p.prokind
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE n.nspname IN ('geoservice', 'public') AND p.proowner <> owner_oid
      AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                      AND d.objid = p.oid AND d.deptype = 'e')
  LOOP
    EXECUTE format('ALTER %s %s OWNER TO $OWNER',
                   CASE item.prokind WHEN 'p' THEN 'PROCEDURE' WHEN 'a' THEN 'AGGREGATE'
                        ELSE 'FUNCTION' END, item.name);
  END LOOP;
  FOR item IN
    SELECT t.oid::regtype AS name
    FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
    WHERE n.nspname IN ('geoservice', 'public') AND t.typowner <> owner_oid
      AND (t.typtype IN ('e', 'd', 'r', 'm')
           OR t.typtype = 'c' AND (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c')
      AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_type'::regclass
                      AND d.objid = t.oid AND d.deptype = 'e')
  LOOP
    EXECUTE format('ALTER TYPE %s OWNER TO $OWNER', item.name);
  END LOOP;
END \$\$;
SQL
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
    create_roles "$PGDIR" "$PORT"
    create_database "$PGDIR" "$PORT"
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
