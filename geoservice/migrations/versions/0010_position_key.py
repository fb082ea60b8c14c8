"""A patrol unit reports one position per instant: ``(unit, time)`` is unique.

Positions received while PostgreSQL is away are journaled by the server and written when
it is back, with ``ON CONFLICT (unit, time) DO NOTHING``; a replay cut short and run again,
or a device sending the same fix twice, stores it once. The unique index replaces the
plain ``patrol_position_unit_time`` index (same columns, so reads keep their plan); rows
already stored twice keep their first copy.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

S = "geoservice"


def upgrade() -> None:
    op.execute(f"""
        DELETE FROM {S}.patrol_position AS a USING {S}.patrol_position AS b
        WHERE a.unit = b.unit AND a.time = b.time AND a.tableoid = b.tableoid
          AND a.ctid > b.ctid
    """)
    op.execute(f"DROP INDEX {S}.patrol_position_unit_time")
    op.execute(
        f"CREATE UNIQUE INDEX patrol_position_unit_time ON {S}.patrol_position (unit, time DESC)"
    )


def downgrade() -> None:
    op.execute(f"DROP INDEX {S}.patrol_position_unit_time")
    op.execute(f"CREATE INDEX patrol_position_unit_time ON {S}.patrol_position (unit, time DESC)")
