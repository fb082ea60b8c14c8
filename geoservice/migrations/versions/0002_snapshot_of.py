"""Read any dataset version: ``geoservice.snapshot_of(version, layer)``.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        CREATE FUNCTION geoservice.snapshot_of(version integer, layer_name text)
        RETURNS integer LANGUAGE sql STABLE PARALLEL SAFE AS $$
            SELECT snapshot_id FROM geoservice.dataset_version_layer
            WHERE version_id = version AND layer = layer_name
        $$
    """)


def downgrade() -> None:
    op.execute("DROP FUNCTION geoservice.snapshot_of(integer, text)")
