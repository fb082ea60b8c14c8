"""Stations and posts (points), patrol segments (lines), officers (CSV)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import sqlalchemy as sa
from shapely.geometry import LineString, MultiLineString, MultiPoint, Point

from etl.context import Context
from etl.geo import check_near_district
from etl.load import LayerLoad, diff_frames, insert_features
from etl.readers import read_table, read_vector, require_file
from etl.report import Report, where
from geoservice.datasets import Source
from geoservice.errors import InvalidInput
from geoservice.missing import is_missing
from geoservice.models import STATION_KINDS, officer, officer_unit

OFFICER_COLUMNS = ("code", "name", "rank", "phone", "station_code", "unit_codes")
DISTRICT_TOLERANCE_DEG = 1e-4  # about 10 m: a point on the district edge is inside


def _gpkg_table(path: Path, layer: str) -> pd.DataFrame:
    """A GeoPackage attribute table as text columns (the officers of a bundle)."""
    import pyogrio

    try:
        frame = pyogrio.read_dataframe(path, layer=layer, read_geometry=False)
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as exc:
        msg = f"{path}: no readable table {layer!r}: {exc}"
        raise InvalidInput(msg) from None
    return frame.astype(object).where(frame.notna(), "").astype(str)


def _require_columns(frame: pd.DataFrame, columns: tuple[str, ...], path: Path) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        have = [c for c in frame.columns if c != "geometry"]
        msg = f"{path}: missing column(s) {', '.join(missing)}; the file has {have}"
        raise InvalidInput(msg)


def _text_column(frame: pd.DataFrame, column: str) -> list[str]:
    return ["" if is_missing(v) else str(v).strip() for v in frame[column]]


def _check_codes(codes: list[str], names: list[str], noun: str, report: Report) -> None:
    for i, (code, name) in enumerate(zip(codes, names, strict=True), start=1):
        if not code:
            report.error(f"{noun} #{i}: no code")
        elif not name:
            report.error(f"{noun} {code!r}: no name")
    for code, count in Counter(c for c in codes if c).items():
        if count > 1:
            report.error(f"{noun} code {code!r} appears {count} times")


def _whole_number(value: object, code: str, field: str, report: Report, minimum: int = 1) -> int:
    number = pd.to_numeric(pd.Series([value]), errors="coerce").iloc[0]
    if pd.isna(number) or number != int(number) or number < minimum:
        report.error(f"{code!r}: {field} {value!r} is not a whole number >= {minimum}")
        return 0
    return int(number)


def _inside_district(geoms, codes, noun: str, context: Context, report: Report) -> None:
    district = context.district().buffer(DISTRICT_TOLERANCE_DEG)
    for code, geom in zip(codes, geoms, strict=True):
        if geom is not None and not district.covers(geom):
            report.error(
                f"{noun} {code!r} lies outside the district at {where(*geom.coords[0])}", geom
            )


def prepare_stations(
    path: Path,
    context: Context,
    *,
    crs: str | None = None,
    allow_outside: bool = False,
    encoding: str | None = None,
    layer_name: str | None = None,
) -> LayerLoad:
    """Police stations (kind ``station``, answering for a town) and posts (for a unit)."""
    source = read_vector(path, crs=crs, encoding=encoding, layer_name=layer_name)
    _require_columns(source, ("code", "name", "kind", "area_code"), path)
    report = Report(f"stations from {path.name}", "stations")
    codes, names = _text_column(source, "code"), _text_column(source, "name")
    kinds, areas = _text_column(source, "kind"), _text_column(source, "area_code")
    _check_codes(codes, names, "station", report)
    geoms = []
    for code, geom in zip(codes, source.geometry, strict=True):
        if isinstance(geom, MultiPoint) and len(geom.geoms) == 1:
            geom = geom.geoms[0]
        if not isinstance(geom, Point) or geom.is_empty:
            kind = "empty" if geom is None or geom.is_empty else geom.geom_type
            report.error(f"station {code!r}: geometry is {kind}, expected Point")
            geom = None
        geoms.append(geom)
    check_near_district(np.array(geoms, dtype=object), context.district(), path.name, allow_outside)
    if not allow_outside:
        _inside_district(geoms, codes, "station", context, report)
    towns, units = context.codes("town"), context.codes("unit")
    for code, kind, area in zip(codes, kinds, areas, strict=True):
        if kind not in STATION_KINDS:
            report.error(
                f"station {code!r}: kind {kind!r} is not one of {', '.join(STATION_KINDS)}"
            )
        elif kind == "station" and area not in towns:
            report.error(f"station {code!r}: area_code {area!r} is not a town of the dataset")
        elif kind == "post" and area not in units:
            report.error(f"post {code!r}: area_code {area!r} is not a unit of the dataset")
    frame = gpd.GeoDataFrame(
        {"code": codes, "name": names, "kind": kinds, "area_code": areas},
        geometry=geoms,
        crs="EPSG:4326",
    )
    counts = Counter(kinds)
    report.facts.append(f"{counts['station']} stations, {counts['post']} posts")

    def write(conn: sa.Connection, snapshot_id: int) -> int:
        return insert_features(
            conn, "station", snapshot_id, frame, ("code", "name", "kind", "area_code")
        )

    return LayerLoad(
        "stations",
        Source.of_file("stations", path),
        report,
        frame,
        write,
        f"{len(frame)} stations and posts",
        lambda: diff_frames(
            context.current("current_station", ["code", "name", "kind", "area_code"]),
            frame,
            "stations",
            compare=("kind", "area_code"),
        ),
    )


def prepare_patrols(
    path: Path,
    context: Context,
    *,
    crs: str | None = None,
    allow_outside: bool = False,
    encoding: str | None = None,
    layer_name: str | None = None,
) -> LayerLoad:
    """Patrol segments: lines with a level, a team name and a team size."""
    source = read_vector(path, crs=crs, encoding=encoding, layer_name=layer_name)
    _require_columns(source, ("code", "name", "level", "team_size"), path)
    report = Report(f"patrol segments from {path.name}", "patrols")
    codes, names = _text_column(source, "code"), _text_column(source, "name")
    given = _text_column(source, "team") if "team" in source.columns else [""] * len(codes)
    teams = [team or None for team in given]
    _check_codes(codes, names, "patrol segment", report)
    levels = [
        _whole_number(v, c, "level", report) for c, v in zip(codes, source["level"], strict=True)
    ]
    sizes = [
        _whole_number(v, c, "team_size", report)
        for c, v in zip(codes, source["team_size"], strict=True)
    ]
    geoms = []
    for code, geom in zip(codes, source.geometry, strict=True):
        if isinstance(geom, MultiLineString):
            merged = shapely.line_merge(geom)
            geom = merged if isinstance(merged, LineString) else geom
        if not isinstance(geom, LineString) or geom.is_empty or geom.length == 0:
            kind = "empty" if geom is None or geom.is_empty else geom.geom_type
            report.error(f"patrol segment {code!r}: geometry is {kind}, expected one LineString")
            geom = None
        geoms.append(geom)
    check_near_district(np.array(geoms, dtype=object), context.district(), path.name, allow_outside)
    if not allow_outside:
        _inside_district(geoms, codes, "patrol segment", context, report)
    frame = gpd.GeoDataFrame(
        {"code": codes, "name": names, "level": levels, "team": teams, "team_size": sizes},
        geometry=geoms,
        crs="EPSG:4326",
    )
    report.facts.append(f"{len(frame)} segments, {sum(sizes)} patrol officers")

    def write(conn: sa.Connection, snapshot_id: int) -> int:
        return insert_features(
            conn,
            "patrol_segment",
            snapshot_id,
            frame,
            ("code", "name", "level", "team", "team_size"),
        )

    return LayerLoad(
        "patrols",
        Source.of_file("patrols", path),
        report,
        frame,
        write,
        f"{len(frame)} patrol segments",
        lambda: diff_frames(
            context.current("current_patrol_segment", ["code", "name", "level", "team_size"]),
            frame,
            "patrol segments",
            compare=("level", "team_size"),
        ),
    )


def prepare_officers(
    path: Path, context: Context, *, encoding: str | None = None, layer_name: str | None = None
) -> LayerLoad:
    """Officers and their units (a CSV, or a GeoPackage table); ``unit_codes`` holds one or
    more codes separated by ';'."""
    require_file(path, (".csv", ".gpkg"))
    table = (
        read_table(path, encoding)
        if path.suffix.lower() == ".csv"
        else _gpkg_table(path, layer_name or "officers")
    )
    _require_columns(table, OFFICER_COLUMNS, path)
    report = Report(f"officers from {path.name}", "officers")
    codes, names = _text_column(table, "code"), _text_column(table, "name")
    _check_codes(codes, names, "officer", report)
    units = context.codes("unit")
    if not units:
        report.error("no unit layer is published yet: load the units before the officers")
    stations = context.station_codes()
    assignments = []
    for line, (code, station, raw_units) in enumerate(
        zip(
            codes,
            _text_column(table, "station_code"),
            _text_column(table, "unit_codes"),
            strict=True,
        ),
        start=2,
    ):
        its_units = [u.strip() for u in raw_units.replace(",", ";").split(";") if u.strip()]
        if not its_units:
            report.error(f"line {line}: officer {code!r} has no unit (column unit_codes is empty)")
        for unit in dict.fromkeys(its_units):
            if units and unit not in units:
                report.error(f"line {line}: officer {code!r}: unknown unit code {unit!r}")
            assignments.append((code, unit))
        if station and stations is not None and station not in stations:
            report.error(f"line {line}: officer {code!r}: unknown station code {station!r}")
    frame = pd.DataFrame(
        {
            "code": codes,
            "name": names,
            "rank": _text_column(table, "rank"),
            "phone": _text_column(table, "phone"),
            "station_code": _text_column(table, "station_code"),
            "unit_codes": [";".join(u for c, u in assignments if c == code) for code in codes],
        }
    )
    covered = {unit for _, unit in assignments} & units
    report.facts.append(f"{len(frame)} officers assigned to {len(covered)} of {len(units)} units")
    if units and len(covered) < len(units):
        report.warnings.append(
            f"{len(units) - len(covered)} units have no officer: "
            f"{', '.join(sorted(units - covered)[:8])}"
        )

    def write(conn: sa.Connection, snapshot_id: int) -> int:
        conn.execute(
            sa.insert(officer),
            [
                {
                    "snapshot_id": snapshot_id,
                    "code": r.code,
                    "name": r.name,
                    "rank": r.rank or None,
                    "phone": r.phone or None,
                    "station_code": r.station_code or None,
                }
                for r in frame.itertuples()
            ],
        )
        conn.execute(
            sa.insert(officer_unit),
            [
                {"snapshot_id": snapshot_id, "officer_code": c, "unit_code": u}
                for c, u in assignments
            ],
        )
        return len(frame)

    def diff() -> list[str]:
        with context.engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT o.code, o.name, string_agg(u.unit_code, ';' ORDER BY u.unit_code) "
                    "FROM geoservice.current_officer o LEFT JOIN geoservice.current_officer_unit u "
                    "ON u.officer_code = o.code GROUP BY o.code, o.name"
                )
            ).all()
        old = pd.DataFrame(rows, columns=["code", "name", "unit_codes"]) if rows else None
        new = frame.assign(unit_codes=[";".join(sorted(v.split(";"))) for v in frame.unit_codes])
        return diff_frames(
            old, new[["code", "name", "unit_codes"]], "officers", compare=("unit_codes",)
        )

    return LayerLoad(
        "officers",
        Source.of_file("officers", path),
        report,
        frame,
        write,
        f"{len(frame)} officers",
        diff,
    )
