"""The grid event register and patrol positions.

- ``event``: one row per grid event (id from the source system), located at its time:
  the grid, unit and town of the dataset version current then (``dataset_version``).
- ``patrol_position``: GPS positions of patrol units, **partitioned by day** (one
  partition per China-time day, made on demand by ``ensure_position_day``, dropped after
  the kept number of days by ``drop_position_days``; both run as the owner).
- ``geoservice_recorder``: the API's only write role — positions and events, nothing
  else. The reader and the writer read both.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

S = "geoservice"
READER, WRITER, RECORDER = "geoservice_reader", "geoservice_writer", "geoservice_recorder"


def upgrade() -> None:
    op.execute(f"""
        DO $$ BEGIN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{RECORDER}') THEN
                CREATE ROLE {RECORDER} NOLOGIN;
            END IF;
        END $$
    """)
    op.create_table(
        "event",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("category", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True)),
        sa.Column("description", sa.Text),
        sa.Column("geom", Geometry("POINT", 4326, spatial_index=False), nullable=False),
        sa.Column("grid_code", sa.Text, nullable=False),
        sa.Column("unit_code", sa.Text),
        sa.Column("town_code", sa.Text),
        sa.Column(
            "dataset_version",
            sa.Integer,
            sa.ForeignKey(f"{S}.dataset_version.id"),
            nullable=False,
        ),
        sa.Column(
            "recorded_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("recorded_by", sa.Text, nullable=False),
        sa.CheckConstraint("status IN ('open', 'closed')", name="event_status"),
        sa.CheckConstraint(
            "closed_at IS NULL OR (status = 'closed' AND closed_at >= time)",
            name="event_closed_at",
        ),
        schema=S,
    )
    op.create_index("event_time", "event", ["time"], schema=S)
    op.create_index("event_grid", "event", ["grid_code"], schema=S)
    op.execute(f"CREATE INDEX event_geom ON {S}.event USING gist (geom)")

    op.execute(f"""
        CREATE TABLE {S}.patrol_position (
            unit text NOT NULL,
            time timestamptz NOT NULL,
            geom geometry(Point, 4326) NOT NULL,
            received_at timestamptz NOT NULL DEFAULT now()
        ) PARTITION BY RANGE (time)
    """)
    op.execute(f"CREATE INDEX patrol_position_unit_time ON {S}.patrol_position (unit, time DESC)")
    op.execute(f"""
        CREATE FUNCTION {S}.ensure_position_day(day date) RETURNS void
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
        CREATE FUNCTION {S}.drop_position_days(keep_days integer) RETURNS integer
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
    op.execute(f"REVOKE ALL ON FUNCTION {S}.ensure_position_day(date) FROM PUBLIC")
    op.execute(f"REVOKE ALL ON FUNCTION {S}.drop_position_days(integer) FROM PUBLIC")

    op.execute(f"GRANT USAGE ON SCHEMA {S} TO {RECORDER}")
    op.execute(f"GRANT SELECT ON {S}.event, {S}.patrol_position TO {READER}, {WRITER}")
    op.execute(f"GRANT INSERT, UPDATE ON {S}.event TO {WRITER}")
    op.execute(f"GRANT SELECT, INSERT ON {S}.event, {S}.patrol_position TO {RECORDER}")
    op.execute(
        f"GRANT SELECT ON {S}.current_history, {S}.dataset_version, {S}.current_dataset, "
        f"{S}.alembic_version TO {RECORDER}"
    )
    op.execute(
        f"GRANT EXECUTE ON FUNCTION {S}.ensure_position_day(date), "
        f"{S}.drop_position_days(integer) TO {RECORDER}, {WRITER}"
    )


def downgrade() -> None:
    op.execute(f"DROP TABLE {S}.patrol_position")
    op.execute(f"DROP FUNCTION {S}.ensure_position_day(date)")
    op.execute(f"DROP FUNCTION {S}.drop_position_days(integer)")
    op.drop_table("event", schema=S)
    op.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA {S} FROM {RECORDER}")
    op.execute(f"REVOKE USAGE ON SCHEMA {S} FROM {RECORDER}")
