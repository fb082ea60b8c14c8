"""PostGIS tables (SQLAlchemy Core + GeoAlchemy2), schema ``geoservice``.

Versioning: every load writes rows under a new *snapshot* of one layer. A *dataset
version* maps each layer to one snapshot, so publishing a version that changes only the
officers reuses the snapshots of every other layer, and every earlier version stays
readable. ``current_dataset`` is a one-row pointer: making another version current is
one UPDATE. Views ``geoservice.current_*`` and ``public.road_edges`` (pgRouting's
convention) read the current version.
"""

from __future__ import annotations

from typing import Final

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

SCHEMA: Final = "geoservice"
NOTIFY_CHANNEL: Final = "geoservice_dataset"

BOUNDARY_LAYERS: Final = ("district", "town", "unit", "large_grid", "grid")
"""Boundary layers, top down; ``parent_code`` names a feature of the layer above."""

LAYERS: Final = (*BOUNDARY_LAYERS, "stations", "officers", "patrols", "roads", "population")
"""Every layer a dataset version maps to a snapshot."""

UNIT_KINDS: Final = ("village", "community", "scenic_area")
STATION_KINDS: Final = ("station", "post")

metadata = MetaData(schema=SCHEMA)


def _snapshot_fk() -> Column:
    return Column(
        "snapshot_id",
        Integer,
        ForeignKey(f"{SCHEMA}.snapshot.id", ondelete="CASCADE"),
        nullable=False,
    )


