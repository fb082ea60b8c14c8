"""Migrations upgrade and downgrade cleanly; the models match them; geometries keep SRID 4326."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from shapely import wkb
from shapely.geometry import MultiPolygon, Polygon

from geoservice.db import create_engine, downgrade, upgrade
from geoservice.models import SCHEMA, boundary, metadata, snapshot


def _tables(conn: sa.Connection) -> set[str]:
    return set(sa.inspect(conn).get_table_names(schema=SCHEMA))


def test_upgrade_downgrade_upgrade_on_empty_database(make_database) -> None:
    settings = make_database(migrate=False)
    engine = create_engine(settings, "owner")
    upgrade(engine)
    with engine.connect() as conn:
        assert {"dataset_version", "snapshot", "boundary", "road_edge"} <= _tables(conn)
        assert conn.execute(sa.text("SELECT to_regclass('public.road_edges')")).scalar()
    downgrade(engine, "base")
    with engine.connect() as conn:
        assert _tables(conn) == {"alembic_version"}
        assert conn.execute(sa.text("SELECT to_regclass('public.road_edges')")).scalar() is None
    upgrade(engine)
    with engine.connect() as conn:
        assert "boundary" in _tables(conn)
    engine.dispose()


def test_models_match_migrations(engine) -> None:
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={
                "include_schemas": True,
                "include_name": lambda name, type_, parent: type_ != "schema" or name == SCHEMA,
                "version_table_schema": SCHEMA,
            },
        )
        diff = compare_metadata(context, metadata)
    assert diff == []


def test_geometry_round_trips_with_srid_4326(engine) -> None:
    square = MultiPolygon(
        [Polygon([(114.4, 23.1), (114.41, 23.1), (114.41, 23.11), (114.4, 23.1)])]
    )
    with engine.begin() as conn:
        snapshot_id = conn.execute(
            sa.insert(snapshot)
            .values(layer="grid", feature_count=1, source="test", sha256="0")
            .returning(snapshot.c.id)
        ).scalar_one()
        conn.execute(
            sa.insert(boundary).values(
                snapshot_id=snapshot_id,
                code="G1",
                name="grid 1",
                geom=sa.func.ST_GeomFromWKB(sa.literal(square.wkb), 4326),
            )
        )
        srid, raw = conn.execute(
            sa.select(sa.func.ST_SRID(boundary.c.geom), sa.func.ST_AsBinary(boundary.c.geom))
        ).one()
    assert srid == 4326
    assert wkb.loads(bytes(raw)).equals_exact(square, 0)
