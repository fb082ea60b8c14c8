"""Whole layers of a dataset version as GeoJSON or GeoDataFrames (``GET /v1/layers/{layer}``,
notebooks); officers are not a layer."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy.engine import Engine

from geoservice.collections import LAYERS, BBox, collection, read_page
from geoservice.datasets import resolve_version

__all__ = ["check_layer", "read_features", "read_layer"]


def check_layer(layer: str) -> str:
    """``layer`` if it is one served here (404 otherwise: the path names a resource)."""
    return collection(layer, LAYERS, "layer").id


def read_features(
    engine: Engine, layer: str, bbox: BBox | None = None, version: int | None = None
) -> dict[str, Any]:
    """A FeatureCollection of one layer of a dataset version (default: the current one), in
    code order."""
    source = collection(layer, LAYERS, "layer")
    with engine.connect() as conn:
        version = resolve_version(conn, version)
        page = read_page(conn, source, version, bbox=bbox)
    return {
        "type": "FeatureCollection",
        "features": page.features,
        "layer": layer,
        "dataset_version": version,
    }


def read_layer(engine: Engine, layer: str, bbox: BBox | None = None, version: int | None = None):
    """One layer as a GeoDataFrame (EPSG:4326), for notebooks."""
    import geopandas as gpd

    collection = orjson.loads(orjson.dumps(read_features(engine, layer, bbox, version)))
    return gpd.GeoDataFrame.from_features(collection["features"], crs=4326)
