"""Initial schema: dataset versions, layer snapshots, boundaries, police, roads.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

S = "geoservice"
LAYERS = (
    "district",
    "town",
    "unit",
    "large_grid",
    "grid",
    "stations",
    "officers",
    "patrols",
    "roads",
)

CURRENT_VIEWS = {
    # view name: (table, layer or None for boundary views named after their layer)
    "current_district": ("boundary", "district"),
    "current_town": ("boundary", "town"),
    "current_unit": ("boundary", "unit"),
    "current_large_grid": ("boundary", "large_grid"),
    "current_grid": ("boundary", "grid"),
    "current_station": ("station", "stations"),
    "current_officer": ("officer", "officers"),
    "current_officer_unit": ("officer_unit", "officers"),
    "current_patrol_segment": ("patrol_segment", "patrols"),
    "current_road_node": ("road_node", "roads"),
}


def snapshot_fk() -> sa.Column:
    return sa.Column(
        "snapshot_id",
        sa.Integer,
        sa.ForeignKey(f"{S}.snapshot.id", ondelete="CASCADE"),
        nullable=False,
    )


def geometry(kind: str) -> sa.Column:
    return sa.Column("geom", Geometry(kind, srid=4326, spatial_index=False), nullable=False)


def gist(table: str) -> None:
    op.create_index(f"{table}_geom_gist", table, ["geom"], schema=S, postgresql_using="gist")


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    op.execute("CREATE EXTENSION IF NOT EXISTS pgrouting")
    op.create_table(
        "dataset_version",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("created_by", sa.Text, nullable=False),
        sa.Column("note", sa.Text, nullable=False, server_default=""),
        sa.Column("sources", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
        sa.Column("status", sa.Text, nullable=False, server_default="published"),
        sa.Column("parent_id", sa.Integer, sa.ForeignKey(f"{S}.dataset_version.id")),
        sa.CheckConstraint("status IN ('published', 'archived')", name="dataset_version_status"),
        schema=S,
    )
    op.create_table(
        "snapshot",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("layer", sa.Text, nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("feature_count", sa.Integer, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("sha256", sa.Text, nullable=False),
        sa.CheckConstraint(
            "layer IN (" + ", ".join(f"'{name}'" for name in LAYERS) + ")", name="snapshot_layer"
        ),
        schema=S,
    )
    op.create_table(
        "dataset_version_layer",
        sa.Column(
            "version_id",
            sa.Integer,
            sa.ForeignKey(f"{S}.dataset_version.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("layer", sa.Text, primary_key=True),
        sa.Column("snapshot_id", sa.Integer, sa.ForeignKey(f"{S}.snapshot.id"), nullable=False),
        schema=S,
    )
    op.create_table(
        "current_dataset",
        sa.Column("singleton", sa.Boolean, primary_key=True, server_default=sa.text("true")),
        sa.Column(
            "version_id", sa.Integer, sa.ForeignKey(f"{S}.dataset_version.id"), nullable=False
        ),
        sa.Column(
            "made_current_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.func.now(),
        ),
        sa.CheckConstraint("singleton", name="current_dataset_singleton"),
        schema=S,
    )
    op.create_table(
        "boundary",
        snapshot_fk(),
        sa.Column("code", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("parent_code", sa.Text),
        sa.Column("kind", sa.Text),
        sa.Column("population", sa.Integer),
        geometry("MULTIPOLYGON"),
        sa.PrimaryKeyConstraint("snapshot_id", "code"),
        schema=S,
    )
    gist("boundary")
    op.create_table(
        "station",
        snapshot_fk(),
        sa.Column("code", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column(
            "area_code",
            sa.Text,
            nullable=False,
            comment="the town (station) or unit (post) it answers for",
        ),
        geometry("POINT"),
        sa.PrimaryKeyConstraint("snapshot_id", "code"),
        sa.CheckConstraint("kind IN ('station', 'post')", name="station_kind"),
        schema=S,
    )
    gist("station")
    op.create_table(
        "officer",
        snapshot_fk(),
        sa.Column("code", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("rank", sa.Text, nullable=False, server_default=""),
        sa.Column("phone", sa.Text, comment="personal data: never part of a dispatch answer"),
        sa.Column("station_code", sa.Text),
        sa.PrimaryKeyConstraint("snapshot_id", "code"),
        schema=S,
    )
    op.create_table(
        "officer_unit",
        snapshot_fk(),
        sa.Column("officer_code", sa.Text, nullable=False),
        sa.Column("unit_code", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("snapshot_id", "officer_code", "unit_code"),
        schema=S,
    )
    op.create_table(
        "patrol_segment",
        snapshot_fk(),
        sa.Column("code", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("level", sa.Integer, nullable=False),
        sa.Column("team", sa.Text, nullable=False, server_default=""),
        sa.Column("team_size", sa.Integer, nullable=False),
        geometry("LINESTRING"),
        sa.PrimaryKeyConstraint("snapshot_id", "code"),
        schema=S,
    )
    gist("patrol_segment")
    op.create_table(
        "road_node",
        snapshot_fk(),
        sa.Column("id", sa.BigInteger, nullable=False),
        sa.Column("osm_id", sa.BigInteger),
        geometry("POINT"),
        sa.PrimaryKeyConstraint("snapshot_id", "id"),
        schema=S,
    )
    op.create_table(
        "road_edge",
        snapshot_fk(),
        sa.Column("id", sa.BigInteger, nullable=False),
        sa.Column("source", sa.BigInteger, nullable=False),
        sa.Column("target", sa.BigInteger, nullable=False),
        sa.Column(
            "cost", sa.Float, nullable=False, comment="seconds, default profile, source to target"
        ),
        sa.Column(
            "reverse_cost", sa.Float, nullable=False, comment="seconds; < 0 for one-way edges"
        ),
        sa.Column("length_m", sa.Float, nullable=False),
        sa.Column("highway", sa.Text, nullable=False),
        sa.Column("maxspeed_kmh", sa.Float),
        sa.Column("oneway", sa.Boolean, nullable=False),
        sa.Column("name", sa.Text),
        sa.Column("osm_way_id", sa.BigInteger),
        geometry("LINESTRING"),
        sa.PrimaryKeyConstraint("snapshot_id", "id"),
        schema=S,
    )
    gist("road_edge")

    op.execute(f"""
        CREATE FUNCTION {S}.current_snapshot(layer_name text) RETURNS integer
        LANGUAGE sql STABLE PARALLEL SAFE AS $$
            SELECT l.snapshot_id
            FROM {S}.current_dataset c
            JOIN {S}.dataset_version_layer l ON l.version_id = c.version_id
            WHERE l.layer = layer_name
        $$
    """)
    for view, (table, layer) in CURRENT_VIEWS.items():
        op.execute(
            f"CREATE VIEW {S}.{view} AS SELECT * FROM {S}.{table} "
            f"WHERE snapshot_id = {S}.current_snapshot('{layer}')"
        )
    # pgRouting's convention, by its bare name on the default search_path.
    op.execute(f"""
        CREATE VIEW public.road_edges AS
        SELECT id, source, target, cost, reverse_cost, length_m, highway, maxspeed_kmh,
               oneway, name, osm_way_id, geom
        FROM {S}.road_edge
        WHERE snapshot_id = {S}.current_snapshot('roads')
    """)


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS public.road_edges")
    for view in CURRENT_VIEWS:
        op.execute(f"DROP VIEW IF EXISTS {S}.{view}")
    op.execute(f"DROP FUNCTION IF EXISTS {S}.current_snapshot(text)")
    for table in (
        "road_edge",
        "road_node",
        "patrol_segment",
        "officer_unit",
        "officer",
        "station",
        "boundary",
        "current_dataset",
        "dataset_version_layer",
        "snapshot",
        "dataset_version",
    ):
        op.drop_table(table, schema=S)
