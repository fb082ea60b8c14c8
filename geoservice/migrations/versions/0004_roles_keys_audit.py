"""Least privilege, API keys and the audit log.

- ``geoservice_reader`` (the API): reads what it serves, never officers' phone numbers,
  writes nothing. ``geoservice_writer`` (the ETL): adds snapshots and versions, moves the
  current pointer, manages keys; deletes nothing. The owner runs migrations. Both roles
  are cluster-wide NOLOGIN groups, created here when missing; logins are their members.
- ``api_key``: keys stored as SHA-256 hashes only, with a role and an optional rate.
- ``audit_log``: append-only (no UPDATE or DELETE grant, and a trigger refusing both and
  TRUNCATE, whoever asks), written in the same transaction as what it records.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

S = "geoservice"
READER, WRITER = "geoservice_reader", "geoservice_writer"
DATA_TABLES = (
    "dataset_version",
    "snapshot",
    "dataset_version_layer",
    "current_dataset",
    "boundary",
    "station",
    "officer_unit",
    "patrol_segment",
    "road_node",
    "road_edge",
)
VIEWS = (
    "current_district",
    "current_town",
    "current_unit",
    "current_large_grid",
    "current_grid",
    "current_station",
    "current_officer_unit",
    "current_patrol_segment",
    "current_road_node",
)
OFFICER_PUBLIC_COLUMNS = "snapshot_id, code, name, rank, station_code"


def upgrade() -> None:
    for role in (READER, WRITER):
        op.execute(f"""
            DO $$ BEGIN
                IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN
                    CREATE ROLE {role} NOLOGIN;
                END IF;
            END $$
        """)
    op.create_table(
        "api_key",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("key_id", sa.Text, nullable=False, unique=True),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column(
            "key_hash", sa.Text, nullable=False, comment="SHA-256 of the key; the key is not kept"
        ),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("created_by", sa.Text, nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
        sa.Column("rate_per_s", sa.Float),
        sa.Column("burst", sa.Integer),
        sa.CheckConstraint("role IN ('dispatch', 'planner', 'gis', 'admin')", name="api_key_role"),
        schema=S,
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("via", sa.Text, nullable=False),
        sa.Column("os_user", sa.Text),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("version_id", sa.Integer),
        sa.Column("detail", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("note", sa.Text, nullable=False, server_default=""),
        sa.CheckConstraint("via IN ('cli', 'api')", name="audit_log_via"),
        schema=S,
    )
    op.execute(f"""
        CREATE FUNCTION {S}.audit_log_is_append_only() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'the audit log is append-only: % refused', TG_OP;
        END $$
    """)
    op.execute(f"""
        CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON {S}.audit_log
        FOR EACH ROW EXECUTE FUNCTION {S}.audit_log_is_append_only()
    """)
    op.execute(f"""
        CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON {S}.audit_log
        FOR EACH STATEMENT EXECUTE FUNCTION {S}.audit_log_is_append_only()
    """)

    op.execute(f"GRANT USAGE ON SCHEMA {S} TO {READER}, {WRITER}")
    tables = ", ".join(f"{S}.{t}" for t in DATA_TABLES)
    views = ", ".join(f"{S}.{v}" for v in VIEWS)
    # the reader: what the API serves, officers without their personal columns
    op.execute(f"GRANT SELECT ON {tables}, {views}, public.road_edges TO {READER}")
    op.execute(f"GRANT SELECT ({OFFICER_PUBLIC_COLUMNS}) ON {S}.officer TO {READER}")
    op.execute(f"GRANT SELECT ON {S}.audit_log, {S}.api_key, {S}.alembic_version TO {READER}")
    # the writer: new rows only, the pointer, key revocation; nothing is deleted
    op.execute(f"GRANT SELECT, INSERT ON {tables}, {S}.officer TO {WRITER}")
    op.execute(f"GRANT SELECT ON {views}, {S}.current_officer, public.road_edges TO {WRITER}")
    op.execute(f"GRANT UPDATE (feature_count) ON {S}.snapshot TO {WRITER}")
    op.execute(f"GRANT UPDATE ON {S}.current_dataset TO {WRITER}")
    op.execute(f"GRANT UPDATE (status) ON {S}.dataset_version TO {WRITER}")
    op.execute(f"GRANT SELECT, INSERT ON {S}.audit_log TO {WRITER}")
    op.execute(f"GRANT SELECT, INSERT, UPDATE (revoked_at) ON {S}.api_key TO {WRITER}")
    op.execute(f"GRANT SELECT ON {S}.alembic_version TO {WRITER}")
    op.execute(f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA {S} TO {WRITER}")


def downgrade() -> None:
    op.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA {S} FROM {READER}, {WRITER}")
    op.execute(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA {S} FROM {READER}, {WRITER}")
    op.execute(f"REVOKE ALL ON public.road_edges FROM {READER}, {WRITER}")
    op.execute(f"REVOKE USAGE ON SCHEMA {S} FROM {READER}, {WRITER}")
    op.drop_table("audit_log", schema=S)
    op.execute(f"DROP FUNCTION {S}.audit_log_is_append_only()")
    op.drop_table("api_key", schema=S)
    # the roles are cluster-wide (other databases may use them): they stay
