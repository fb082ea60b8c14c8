"""Rivers that cut blocks besides the roads (the database holds no water layer): read
from a file, and as lines."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyogrio
import shapely
from shapely.geometry import LineString, Polygon
from shapely.geometry.base import BaseGeometry

from geoservice.errors import InvalidInput

WATERWAYS = ("river", "canal", "riverbank")
"""OSM ``waterway`` values read as rivers (``natural=water`` areas too, by their outline)."""


def read_rivers(path: Path) -> list[BaseGeometry]:
    """Rivers from a file, WGS84: an OSM file's ways tagged ``waterway`` in ``WATERWAYS``
    or ``natural=water`` (as lines: their outline cuts), or every line and polygon of a
    file GDAL reads (reprojected from its CRS)."""
    if not path.is_file():
        msg = f"--rivers {path}: no such file"
        raise InvalidInput(msg)
    name = path.name.lower()
    if name.endswith((".osm", ".osm.bz2", ".osm.pbf", ".pbf")):
        import osmium

        lines: list[BaseGeometry] = []

        class Handler(osmium.SimpleHandler):
            def way(self, w: Any) -> None:
                tags = w.tags
                if tags.get("waterway") in WATERWAYS or tags.get("natural") == "water":
                    coords = [(n.lon, n.lat) for n in w.nodes if n.location.valid()]
                    if len(coords) >= 2:
                        lines.append(LineString(coords))

        Handler().apply_file(str(path), locations=True)
        return lines
    try:
        frame = pyogrio.read_dataframe(path)
    except Exception as error:  # GDAL's errors name the file
        msg = f"--rivers {path}: {error}"
        raise InvalidInput(msg) from error
    if frame.crs is not None:
        frame = frame.to_crs(4326)
    geoms = [g for g in frame.geometry if g is not None and not g.is_empty]
    return [g for g in geoms if g.geom_type != "Point" and g.geom_type != "MultiPoint"]


def outlines(rivers: Iterable[BaseGeometry]) -> list[BaseGeometry]:
    """Rivers as lines: polygons (water areas) by their outline."""
    out: list[BaseGeometry] = []
    for geometry in rivers:
        for part in shapely.get_parts(geometry):
            if isinstance(part, Polygon):
                out.extend(shapely.get_parts(part.boundary))
            elif part.geom_type in ("LineString", "LinearRing") and not part.is_empty:
                out.append(LineString(part.coords))
    return out
