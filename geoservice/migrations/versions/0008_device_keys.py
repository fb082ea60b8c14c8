"""Device keys bound to patrol units; bounded events; least privilege completed.

- ``api_key.units``: the patrol units whose positions a key may post; the ``tracker`` role
  (one key per patrol car's GPS device, below ``dispatch``) must have at least one.
- ``event``: times (and closing times) in [1900, 2200), ids of at most 64 characters,
  descriptions of at most 2,000: no stored row can break a read (the API and the ETL check
  narrower bounds, ``geoservice.events``). A database holding events outside these is not
  upgraded: the migration names them.
- Position partitions: ``ensure_position_day`` makes partitions only from yesterday to the
  day after tomorrow (China time); ``drop_position_days`` refuses to keep fewer days than
  ``position_retention.min_keep_days`` (7 unless a DBA changes it, as the owner). Only the
  recorder (the API's positions login) may execute them.
- ``api_key``: the writer (the ETL login, which runs ``geoservice keys``) no longer reads
  or writes the table; it creates and revokes keys only through ``create_api_key`` and
  ``revoke_api_key`` (SECURITY DEFINER), which write the audit entry in the same
  transaction and notify the servers.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

S = "geoservice"
READER, WRITER, RECORDER = "geoservice_reader", "geoservice_writer", "geoservice_recorder"
MIN_KEEP_DAYS = 7
EVENT_TIME_BOUNDS = (
    "time >= '1900-01-01 00:00:00+00' AND time < '2200-01-01 00:00:00+00' "
    "AND (closed_at IS NULL OR closed_at < '2200-01-01 00:00:00+00')"
)
EVENT_CHECKS = {
    "event_time_bounds": EVENT_TIME_BOUNDS,
    "event_id_length": "length(id) <= 64",
    "event_description_length": "length(description) <= 2000",
}


def upgrade() -> None:
    op.add_column(
        "api_key",
        sa.Column(
            "units",
            ARRAY(sa.Text),
            comment="The patrol units whose positions the key may post",
        ),
        schema=S,
    )
    op.drop_constraint("api_key_role", "api_key", schema=S, type_="check")
    op.create_check_constraint(
        "api_key_role",
        "api_key",
        "role IN ('tracker', 'dispatch', 'planner', 'gis', 'admin')",
        schema=S,
    )
    op.create_check_constraint(
        "api_key_tracker_units",
        "api_key",
        "role <> 'tracker' OR cardinality(units) > 0",
        schema=S,
    )
    for name, check in EVENT_CHECKS.items():
        bad = (
            op.get_bind()
            .execute(sa.text(f"SELECT id FROM {S}.event WHERE NOT ({check}) ORDER BY id LIMIT 10"))
            .scalars()
            .all()
        )
        if bad:
            msg = (
                f"events {bad} break {name} ({check}): correct them (geoservice etl events "
                "replaces events by id) and upgrade again"
            )
            raise RuntimeError(msg)
        op.create_check_constraint(name, "event", check, schema=S)
    _positions_upgrade()
    _keys_upgrade()


def _positions_upgrade() -> None:
    op.create_table(
        "position_retention",
        sa.Column("singleton", sa.Boolean, primary_key=True, server_default=sa.true()),
        sa.Column("min_keep_days", sa.Integer, nullable=False),
        sa.CheckConstraint("singleton", name="position_retention_singleton"),
        sa.CheckConstraint("min_keep_days >= 1", name="position_retention_min_keep_days"),
        schema=S,
    )
    op.execute(f"INSERT INTO {S}.position_retention (min_keep_days) VALUES ({MIN_KEEP_DAYS})")
    op.execute(f"""
        CREATE OR REPLACE FUNCTION {S}.ensure_position_day(day date) RETURNS void
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
        DECLARE
            name text := 'patrol_position_' || to_char(day, 'YYYYMMDD');
            starts timestamptz := (day::timestamp AT TIME ZONE 'Asia/Shanghai');
            today date := (now() AT TIME ZONE 'Asia/Shanghai')::date;
        BEGIN
            IF day IS NULL OR day < today - 1 OR day > today + 2 THEN
                RAISE EXCEPTION 'no partition for %: patrol positions are kept in partitions '
                    'from yesterday (%) to the day after tomorrow (%), China time',
                    day, today - 1, today + 2
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            IF to_regclass('{S}.' || name) IS NULL THEN
                EXECUTE format(
                    'CREATE TABLE {S}.%I PARTITION OF {S}.patrol_position '
                    'FOR VALUES FROM (%L) TO (%L)',
                    name, starts, starts + interval '1 day');
            END IF;
        END $$
    """)
    op.execute(f"""
        CREATE OR REPLACE FUNCTION {S}.drop_position_days(keep_days integer) RETURNS integer
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
        DECLARE
            part record;
            dropped integer := 0;
            minimum integer := (SELECT min_keep_days FROM {S}.position_retention);
            oldest date;
        BEGIN
            IF keep_days IS NULL OR keep_days < minimum THEN
                RAISE EXCEPTION 'keep_days % refused: at least % days of patrol positions are '
                    'kept ({S}.position_retention)', keep_days, minimum
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            oldest := (now() AT TIME ZONE 'Asia/Shanghai')::date - keep_days + 1;
            FOR part IN
                SELECT c.relname FROM pg_inherits i
                JOIN pg_class c ON c.oid = i.inhrelid
                WHERE i.inhparent = '{S}.patrol_position'::regclass
                  AND c.relname ~ '^patrol_position_[0-9]{{8}}$'
                  AND to_date(right(c.relname, 8), 'YYYYMMDD') < oldest
            LOOP
                EXECUTE format('DROP TABLE {S}.%I', part.relname);
                dropped := dropped + 1;
            END LOOP;
            RETURN dropped;
        END $$
    """)
    op.execute(
        f"REVOKE ALL ON FUNCTION {S}.ensure_position_day(date), "
        f"{S}.drop_position_days(integer) FROM PUBLIC, {WRITER}"
    )
    op.execute(
        f"GRANT EXECUTE ON FUNCTION {S}.ensure_position_day(date), "
        f"{S}.drop_position_days(integer) TO {RECORDER}"
    )
    op.execute(f"GRANT SELECT ON {S}.position_retention TO {READER}, {WRITER}, {RECORDER}")


def _keys_upgrade() -> None:
    op.execute(f"""
        CREATE FUNCTION {S}.create_api_key(
            p_name text, p_key_id text, p_role text, p_key_hash text, p_rate_per_s float8,
            p_burst integer, p_units text[], p_actor text, p_via text, p_os_user text
        ) RETURNS boolean
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
        BEGIN
            IF EXISTS (SELECT FROM {S}.api_key k WHERE k.name = p_name) THEN
                RETURN false;
            END IF;
            INSERT INTO {S}.api_key
                (name, key_id, role, key_hash, created_by, rate_per_s, burst, units)
            VALUES (p_name, p_key_id, p_role, p_key_hash, p_actor, p_rate_per_s, p_burst,
                p_units);
            INSERT INTO {S}.audit_log (actor, via, os_user, action, detail)
            VALUES (p_actor, p_via, p_os_user, 'key_created', jsonb_strip_nulls(
                jsonb_build_object('name', p_name, 'role', p_role, 'units', to_jsonb(p_units))));
            PERFORM pg_notify('geoservice_keys', p_name);
            RETURN true;
        END $$
    """)
    op.execute(f"""
        CREATE FUNCTION {S}.revoke_api_key(
            p_name text, p_actor text, p_via text, p_os_user text
        ) RETURNS TABLE (key_found boolean, revoked_before timestamptz)
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
        DECLARE
            present boolean;
            earlier timestamptz;
        BEGIN
            SELECT true, k.revoked_at INTO present, earlier
                FROM {S}.api_key k WHERE k.name = p_name FOR UPDATE;
            IF present IS NULL THEN
                RETURN QUERY SELECT false, NULL::timestamptz;
                RETURN;
            END IF;
            IF earlier IS NOT NULL THEN
                RETURN QUERY SELECT true, earlier;
                RETURN;
            END IF;
            UPDATE {S}.api_key k SET revoked_at = now() WHERE k.name = p_name;
            INSERT INTO {S}.audit_log (actor, via, os_user, action, detail)
            VALUES (p_actor, p_via, p_os_user, 'key_revoked', jsonb_build_object('name', p_name));
            PERFORM pg_notify('geoservice_keys', p_name);
            RETURN QUERY SELECT true, NULL::timestamptz;
        END $$
    """)
    functions = (
        f"{S}.create_api_key(text, text, text, text, float8, integer, text[], text, text, text), "
        f"{S}.revoke_api_key(text, text, text, text)"
    )
    op.execute(f"REVOKE ALL ON FUNCTION {functions} FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {functions} TO {WRITER}")
    op.execute(f"REVOKE ALL ON {S}.api_key FROM {WRITER}")


def downgrade() -> None:
    op.execute(f"GRANT SELECT, INSERT, UPDATE (revoked_at) ON {S}.api_key TO {WRITER}")
    op.execute(f"DROP FUNCTION {S}.revoke_api_key(text, text, text, text)")
    op.execute(
        f"DROP FUNCTION {S}.create_api_key(text, text, text, text, float8, integer, text[], "
        "text, text, text)"
    )
    op.execute(
        f"GRANT EXECUTE ON FUNCTION {S}.ensure_position_day(date), "
        f"{S}.drop_position_days(integer) TO {WRITER}"
    )
    # the functions as 0006 made them (they read no retention table)
    op.execute(f"""
        CREATE OR REPLACE FUNCTION {S}.ensure_position_day(day date) RETURNS void
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = {S}, public AS $$
        DECLARE
            name text := 'patrol_position_' || to_char(day, 'YYYYMMDD');
            starts timestamptz := (day::timestamp AT TIME ZONE 'Asia/Shanghai');
        BEGIN
            IF to_regclass('{S}.' || name) IS NULL THEN
                EXECUTE format(
                    'CREATE TABLE {S}.%I PARTITION OF {S}.patrol_position '
                    'FOR VALUES FROM (%L) TO (%L)',
                    name, starts, starts + interval '1 day');
            END IF;
        END $$
    """)
    op.execute(f"""
        CREATE OR REPLACE FUNCTION {S}.drop_position_days(keep_days integer) RETURNS integer
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = {S}, public AS $$
        DECLARE
            part record;
            dropped integer := 0;
            oldest date := (now() AT TIME ZONE 'Asia/Shanghai')::date - keep_days + 1;
        BEGIN
            FOR part IN
                SELECT c.relname FROM pg_inherits i
                JOIN pg_class c ON c.oid = i.inhrelid
                WHERE i.inhparent = '{S}.patrol_position'::regclass
                  AND to_date(right(c.relname, 8), 'YYYYMMDD') < oldest
            LOOP
                EXECUTE format('DROP TABLE {S}.%I', part.relname);
                dropped := dropped + 1;
            END LOOP;
            RETURN dropped;
        END $$
    """)
    op.drop_table("position_retention", schema=S)
    for name in EVENT_CHECKS:
        op.drop_constraint(name, "event", schema=S, type_="check")
    op.execute(f"UPDATE {S}.api_key SET revoked_at = now() WHERE role = 'tracker'")
    op.drop_constraint("api_key_tracker_units", "api_key", schema=S, type_="check")
    op.drop_constraint("api_key_role", "api_key", schema=S, type_="check")
    op.execute(f"UPDATE {S}.api_key SET role = 'dispatch' WHERE role = 'tracker'")
    op.create_check_constraint(
        "api_key_role", "api_key", "role IN ('dispatch', 'planner', 'gis', 'admin')", schema=S
    )
    op.drop_column("api_key", "units", schema=S)
