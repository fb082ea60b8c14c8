"""A dataset version's ``LocateIndex`` from PostGIS: its grids, each grid's hierarchy up to
the district, the units' officers and the towns' stations and units' posts — or only those
labels (``index_labels``), for a version whose grids' tables are already built."""

from __future__ import annotations

from typing import Any

import shapely
from sqlalchemy.engine import Engine

from geoservice.locate.index import IndexBuildError, LocateIndex, labels_part
from geoservice.locate.results import Grid
from geoservice.state_files import Part
from geoservice.store import VersionReader

HIERARCHY_SQL = """
SELECT g.code, g.name,
       lg.code AS large_grid_code, lg.name AS large_grid_name,
       u.code AS unit_code, u.name AS unit_name, u.kind AS unit_kind,
       t.code AS town_code, t.name AS town_name,
       d.code AS district_code, d.name AS district_name
FROM {grid} g
LEFT JOIN {large_grid} lg ON lg.code = g.parent_code
LEFT JOIN {unit} u ON u.code = lg.parent_code
LEFT JOIN {town} t ON t.code = u.parent_code
LEFT JOIN {district} d ON d.code = t.parent_code
ORDER BY g.code
"""
POLYGONS_SQL = "SELECT code, ST_AsBinary(geom) AS wkb FROM {grid} g ORDER BY code"
OFFICERS_SQL = """
SELECT ou.unit_code, o.code, o.name
FROM {officer_unit} ou
JOIN {officer} o ON o.code = ou.officer_code
ORDER BY ou.unit_code, o.code
"""


def build_index(engine: Engine, version: int | None = None) -> LocateIndex:
    """Read one dataset version (default: the current one) in one snapshot; build its
    index. ``IndexBuildError`` when it has no grids or a grid has no complete chain up to
    the district."""
    with VersionReader.open(engine, version) as reader:
        grids, district = _labels(reader)
        rows = sorted(reader.all(POLYGONS_SQL), key=lambda row: row.code)
    polygons = shapely.from_wkb([bytes(row.wkb) for row in rows])
    return LocateIndex(reader.version, grids, polygons, district)


def index_labels(engine: Engine, version: int) -> Part:
    """``version``'s labels part (``labels_part``), read without the polygons."""
    with VersionReader.open(engine, version) as reader:
        grids, district = _labels(reader)
    return labels_part(reader.version, grids, district)


def _labels(reader: VersionReader) -> tuple[list[Grid], dict[str, str]]:
    """The reader's grids in code order with their hierarchies, and its district."""
    version = reader.version
    rows = reader.all(HIERARCHY_SQL)
    officer_rows = reader.all(OFFICERS_SQL)
    station_rows = reader.stations()
    rows = sorted(rows, key=lambda row: row.code)  # code order, whatever the collation
    if not rows:
        msg = f"dataset version {version} has no grids"
        raise IndexBuildError(msg)
    broken = [row.code for row in rows if row.district_code is None]
    if broken:
        msg = (
            f"dataset version {version}: {len(broken)} grids have no complete chain to the "
            f"district, e.g. {broken[:5]}"
        )
        raise IndexBuildError(msg)
    officers: dict[str, list[dict[str, str]]] = {}
    for officer in officer_rows:
        officers.setdefault(officer.unit_code, []).append(
            {"code": officer.code, "name": officer.name}
        )
    places: dict[str, dict[str, dict[str, Any]]] = {"station": {}, "post": {}}
    for station in station_rows:  # a station serves a town, a post a unit
        places[station.kind][station.area_code] = {"code": station.code, "name": station.name}
    grids = [
        Grid.of(
            {
                "grid": {"code": row.code, "name": row.name},
                "large_grid": {"code": row.large_grid_code, "name": row.large_grid_name},
                "unit": {"code": row.unit_code, "name": row.unit_name, "kind": row.unit_kind},
                "town": {"code": row.town_code, "name": row.town_name},
                "district": {"code": row.district_code, "name": row.district_name},
                "officers": officers.get(row.unit_code, []),
                "station": places["station"].get(row.town_code),
                "post": places["post"].get(row.unit_code),
            }
        )
        for row in rows
    ]
    return grids, {"code": rows[0].district_code, "name": rows[0].district_name}
