"""``--problems FILE.gpkg``: every problem a load found, as a feature where it is.

A technician opens the file in QGIS beside the data and sees each overlap, gap,
self-intersection or child outside its parent on the map, with its message. QGIS wants one
geometry type per layer, so there are up to three layers — ``problem_areas`` (polygons),
``problem_lines`` and ``problem_points`` — each with ``layer``, ``code``, ``kind`` and
``message``. Every problem has a place to zoom to: its own geometry, else the feature it
names (as the load read it, or as published), else the district.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import pyogrio
import shapely
from shapely.geometry.base import BaseGeometry

from etl.report import Report

LAYERS = {
    "problem_areas": ("Polygon", "MultiPolygon"),
    "problem_lines": ("LineString", "MultiLineString"),
    "problem_points": ("Point", "MultiPoint"),
}
STORED_AS = {
    "problem_areas": "MultiPolygon",
    "problem_lines": "MultiLineString",
    "problem_points": "MultiPoint",
}
FIELDS = ["layer", "code", "kind", "message"]


def write_problems(
    path: Path,
    reports: list[Report],
    place_of: Callable[[str, str | None], BaseGeometry | None],
) -> int:
    """Write the problems of ``reports`` to the GeoPackage ``path`` (replaced); their
    count. ``place_of(layer, code)`` finds a feature's geometry for a problem that has none
    of its own (None for the district)."""
    rows = []
    for report in reports:
        for problem in report.problems:
            geometry = problem.geometry
            if geometry is None or geometry.is_empty:
                geometry = place_of(report.layer, problem.code)
            for part in _by_dimension(geometry):
                rows.append(
                    {
                        "layer": report.layer or "bundle",
                        "code": problem.code,
                        "kind": problem.kind,
                        "message": problem.message,
                        "geometry": part,
                    }
                )
    path.unlink(missing_ok=True)
    frame = gpd.GeoDataFrame(rows or None, columns=[*FIELDS, "geometry"], crs="EPSG:4326")
    types = frame.geometry.geom_type
    written = False
    for name, kinds in LAYERS.items():
        part = frame[types.isin(kinds)]
        if part.empty and (written or name != "problem_areas"):
            continue
        pyogrio.write_dataframe(
            part,
            path,
            layer=name,
            driver="GPKG",
            promote_to_multi=True,
            geometry_type=STORED_AS[name],
        )
        written = True
    return sum(len(report.problems) for report in reports)


def _by_dimension(geometry: BaseGeometry | None) -> list[BaseGeometry]:
    """A geometry as at most one part per dimension (a collection split up)."""
    if geometry is None or geometry.is_empty:
        return []
    if geometry.geom_type != "GeometryCollection":
        return [geometry]
    parts = shapely.get_parts(geometry)
    out = []
    for kinds in LAYERS.values():
        same = [p for p in parts if p.geom_type in kinds]
        if same:
            out.append(shapely.union_all(same))
    return out
