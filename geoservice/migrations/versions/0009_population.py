"""Where people live, below the grid: the ``population`` layer.

Points (households, buildings) or polygons (building footprints) with ``residents`` and
``households``, versioned like every layer (``snapshot.layer = 'population'``), read by
grid design (``geoservice grids propose``). ``current_population`` reads the current
version's.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

S = "geoservice"
READER, WRITER = "geoservice_reader", "geoservice_writer"
BEFORE = ("district", "town", "unit", "large_grid", "grid", "stations", "officers")
AFTER = ("patrols", "roads")


def _layers(*names: str) -> str:
    return "layer IN (" + ", ".join(f"'{name}'" for name in names) + ")"


def upgrade() -> None:
    op.drop_constraint("snapshot_layer", "snapshot", schema=S, type_="check")
    op.create_check_constraint(
        "snapshot_layer", "snapshot", _layers(*BEFORE, *AFTER, "population"), schema=S
    )
    op.create_table(
        "population",
        sa.Column(
            "snapshot_id",
            sa.Integer,
            sa.ForeignKey(f"{S}.snapshot.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("code", sa.Text, nullable=False),
        sa.Column("residents", sa.Integer, nullable=False),
        sa.Column("households", sa.Integer, nullable=False),
        sa.Column("geom", Geometry("GEOMETRY", 4326, spatial_index=False), nullable=False),
        sa.PrimaryKeyConstraint("snapshot_id", "code"),
        sa.CheckConstraint("residents >= 0 AND households >= 0", name="population_counts"),
        schema=S,
    )
    op.create_index(
        "population_geom_gist", "population", ["geom"], schema=S, postgresql_using="gist"
    )
    op.execute(
        f"CREATE VIEW {S}.current_population AS SELECT * FROM {S}.population "
        f"WHERE snapshot_id = {S}.current_snapshot('population')"
    )
    op.execute(f"GRANT SELECT ON {S}.population, {S}.current_population TO {READER}")
    op.execute(f"GRANT SELECT, INSERT ON {S}.population TO {WRITER}")
    op.execute(f"GRANT SELECT ON {S}.current_population TO {WRITER}")


def downgrade() -> None:
    op.execute(f"DROP VIEW {S}.current_population")
    op.drop_table("population", schema=S)
    op.execute(
        f"DELETE FROM {S}.dataset_version_layer WHERE layer = 'population'; "
        f"DELETE FROM {S}.snapshot WHERE layer = 'population'"
    )
    op.drop_constraint("snapshot_layer", "snapshot", schema=S, type_="check")
    op.create_check_constraint("snapshot_layer", "snapshot", _layers(*BEFORE, *AFTER), schema=S)
