#!/usr/bin/env bash
# The multi-host arrangement, on one machine: a PostgreSQL primary (the project-local
# cluster) and a streaming hot standby made with pg_basebackup, N geoservice server processes
# on their own ports (as separate hosts would be) reading from the standby, and HAProxy in
# front of them.
#
#   scripts/cluster.sh up [N]     start it all (N servers, default 2); prints the balancer URL
#   scripts/cluster.sh down       stop it all (the primary keeps running: `make stop` stops it)
#   scripts/cluster.sh status     what runs where
#
# Everything lives under $GEOSERVICE_DATA_DIR/cluster (ports, logs, pids); the standby next
# to the primary's data directory. Migrations and the demo run once, here, as a deploy step
# would do them; servers never migrate.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN="$ROOT/.venv/bin"
PG_BIN=/usr/lib/postgresql/15/bin
DATA_DIR=$(mkdir -p "${GEOSERVICE_DATA_DIR:-$ROOT/.data}" && cd "${GEOSERVICE_DATA_DIR:-$ROOT/.data}" && pwd)
export GEOSERVICE_DATA_DIR="$DATA_DIR"
unset GEOSERVICE_DATABASE_URL GEOSERVICE_READ_URL GEOSERVICE_API_DATABASE_URL
HERE="$DATA_DIR/cluster"
STATE="$HERE/cluster.env"

die() { echo "cluster: $*" >&2; exit 2; }
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

wait_http() {
  local url=$1 seconds=$2
  for _ in $(seq $((seconds * 5))); do
    curl -fsS -o /dev/null "$url" 2>/dev/null && return 0
    sleep 0.2
  done
  return 1
}

up() {
  local servers=${1:-2}
  [ -f "$STATE" ] && die "already up (see $STATE); run 'scripts/cluster.sh down' first"
  bash "$ROOT/scripts/os-packages.sh" haproxy:haproxy curl:curl
  bash "$ROOT/scripts/pgcluster.sh" ensure >/dev/null
  "$BIN/geoservice" db upgrade >/dev/null
  "$BIN/geoservice" demo --if-empty --by deploy >/dev/null 2>&1 || die "loading the demo failed"
  # shellcheck disable=SC1091
  . "$DATA_DIR/cluster.env"
  mkdir -p "$HERE"
  umask 077  # the state file holds the read URL's password
  local standby sport lbport
  standby="$(dirname "$PGDIR")/standby"
  sport=$(free_port)
  echo "cluster: making the hot standby in $standby (pg_basebackup from port $PORT)"
  rm -rf "$standby"
  mkdir -p "$standby"
  if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$standby"; fi
  chmod 700 "$standby"
  as_pg env PGPASSWORD="$PASSWORD" "$PG_BIN/pg_basebackup" -h 127.0.0.1 -p "$PORT" -U postgres \
    -D "$standby" -R -X stream -c fast >"$HERE/basebackup.log" 2>&1 || die "pg_basebackup failed: see $HERE/basebackup.log"
  as_pg mkdir -p "$standby/socket"
  as_pg tee -a "$standby/postgresql.auto.conf" >/dev/null <<CONF
port = $sport
unix_socket_directories = '$standby/socket'
hot_standby = on
CONF
  as_pg "$PG_BIN/pg_ctl" -D "$standby" -l "$standby/server.log" -w -t 60 start >/dev/null \
    || die "the standby did not start; see $standby/server.log"
  local read_url="postgresql+psycopg://geoservice_api:$API_PASSWORD@/geoservice?host=127.0.0.1:$sport&host=127.0.0.1:$PORT&target_session_attrs=prefer-standby"
  {
    echo "STANDBY_DIR=$standby"
    echo "STANDBY_PORT=$sport"
    echo "READ_URL='$read_url'"
  } >"$STATE"
  local backends="" ports=""
  for i in $(seq 1 "$servers"); do
    local port
    port=$(free_port)
    GEOSERVICE_READ_URL="$read_url" GEOSERVICE_ANALYSIS_WORKERS=${GEOSERVICE_ANALYSIS_WORKERS:-1} \
      nohup "$BIN/geoservice" serve --port "$port" >"$HERE/server-$i.log" 2>&1 &
    echo "SERVER_${i}_PID=$!" >>"$STATE"
    echo "SERVER_${i}_PORT=$port" >>"$STATE"
    backends+="    server geo$i 127.0.0.1:$port check inter 500 fall 2 rise 2"$'\n'
    ports+=" $port"
  done
  lbport=$(free_port)
  cat >"$HERE/haproxy.cfg" <<CFG
global
    maxconn 4096
defaults
    mode http
    timeout connect 2s
    timeout client 120s
    timeout server 120s
    retries 3
    option redispatch
    retry-on conn-failure empty-response response-timeout
frontend geoservice
    bind 127.0.0.1:$lbport
    default_backend servers
backend servers
    balance roundrobin
    option httpchk GET /ready
    http-check expect status 200
$backends
CFG
  haproxy -f "$HERE/haproxy.cfg" -D -p "$HERE/haproxy.pid" || die "haproxy did not start"
  echo "LB_PORT=$lbport" >>"$STATE"
  echo "SERVERS=$servers" >>"$STATE"
  for port in $ports; do
    wait_http "http://127.0.0.1:$port/ready" 180 || die "the server on port $port is not ready: see $HERE"
  done
  wait_http "http://127.0.0.1:$lbport/ready" 30 || die "the balancer does not answer"
  echo "cluster: up: http://127.0.0.1:$lbport (servers on ports$ports, standby on $sport, primary on $PORT)"
}

down() {
  [ -f "$STATE" ] || { echo "cluster: not up"; return 0; }
  # shellcheck disable=SC1090
  . "$STATE"
  [ -f "$HERE/haproxy.pid" ] && kill "$(cat "$HERE/haproxy.pid")" 2>/dev/null || true
  for i in $(seq 1 "${SERVERS:-0}"); do
    local var="SERVER_${i}_PID"
    kill "${!var}" 2>/dev/null || true
  done
  sleep 1
  for i in $(seq 1 "${SERVERS:-0}"); do
    local var="SERVER_${i}_PID"
    kill -9 "${!var}" 2>/dev/null || true
  done
  if [ -n "${STANDBY_DIR:-}" ] && as_pg test -f "$STANDBY_DIR/PG_VERSION"; then
    as_pg "$PG_BIN/pg_ctl" -D "$STANDBY_DIR" -m fast -w stop >/dev/null 2>&1 || true
    rm -rf "$STANDBY_DIR"
  fi
  rm -f "$STATE" "$HERE/haproxy.pid"
  echo "cluster: down"
}

case "${1:-}" in
  up) up "${2:-2}" ;;
  down) down ;;
  status) [ -f "$STATE" ] && cat "$STATE" || echo "cluster: not up" ;;
  *) die "usage: scripts/cluster.sh up [N] | down | status" ;;
esac
