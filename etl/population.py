"""``geoservice etl population FILE``: where people live, below the grid.

Points (households, buildings) or polygons (building footprints), each with ``residents``
and ``households`` (whole numbers, 0 or more) and an optional unique ``code`` (numbered
``P000001``… in file order when the file has none). A footprint counts where its
representative point lies. Grid design (``geoservice grids propose``) sums them per block.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely
import sqlalchemy as sa
from shapely.geometry import MultiPoint, MultiPolygon, Point, Polygon
from shapely.geometry.base import BaseGeometry

from etl.context import Context
from etl.geo import check_near_district
from etl.load import LayerLoad, diff_frames, insert_features
from etl.police import inside_district, keep_unchanged, require_columns, text_column, whole_number
from etl.readers import read_vector
from etl.report import Report
from geoservice.datasets import Source

ATTRIBUTES = ("residents", "households")


def prepare_population(
    path: Path,
    context: Context,
    *,
    crs: str | None = None,
    allow_outside: bool = False,
    encoding: str | None = None,
    layer_name: str | None = None,
) -> LayerLoad:
    """The population layer from a vector file, checked (counts, geometry, codes, place)."""
    source = read_vector(path, crs=crs, encoding=encoding, layer_name=layer_name)
    require_columns(source, ATTRIBUTES, path)
    report = Report(f"population from {path.name}", "population")
    if "code" in source.columns:
        codes = text_column(source, "code")
    else:
        codes = [f"P{i:06d}" for i in range(1, len(source) + 1)]
    for i, code in enumerate(codes, start=1):
        if not code:
            report.error(f"population feature #{i}: no code", kind="missing_value")
    for code, count in Counter(c for c in codes if c).items():
        if count > 1:
            report.error(f"population code {code!r} appears {count} times", code=code)
    counts = {
        field: [
            whole_number(value, code, field, report, minimum=0)
            for code, value in zip(codes, source[field], strict=True)
        ]
        for field in ATTRIBUTES
    }
    geoms = [
        _geometry(code, geom, report) for code, geom in zip(codes, source.geometry, strict=True)
    ]
    places = np.array(
        [None if g is None else shapely.point_on_surface(g) for g in geoms], dtype=object
    )
    check_near_district(places, context.district(), path.name, allow_outside)
    if not allow_outside:
        inside_district(places, codes, "population feature", context, report)
    frame = gpd.GeoDataFrame({"code": codes, **counts}, geometry=list(geoms), crs="EPSG:4326")
    current = context.current("current_population", ["code", *ATTRIBUTES])
    unchanged = False
    if not report.errors:
        frame, unchanged = keep_unchanged(frame, current, ATTRIBUTES, context)
    kinds = Counter(
        "footprints" if isinstance(g, MultiPolygon) else "points" for g in frame.geometry
    )
    report.facts.append(
        f"{len(frame):,} places ({', '.join(f'{n:,} {k}' for k, n in sorted(kinds.items()))}): "
        f"{sum(counts['residents']):,} residents in {sum(counts['households']):,} households"
    )

    def write(conn: sa.Connection, snapshot_id: int) -> int:
        return insert_features(conn, "population", snapshot_id, frame, ("code", *ATTRIBUTES))

    return LayerLoad(
        "population",
        Source.of_file("population", path),
        report,
        frame,
        write,
        f"{len(frame):,} population places",
        lambda: diff_frames(current, frame, "population", compare=ATTRIBUTES),
        unchanged=unchanged,
    )


def _geometry(code: str, geom: BaseGeometry | None, report: Report) -> Point | MultiPolygon | None:
    if isinstance(geom, MultiPoint) and len(geom.geoms) == 1:
        geom = geom.geoms[0]
    if isinstance(geom, Polygon):
        geom = MultiPolygon([geom])
    if isinstance(geom, Point | MultiPolygon) and not geom.is_empty and geom.is_valid:
        return geom
    kind = "empty" if geom is None or geom.is_empty else geom.geom_type
    if isinstance(geom, MultiPolygon):
        kind = f"invalid ({shapely.is_valid_reason(geom)})"
    report.error(
        f"population {code!r}: geometry is {kind}, expected a Point or a (Multi)Polygon",
        code=code,
        kind="invalid_geometry",
    )
    return None
