"""The current dataset's layers as GeoJSON or GeoDataFrames (``GET /v1/layers/{layer}``,
notebooks)."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from geoservice.datasets import resolve_version
from geoservice.errors import InvalidInput, NotFound

LAYER_SQL = {
    **{
        layer: (
            "SELECT code, name, parent_code, kind, population, ST_AsGeoJSON(geom) AS geometry "
            f"FROM geoservice.boundary WHERE snapshot_id = geoservice.snapshot_of(:v, '{layer}')"
        )
        for layer in ("district", "town", "unit", "large_grid", "grid")
    },
    "station": (
        "SELECT code, name, area_code AS parent_code, kind, ST_AsGeoJSON(geom) AS geometry "
        "FROM geoservice.station WHERE snapshot_id = geoservice.snapshot_of(:v, 'stations')"
    ),
    "patrol_segment": (
        "SELECT code, name, NULL AS parent_code, level, team, team_size, "
        "ST_AsGeoJSON(geom) AS geometry FROM geoservice.patrol_segment "
        "WHERE snapshot_id = geoservice.snapshot_of(:v, 'patrols')"
    ),
}
"""Officers are not a layer here: their personal data stays out of map answers."""


def parse_bbox(value: str | None) -> tuple[float, float, float, float] | None:
    """``minlon,minlat,maxlon,maxlat`` in WGS84."""
    if value is None:
        return None
    parts = value.split(",")
    try:
        box = tuple(float(p) for p in parts)
    except ValueError:
        box = ()
    if len(box) != 4 or not all(np.isfinite(box)):
        msg = f"bbox {value!r}: expected minlon,minlat,maxlon,maxlat (four numbers)"
        raise InvalidInput(msg)
    minx, miny, maxx, maxy = box
    if not (-180 <= minx < maxx <= 180 and -90 <= miny < maxy <= 90):
        msg = f"bbox {value!r}: expected minlon < maxlon within ±180 and minlat < maxlat within ±90"
        raise InvalidInput(msg)
    return minx, miny, maxx, maxy


def check_layer(layer: str) -> str:
    """``layer`` if it is one served here (404 otherwise: the path names a resource)."""
    if layer not in LAYER_SQL:
        msg = f"no layer {layer!r}; expected one of {', '.join(LAYER_SQL)}"
        raise NotFound(msg)
    return layer


def read_features(
    engine: Engine,
    layer: str,
    bbox: tuple[float, float, float, float] | None = None,
    version: int | None = None,
) -> dict[str, Any]:
    """A FeatureCollection of one layer of a dataset version (default: the current one), in
    code order."""
    sql = LAYER_SQL[check_layer(layer)]
    params: dict[str, float] = {}
    if bbox is not None:
        sql += " AND geom && ST_MakeEnvelope(:minx, :miny, :maxx, :maxy, 4326)"
        params = dict(zip(("minx", "miny", "maxx", "maxy"), bbox, strict=True))
    with engine.connect() as conn:
        version = resolve_version(conn, version)
        result = conn.execute(sa.text(sql + " ORDER BY code"), {**params, "v": version})
        rows = result.mappings().all()
    features = [
        {
            "type": "Feature",
            "id": row["code"],
            "geometry": orjson.Fragment(row["geometry"]),
            "properties": {k: v for k, v in row.items() if k != "geometry"},
        }
        for row in rows
    ]
    return {
        "type": "FeatureCollection",
        "features": features,
        "layer": layer,
        "dataset_version": version,
    }


def read_layer(
    engine: Engine,
    layer: str,
    bbox: tuple[float, float, float, float] | None = None,
    version: int | None = None,
):
    """One layer as a GeoDataFrame (EPSG:4326), for notebooks."""
    import geopandas as gpd

    collection = orjson.loads(orjson.dumps(read_features(engine, layer, bbox, version)))
    frame = gpd.GeoDataFrame.from_features(collection["features"], crs=4326)
    return frame