dataset_version = Table(
    "dataset_version",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("created_by", Text, nullable=False),
    Column("note", Text, nullable=False, server_default=""),
    Column("sources", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("status", Text, nullable=False, server_default="published"),
    Column("parent_id", Integer, ForeignKey(f"{SCHEMA}.dataset_version.id")),
    CheckConstraint("status IN ('published', 'draft', 'archived')", name="dataset_version_status"),
)

snapshot = Table(
    "snapshot",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("layer", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("feature_count", Integer, nullable=False),
    Column("source", Text, nullable=False),
    Column("sha256", Text, nullable=False),
    CheckConstraint(
        "layer IN (" + ", ".join(f"'{name}'" for name in LAYERS) + ")", name="snapshot_layer"
    ),
)

dataset_version_layer = Table(
    "dataset_version_layer",
    metadata,
    Column(
        "version_id",
        Integer,
        ForeignKey(f"{SCHEMA}.dataset_version.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("layer", Text, primary_key=True),
    Column("snapshot_id", Integer, ForeignKey(f"{SCHEMA}.snapshot.id"), nullable=False),
)

current_dataset = Table(
    "current_dataset",
    metadata,
    Column("singleton", Boolean, primary_key=True, server_default=text("true")),
    Column("version_id", Integer, ForeignKey(f"{SCHEMA}.dataset_version.id"), nullable=False),
    Column("made_current_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("singleton", name="current_dataset_singleton"),
)

current_history = Table(
    "current_history",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("version_id", Integer, ForeignKey(f"{SCHEMA}.dataset_version.id"), nullable=False),
    Column("since", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("current_history_since", "since"),
)
"""Every time a version became current (``at=`` reads)."""

boundary = Table(
    "boundary",
    metadata,
    _snapshot_fk(),
    Column("code", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("parent_code", Text),
    Column("kind", Text),
    Column("population", Integer),
    Column("geom", Geometry("MULTIPOLYGON", srid=4326, spatial_index=False), nullable=False),
    PrimaryKeyConstraint("snapshot_id", "code"),
    Index("boundary_geom_gist", "geom", postgresql_using="gist"),
)

station = Table(
    "station",
    metadata,
    _snapshot_fk(),
    Column("code", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column(
        "area_code",
        Text,
        nullable=False,
        comment="the town (station) or unit (post) it answers for",
    ),
    Column("geom", Geometry("POINT", srid=4326, spatial_index=False), nullable=False),
    PrimaryKeyConstraint("snapshot_id", "code"),
    CheckConstraint("kind IN ('station', 'post')", name="station_kind"),
    Index("station_geom_gist", "geom", postgresql_using="gist"),
)

officer = Table(
    "officer",
    metadata,
    _snapshot_fk(),
    Column("code", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("rank", Text),
    Column("phone", Text, comment="personal data: never part of a dispatch answer"),
    Column("station_code", Text),
    PrimaryKeyConstraint("snapshot_id", "code"),
)

officer_unit = Table(
    "officer_unit",
    metadata,
    _snapshot_fk(),
    Column("officer_code", Text, nullable=False),
    Column("unit_code", Text, nullable=False),
    PrimaryKeyConstraint("snapshot_id", "officer_code", "unit_code"),
)

patrol_segment = Table(
    "patrol_segment",
    metadata,
    _snapshot_fk(),
    Column("code", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("level", Integer, nullable=False),
    Column("team", Text),
    Column("team_size", Integer, nullable=False),
    Column("geom", Geometry("LINESTRING", srid=4326, spatial_index=False), nullable=False),
    PrimaryKeyConstraint("snapshot_id", "code"),
    Index("patrol_segment_geom_gist", "geom", postgresql_using="gist"),
)

population = Table(
    "population",
    metadata,
    _snapshot_fk(),
    Column("code", Text, nullable=False),
    Column("residents", Integer, nullable=False),
    Column("households", Integer, nullable=False),
    Column("geom", Geometry("GEOMETRY", srid=4326, spatial_index=False), nullable=False),
    PrimaryKeyConstraint("snapshot_id", "code"),
    CheckConstraint("residents >= 0 AND households >= 0", name="population_counts"),
    Index("population_geom_gist", "geom", postgresql_using="gist"),
)
"""Where people live: household or building points, or footprints (grid design)."""

road_node = Table(
    "road_node",
    metadata,
    _snapshot_fk(),
    Column("id", BigInteger, nullable=False),
    Column("osm_id", BigInteger),
    Column("geom", Geometry("POINT", srid=4326, spatial_index=False), nullable=False),
    PrimaryKeyConstraint("snapshot_id", "id"),
)

road_edge = Table(
    "road_edge",
    metadata,
    _snapshot_fk(),
    Column("id", BigInteger, nullable=False),
    Column("source", BigInteger, nullable=False),
    Column("target", BigInteger, nullable=False),
    Column("cost", Float, nullable=False, comment="seconds, default profile, source to target"),
    Column("reverse_cost", Float, nullable=False, comment="seconds; < 0 for one-way edges"),
    Column("length_m", Float, nullable=False),
    Column("highway", Text, nullable=False),
    Column("maxspeed_kmh", Float),
    Column("oneway", Boolean, nullable=False),
    Column("name", Text),
    Column("osm_way_id", BigInteger),
    Column("geom", Geometry("LINESTRING", srid=4326, spatial_index=False), nullable=False),
    PrimaryKeyConstraint("snapshot_id", "id"),
    Index("road_edge_geom_gist", "geom", postgresql_using="gist"),
)

LAYER_TABLES: Final[dict[str, tuple[Table, ...]]] = {
    **{layer: (boundary,) for layer in BOUNDARY_LAYERS},
    "stations": (station,),
    "officers": (officer, officer_unit),
    "patrols": (patrol_segment,),
    "roads": (road_node, road_edge),
}
"""The tables that hold one layer's snapshot rows."""

api_key = Table(
    "api_key",
    metadata,
    Column("name", Text, primary_key=True),
    Column("key_id", Text, nullable=False, unique=True),
    Column("role", Text, nullable=False),
    Column("key_hash", Text, nullable=False, comment="SHA-256 of the key; the key is not kept"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("created_by", Text, nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
    Column("rate_per_s", Float),
    Column("burst", Integer),
    Column("units", ARRAY(Text), comment="The patrol units whose positions the key may post"),
    CheckConstraint(
        "role IN ('tracker', 'dispatch', 'planner', 'gis', 'admin')", name="api_key_role"
    ),
    CheckConstraint("role <> 'tracker' OR cardinality(units) > 0", name="api_key_tracker_units"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("actor", Text, nullable=False),
    Column("via", Text, nullable=False),
    Column("os_user", Text),
    Column("action", Text, nullable=False),
    Column("version_id", Integer),
    Column("detail", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("note", Text, nullable=False, server_default=""),
    CheckConstraint("via IN ('cli', 'api')", name="audit_log_via"),
)
"""Append-only: a trigger refuses UPDATE, DELETE and TRUNCATE (migration 0004)."""

position_retention = Table(
    "position_retention",
    metadata,
    Column("singleton", Boolean, primary_key=True, server_default=text("true")),
    Column("min_keep_days", Integer, nullable=False),
    CheckConstraint("singleton", name="position_retention_singleton"),
    CheckConstraint("min_keep_days >= 1", name="position_retention_min_keep_days"),
)
"""The fewest days of patrol positions ``drop_position_days`` keeps (owner only; 0008)."""

EVENT_TIME_BOUNDS: Final = (
    "time >= '1900-01-01 00:00:00+00' AND time < '2200-01-01 00:00:00+00' "
    "AND (closed_at IS NULL OR closed_at < '2200-01-01 00:00:00+00')"
)
"""What the table stores at all (migration 0008): every read can turn it into a time."""

event = Table(
    "event",
    metadata,
    Column("id", Text, primary_key=True),
    Column("time", DateTime(timezone=True), nullable=False),
    Column("category", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("closed_at", DateTime(timezone=True)),
    Column("description", Text),
    Column("geom", Geometry("POINT", srid=4326, spatial_index=False), nullable=False),
    Column("grid_code", Text, nullable=False),
    Column("unit_code", Text),
    Column("town_code", Text),
    Column("dataset_version", Integer, ForeignKey(f"{SCHEMA}.dataset_version.id"), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("recorded_by", Text, nullable=False),
    CheckConstraint("status IN ('open', 'closed')", name="event_status"),
    CheckConstraint(
        "closed_at IS NULL OR (status = 'closed' AND closed_at >= time)",
        name="event_closed_at",
    ),
    CheckConstraint(EVENT_TIME_BOUNDS, name="event_time_bounds"),
    CheckConstraint("length(id) <= 64", name="event_id_length"),
    CheckConstraint("length(description) <= 2000", name="event_description_length"),
    Index("event_time", "time"),
    Index("event_grid", "grid_code"),
    Index("event_geom", "geom", postgresql_using="gist"),
)
"""The grid event register, each event located at its time (migration 0006)."""

patrol_position = Table(
    "patrol_position",
    metadata,
    Column("unit", Text, nullable=False),
    Column("time", DateTime(timezone=True), nullable=False),
    Column("geom", Geometry("POINT", srid=4326, spatial_index=False), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("patrol_position_unit_time", "unit", text("time DESC"), unique=True),
    postgresql_partition_by="RANGE (time)",
)
"""Patrol units' GPS positions, one partition per China-time day (migration 0006); one
position per unit and instant (migration 0010: journal replays write nothing twice)."""
