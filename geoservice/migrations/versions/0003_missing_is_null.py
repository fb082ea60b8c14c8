"""A missing value is NULL: officers' rank and patrol teams may be missing.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

COLUMNS = (("officer", "rank"), ("patrol_segment", "team"))


def upgrade() -> None:
    for table, column in COLUMNS:
        op.alter_column(table, column, nullable=True, server_default=None, schema="geoservice")
        op.execute(f"UPDATE geoservice.{table} SET {column} = NULL WHERE {column} = ''")
    op.execute("UPDATE geoservice.road_edge SET name = NULL WHERE name = 'nan'")


def downgrade() -> None:
    for table, column in COLUMNS:
        op.execute(f"UPDATE geoservice.{table} SET {column} = '' WHERE {column} IS NULL")
        op.alter_column(table, column, nullable=False, server_default="", schema="geoservice")
