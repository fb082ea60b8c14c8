"""``--problems FILE.gpkg``: every problem a load found, as a feature where it is.

A technician opens the file in QGIS beside the data and sees each overlap, gap,
self-intersection or child outside its parent on the map, with its message. Problems
without a place (a missing name, a duplicate code) are kept too, without geometry.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pyogrio

from etl.report import Report


def write_problems(path: Path, reports: list[Report]) -> int:
    """Write the problems of ``reports`` to a GeoPackage layer ``problems``; their count."""
    rows = [
        {
            "layer": report.layer,
            "subject": report.subject,
            "message": problem.message,
            "geometry": problem.geometry,
        }
        for report in reports
        for problem in report.problems
    ]
    frame = gpd.GeoDataFrame(
        rows or None, columns=["layer", "subject", "message", "geometry"], crs="EPSG:4326"
    )
    path.unlink(missing_ok=True)
    pyogrio.write_dataframe(frame, path, layer="problems", driver="GPKG", geometry_type="Unknown")
    return len(rows)
