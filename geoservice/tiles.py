"""Mapbox vector tiles (MVT) of the collections, made by PostGIS and kept per version.

A tile is ``ST_AsMVT`` over ``ST_AsMVTGeom`` of the features whose box meets the tile (the
GiST index), in Web Mercator (``WebMercatorQuad``, the tile matrix set of OGC API – Tiles,
described by ``morecantile``). ``ST_AsMVTGeom`` clips to the tile with a 64-unit buffer
and snaps to its 4096 × 4096 grid, which simplifies each geometry for its zoom. Layers
appear from a zoom where they are legible (roads by class); grids from 9, so that the
planner view can colour coverage over the whole district (the map draws them only in
colour below 12).

Tiles of a version never change: they are cached in memory by (tileset, version, z, x, y)
up to ``CACHE_BYTES`` and ``CACHE_ENTRIES`` (each entry costs its bytes plus
``ENTRY_OVERHEAD_BYTES``, so empty tiles count too), and served with that key as their ETag.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import morecantile
from sqlalchemy.engine import Connection

from geoservice.collections import COLLECTIONS, Collection
from geoservice.errors import InvalidInput
from geoservice.store import VersionReader

TMS = morecantile.tms.get("WebMercatorQuad")
MAX_ZOOM = 20
EXTENT = 4096
BUFFER = 64
CACHE_BYTES = 256 * 1024 * 1024
CACHE_ENTRIES = 200_000
ENTRY_OVERHEAD_BYTES = 256
"""What a cached tile costs beyond its body (the key, the dict slot): empty tiles too."""
MIN_ZOOM = {
    "district": 0,
    "town": 8,
    "unit": 10,
    "large_grid": 11,
    "grid": 9,  # the planner view colours coverage district-wide; the map draws them from 12
    "patrol_segment": 10,
    "station": 11,
    "road": 9,
}
ROAD_MIN_ZOOM = {"motorway": 9, "trunk": 9, "primary": 10, "secondary": 11, "tertiary": 12}
OTHER_ROADS_MIN_ZOOM = 14
BASEMAP = ("grid", "large_grid", "unit", "town", "district", "road", "patrol_segment", "station")
"""The layers of the map's basemap tiles, bottom to top."""


@dataclass(frozen=True)
class TileId:
    z: int
    x: int
    y: int

    @classmethod
    def checked(cls, z: int, x: int, y: int) -> TileId:
        """A tile of ``WebMercatorQuad`` up to ``MAX_ZOOM`` (422 naming it otherwise)."""
        if not 0 <= z <= MAX_ZOOM:
            msg = f"zoom {z} is out of range; expected 0 to {MAX_ZOOM}"
            raise InvalidInput(msg)
        side = 1 << z
        if not (0 <= x < side and 0 <= y < side):
            msg = f"tile {z}/{x}/{y} does not exist: at zoom {z}, x and y are 0 to {side - 1}"
            raise InvalidInput(msg)
        return cls(z, x, y)


def _layer_sql(source: Collection, z: int) -> str:
    properties = ", ".join(c if " AS " in c else f"t.{c}" for c in source.columns)
    extra = ["t.geom && bounds.wgs84"]
    if source.id == "road":
        shown = [k for k, zoom in ROAD_MIN_ZOOM.items() if z >= zoom]
        if z < OTHER_ROADS_MIN_ZOOM:
            extra.append(
                "t.highway IN (" + ", ".join(f"'{k}'" for k in shown) + ")" if shown else "false"
            )
    return (
        f"SELECT ST_AsMVT(q, '{source.id}', {EXTENT}, 'geom') FROM ("
        f"SELECT {properties}, ST_AsMVTGeom(ST_Transform(t.geom, 3857), bounds.mercator, "
        f"{EXTENT}, {BUFFER}, true) AS geom {source.select(extra)}) q"
    )


def render(conn: Connection, layers: Sequence[str], version: int, tile: TileId) -> bytes:
    """One tile with the given collections' layers (those legible at its zoom)."""
    shown = [name for name in layers if tile.z >= MIN_ZOOM[name]]
    if not shown:
        return b""
    bounds = (
        "WITH bounds AS (SELECT ST_TileEnvelope(:z, :x, :y) AS mercator, "
        f"ST_Transform(ST_TileEnvelope(:z, :x, :y, margin => {BUFFER / EXTENT}), 4326) AS wgs84) "
    )
    parts = " || ".join(f"({_layer_sql(COLLECTIONS[name], tile.z)})" for name in shown)
    sql = bounds + f"SELECT {parts} FROM bounds"
    reader = VersionReader(conn, version)
    return bytes(reader.execute(sql, z=tile.z, x=tile.x, y=tile.y).scalar_one() or b"")


class TileCache:
    """Rendered tiles by (tileset, version, z, x, y), least recently used out first."""

    def __init__(self, max_bytes: int = CACHE_BYTES, max_entries: int = CACHE_ENTRIES) -> None:
        self.max_bytes = max_bytes
        self.max_entries = max_entries
        self.bytes = 0
        """The bodies' bytes plus ``ENTRY_OVERHEAD_BYTES`` per entry."""
        self._tiles: OrderedDict[tuple, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple) -> bytes | None:
        with self._lock:
            tile = self._tiles.get(key)
            if tile is not None:
                self._tiles.move_to_end(key)
            return tile

    def put(self, key: tuple, tile: bytes) -> None:
        with self._lock:
            if key in self._tiles:
                return
            self._tiles[key] = tile
            self.bytes += len(tile) + ENTRY_OVERHEAD_BYTES
            while self._tiles and (
                self.bytes > self.max_bytes or len(self._tiles) > self.max_entries
            ):
                _, old = self._tiles.popitem(last=False)
                self.bytes -= len(old) + ENTRY_OVERHEAD_BYTES

    def __len__(self) -> int:
        return len(self._tiles)


def tilejson(name: str, layers: Sequence[str], url: str, bounds: list[float]) -> dict:
    """TileJSON 3.0.0 for a tileset of ``layers``; ``url`` is the tile URL template."""
    minzoom = min(MIN_ZOOM[layer] for layer in layers)
    west, south, east, north = bounds
    return {
        "tilejson": "3.0.0",
        "name": name,
        "scheme": "xyz",
        "tiles": [url],
        "minzoom": minzoom,
        "maxzoom": MAX_ZOOM,
        "bounds": bounds,
        "center": [round((west + east) / 2, 6), round((south + north) / 2, 6), 11],
        "vector_layers": [
            {
                "id": layer,
                "minzoom": MIN_ZOOM[layer],
                "maxzoom": MAX_ZOOM,
                "fields": {name: "String" for name in COLLECTIONS[layer].property_names},
            }
            for layer in layers
        ],
    }
