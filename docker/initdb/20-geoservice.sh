#!/bin/sh
# Run once by the postgres image when its volume is empty (/docker-entrypoint-initdb.d), as the
# superuser: what scripts/pgcluster.sh does for the local cluster. The database belongs to
# geoservice_owner (no superuser, no CREATEROLE); the groups and the API's, ETL's and
# recorder's logins exist; PostGIS, pgRouting and the audit log's guard are made by the
# superuser, so no login the service uses can disable the audit trigger (docs/OPERATIONS.md).
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres <<SQL
SET client_min_messages = warning;
CREATE ROLE geoservice_owner LOGIN NOSUPERUSER NOCREATEROLE NOCREATEDB PASSWORD '${GEOSERVICE_OWNER_PASSWORD}';
CREATE ROLE geoservice_reader NOLOGIN;
CREATE ROLE geoservice_writer NOLOGIN;
CREATE ROLE geoservice_recorder NOLOGIN;
CREATE ROLE geoservice_api LOGIN PASSWORD '${GEOSERVICE_API_PASSWORD}' IN ROLE geoservice_reader;
CREATE ROLE geoservice_etl LOGIN PASSWORD '${GEOSERVICE_ETL_PASSWORD}' IN ROLE geoservice_writer;
CREATE ROLE geoservice_rec LOGIN PASSWORD '${GEOSERVICE_RECORDER_PASSWORD}' IN ROLE geoservice_recorder;
GRANT geoservice_reader, geoservice_writer, geoservice_recorder TO geoservice_owner;
CREATE DATABASE geoservice OWNER geoservice_owner;
SQL
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname geoservice \
  -c "SET client_min_messages = warning; CREATE EXTENSION IF NOT EXISTS postgis; CREATE EXTENSION IF NOT EXISTS pgrouting;"
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname geoservice -1 -f /geoservice/audit_guard.sql
