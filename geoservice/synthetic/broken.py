"""Deliberately broken copies of demo files, for tests and ETL training. Generated, never edited.

Each variant changes exactly one thing and returns the path it wrote; ``FEATURE``
names the feature it touches.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry import MultiPolygon, Polygon

from geoservice.crs import wgs84_to_gcj02
from geoservice.synthetic import DemoFiles

FEATURE = 10  # index of the grid (or unit, or officer) a variant breaks


def _grids(files: DemoFiles) -> gpd.GeoDataFrame:
    return gpd.read_file(files.boundaries, layer="grid")


def _write_grids(frame: gpd.GeoDataFrame, out: Path, name: str) -> Path:
    path = out / f"grid_{name}.gpkg"
    path.unlink(missing_ok=True)
    frame.to_file(path, layer="grid", driver="GPKG")
    return path


def overlap(files: DemoFiles, out: Path) -> Path:
    """One grid grown by ~30 m over its neighbours."""
    frame = _grids(files)
    grown = frame.geometry.iloc[FEATURE].buffer(0.0003)
    frame.loc[FEATURE, "geometry"] = MultiPolygon([grown])
    return _write_grids(frame, out, "overlap")


def gap(files: DemoFiles, out: Path) -> Path:
    """One grid shrunk by ~30 m, leaving a gap around it."""
    frame = _grids(files)
    shrunk = frame.geometry.iloc[FEATURE].buffer(-0.0003)
    frame.loc[FEATURE, "geometry"] = (
        shrunk if isinstance(shrunk, MultiPolygon) else MultiPolygon([shrunk])
    )
    return _write_grids(frame, out, "gap")


def self_intersection(files: DemoFiles, out: Path) -> Path:
    """One grid's ring turned into a bow tie."""
    frame = _grids(files)
    minx, miny, maxx, maxy = frame.geometry.iloc[FEATURE].bounds
    bowtie = Polygon([(minx, miny), (maxx, maxy), (maxx, miny), (minx, maxy), (minx, miny)])
    frame.loc[FEATURE, "geometry"] = MultiPolygon([bowtie])
    return _write_grids(frame, out, "self_intersection")


def unknown_parent(files: DemoFiles, out: Path) -> Path:
    """One grid whose parent code names no large grid."""
    frame = _grids(files)
    frame.loc[FEATURE, "parent_code"] = "44130299999901"
    return _write_grids(frame, out, "unknown_parent")


def duplicate_code(files: DemoFiles, out: Path) -> Path:
    """Two grids with the same code (the second takes the first's)."""
    frame = _grids(files)
    frame.loc[FEATURE + 1, "code"] = frame.loc[FEATURE, "code"]
    return _write_grids(frame, out, "duplicate_code")


def gbk_shapefile(files: DemoFiles, out: Path) -> Path:
    """The units as a Shapefile with GBK text and no .cpg file to say so."""
    frame = gpd.read_file(files.boundaries, layer="unit")
    frame = frame.rename(columns={"parent_code": "parent"})[
        ["code", "name", "parent", "kind", "geometry"]
    ]
    path = out / "units_gbk.shp"
    frame.to_file(path, driver="ESRI Shapefile", encoding="gbk")
    path.with_suffix(".cpg").unlink(missing_ok=True)
    return path


def gcj02_copy(files: DemoFiles, out: Path) -> Path:
    """The towns with every coordinate shifted to GCJ-02, as a phone map app would give them."""
    frame = gpd.read_file(files.boundaries, layer="town")

    shifted = shapely.transform(
        frame.geometry.values, lambda c: np.column_stack(wgs84_to_gcj02(c[:, 0], c[:, 1]))
    )
    frame = frame.set_geometry(shifted)
    path = out / "towns_gcj02.geojson"
    frame.to_file(path, driver="GeoJSON", COORDINATE_PRECISION=12)
    return path


def officers_unknown_unit(files: DemoFiles, out: Path) -> Path:
    """One officer assigned to a unit code that does not exist."""
    table = pd.read_csv(files.officers, dtype=str)
    table.loc[FEATURE, "unit_codes"] = "441302999999"
    path = out / "officers_unknown_unit.csv"
    table.to_csv(path, index=False)
    return path


def officers_without_unit(files: DemoFiles, out: Path) -> Path:
    """One officer with an empty unit list."""
    table = pd.read_csv(files.officers, dtype=str)
    table.loc[FEATURE, "unit_codes"] = ""
    path = out / "officers_without_unit.csv"
    table.to_csv(path, index=False)
    return path


def officers_uncovered_unit(files: DemoFiles, out: Path) -> Path:
    """A valid file that leaves one unit without officers (its officers moved next door)."""
    table = pd.read_csv(files.officers, dtype=str)
    first_unit = table.loc[0, "unit_codes"].split(";")[0]
    other = next(u for u in table["unit_codes"] if first_unit not in u.split(";"))
    table["unit_codes"] = [
        ";".join(other.split(";")[0] if u == first_unit else u for u in codes.split(";"))
        for codes in table["unit_codes"]
    ]
    table["unit_codes"] = [";".join(dict.fromkeys(c.split(";"))) for c in table["unit_codes"]]
    path = out / "officers_uncovered_unit.csv"
    table.to_csv(path, index=False)
    return path


VARIANTS: dict[str, Callable[[DemoFiles, Path], Path]] = {
    "overlap": overlap,
    "gap": gap,
    "self_intersection": self_intersection,
    "unknown_parent": unknown_parent,
    "duplicate_code": duplicate_code,
    "gbk_shapefile": gbk_shapefile,
    "gcj02_copy": gcj02_copy,
    "officers_unknown_unit": officers_unknown_unit,
    "officers_without_unit": officers_without_unit,
    "officers_uncovered_unit": officers_uncovered_unit,
}
