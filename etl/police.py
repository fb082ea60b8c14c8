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
from etl.load import LayerLoad, diff_frames, insert_features, same_rows
from etl.readers import read_table, read_vector, require_file
from etl.report import Report, where
from etl.tolerance import keep_stored
from geoservice.datasets import Source
from geoservice.errors import InvalidInput
from geoservice.missing import is_missing, none_if_missing, objects
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


def require_columns(frame: pd.DataFrame, columns: tuple[str, ...], path: Path) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        have = [c for c in frame.columns if c != "geometry"]
        msg = f"{path}: missing column(s) {', '.join(missing)}; the file has {have}"
        raise InvalidInput(msg)


def text_column(frame: pd.DataFrame, column: str) -> list[str]:
    return ["" if is_missing(v) else str(v).strip() for v in frame[column]]


def _check_codes(codes: list[str], names: list[str], noun: str, report: Report) -> None:
    for i, (code, name) in enumerate(zip(codes, names, strict=True), start=1):
        if not code:
            report.error(f"{noun} #{i}: no code", kind="missing_value")
        elif not name:
            report.error(f"{noun} {code!r}: no name", code=code, kind="missing_value")
    for code, count in Counter(c for c in codes if c).items():
        if count > 1:
            report.error(
                f"{noun} code {code!r} appears {count} times", code=code, kind="duplicate_code"
            )


def whole_number(value: object, code: str, field: str, report: Report, minimum: int = 1) -> int:
    number = pd.to_numeric(pd.Series([value]), errors="coerce").iloc[0]
    if pd.isna(number) or number != int(number) or number < minimum:
        report.error(f"{code!r}: {field} {value!r} is not a whole number >= {minimum}", code=code)
        return 0
    return int(number)


def inside_district(geoms, codes, noun: str, context: Context, report: Report) -> None:
    district = context.district().buffer(DISTRICT_TOLERANCE_DEG)
    for code, geom in zip(codes, geoms, strict=True):
        if geom is not None and not district.covers(geom):
            report.error(
                f"{noun} {code!r} lies outside the district at {where(*geom.coords[0])}",
                geom,
                code=code,
                kind="outside_parent",
            )


STATION_ATTRIBUTES = ("name", "kind", "area_code")
PATROL_ATTRIBUTES = ("name", "level", "team", "team_size")
OFFICER_ATTRIBUTES = ("name", "rank", "station_code", "unit_codes")
"""What the three layers hold besides code (and geometry); officers without personal
columns (phone numbers are kept apart, see ``prepare_officers``)."""


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
    require_columns(source, ("code", "name", "kind", "area_code"), path)
    report = Report(f"stations from {path.name}", "stations")
    codes, names = text_column(source, "code"), text_column(source, "name")
    _check_codes(codes, names, "station", report)
    geoms = []
    for code, geom in zip(codes, source.geometry, strict=True):
        if isinstance(geom, MultiPoint) and len(geom.geoms) == 1:
            geom = geom.geoms[0]
        if not isinstance(geom, Point) or geom.is_empty:
            kind = "empty" if geom is None or geom.is_empty else geom.geom_type
            report.error(
                f"station {code!r}: geometry is {kind}, expected Point",
                code=code,
                kind="invalid_geometry",
            )
            geom = None
        geoms.append(geom)
    check_near_district(np.array(geoms, dtype=object), context.district(), path.name, allow_outside)
    frame = gpd.GeoDataFrame(
        {
            "code": codes,
            "name": names,
            "kind": text_column(source, "kind"),
            "area_code": text_column(source, "area_code"),
        },
        geometry=geoms,
        crs="EPSG:4326",
    )
    frame = context.reconcile("stations", frame, STATION_ATTRIBUTES, "station", report)
    current = context.current("current_station", ["code", *STATION_ATTRIBUTES])
    frame, unchanged = keep_unchanged(frame, current, STATION_ATTRIBUTES, context)
    if not allow_outside:
        inside_district(frame.geometry.values, frame["code"], "station", context, report)
    towns, units = context.codes("town"), context.codes("unit")
    for code, kind, area in zip(frame["code"], frame["kind"], frame["area_code"], strict=True):
        if kind not in STATION_KINDS:
            report.error(
                f"station {code!r}: kind {kind!r} is not one of {', '.join(STATION_KINDS)}",
                code=code,
            )
        elif kind == "station" and area not in towns:
            report.error(
                f"station {code!r}: area_code {area!r} is not a town of the dataset",
                code=code,
                kind="bad_reference",
            )
        elif kind == "post" and area not in units:
            report.error(
                f"post {code!r}: area_code {area!r} is not a unit of the dataset",
                code=code,
                kind="bad_reference",
            )
    counts = Counter(frame["kind"])
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
        lambda: diff_frames(current, frame, "stations", compare=("kind", "area_code")),
        unchanged=unchanged,
    )


def keep_unchanged(
    frame: gpd.GeoDataFrame,
    current: gpd.GeoDataFrame | None,
    columns: tuple[str, ...],
    context: Context,
) -> tuple[gpd.GeoDataFrame, bool]:
    """Features equal to the current ones within the tolerance take the stored geometry;
    and whether the layer as a whole is unchanged."""
    if current is None:
        return frame, False
    geoms, kept, _ = keep_stored(
        list(frame["code"]),
        list(frame.geometry.values),
        list(current["code"]),
        list(current.geometry.values),
        context.tolerance_m,
    )
    frame = frame.set_geometry(list(geoms))
    return frame, bool(kept.all()) and same_rows(current, frame, columns)


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
    require_columns(source, ("code", "name", "level", "team_size"), path)
    report = Report(f"patrol segments from {path.name}", "patrols")
    codes, names = text_column(source, "code"), text_column(source, "name")
    given = text_column(source, "team") if "team" in source.columns else [""] * len(codes)
    teams = [team or None for team in given]
    _check_codes(codes, names, "patrol segment", report)
    levels = [
        whole_number(v, c, "level", report) for c, v in zip(codes, source["level"], strict=True)
    ]
    sizes = [
        whole_number(v, c, "team_size", report)
        for c, v in zip(codes, source["team_size"], strict=True)
    ]
    geoms = []
    for code, geom in zip(codes, source.geometry, strict=True):
        if isinstance(geom, MultiLineString):
            merged = shapely.line_merge(geom)
            geom = merged if isinstance(merged, LineString) else geom
        if not isinstance(geom, LineString) or geom.is_empty or geom.length == 0:
            kind = "empty" if geom is None or geom.is_empty else geom.geom_type
            report.error(
                f"patrol segment {code!r}: geometry is {kind}, expected one LineString",
                code=code,
                kind="invalid_geometry",
            )
            geom = None
        geoms.append(geom)
    check_near_district(np.array(geoms, dtype=object), context.district(), path.name, allow_outside)
    frame = gpd.GeoDataFrame(
        {"code": codes, "name": names, "level": levels, "team": teams, "team_size": sizes},
        geometry=geoms,
        crs="EPSG:4326",
    )
    frame = context.reconcile("patrols", frame, PATROL_ATTRIBUTES, "patrol segment", report)
    current = context.current("current_patrol_segment", ["code", *PATROL_ATTRIBUTES])
    frame, unchanged = keep_unchanged(frame, current, PATROL_ATTRIBUTES, context)
    if not allow_outside:
        inside_district(frame.geometry.values, frame["code"], "patrol segment", context, report)
    report.facts.append(f"{len(frame)} segments, {int(frame['team_size'].sum())} patrol officers")

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
        lambda: diff_frames(current, frame, "patrol segments", compare=("level", "team_size")),
        unchanged=unchanged,
    )


def prepare_officers(
    path: Path, context: Context, *, encoding: str | None = None, layer_name: str | None = None
) -> LayerLoad:
    """Officers and their units (a CSV, or a GeoPackage table); ``unit_codes`` holds one or
    more codes separated by ';'. Without a ``phone`` column (an export made with a
    planner's key leaves phone numbers out) each officer keeps the current phone number."""
    require_file(path, (".csv", ".gpkg"))
    table = (
        read_table(path, encoding)
        if path.suffix.lower() == ".csv"
        else _gpkg_table(path, layer_name or "officers")
    )
    require_columns(table, tuple(c for c in OFFICER_COLUMNS if c != "phone"), path)
    report = Report(f"officers from {path.name}", "officers")
    codes, names = text_column(table, "code"), text_column(table, "name")
    _check_codes(codes, names, "officer", report)
    raw_units = [
        [u.strip() for u in units.replace(",", ";").split(";") if u.strip()]
        for units in text_column(table, "unit_codes")
    ]
    frame = pd.DataFrame(
        {
            "code": codes,
            "name": names,
            "rank": [v or None for v in text_column(table, "rank")],
            "phone": (
                [v or None for v in text_column(table, "phone")]
                if "phone" in table.columns
                else [None] * len(codes)
            ),
            "station_code": [v or None for v in text_column(table, "station_code")],
            "unit_codes": [";".join(sorted(dict.fromkeys(units))) for units in raw_units],
            "line": range(2, len(codes) + 2),
        }
    )
    frame = context.reconcile("officers", frame, OFFICER_ATTRIBUTES, "officer", report)
    for column in ("rank", "phone", "station_code", "unit_codes"):  # None, not NaN
        frame[column] = pd.Series(objects(frame[column]), index=frame.index, dtype=object)
    phones = dict(context.table("SELECT code, phone FROM geoservice.current_officer").values)
    from_file = frame["line"].notna() & ("phone" in table.columns)
    frame["phone"] = pd.Series(
        [
            phone if own else none_if_missing(phones.get(code))
            for code, phone, own in zip(frame["code"], frame["phone"], from_file, strict=True)
        ],
        index=frame.index,
        dtype=object,
    )
    units = context.codes("unit")
    if not units:
        report.error("no unit layer is published yet: load the units before the officers")
    stations = context.station_codes()
    assignments = []
    for code, station, its_units, line in zip(
        frame["code"], frame["station_code"], frame["unit_codes"], frame["line"], strict=True
    ):
        who = f"line {int(line)}: officer {code!r}" if pd.notna(line) else f"officer {code!r}"
        listed = [u for u in str(its_units or "").split(";") if u]
        if not listed:
            report.error(
                f"{who} has no unit (column unit_codes is empty)", code=code, kind="missing_value"
            )
        for unit in listed:
            if units and unit not in units:
                report.error(f"{who}: unknown unit code {unit!r}", code=code, kind="bad_reference")
            assignments.append((code, unit))
        if station and stations is not None and station not in stations:
            report.error(
                f"{who}: unknown station code {station!r}", code=code, kind="bad_reference"
            )
    covered = {unit for _, unit in assignments} & units
    report.facts.append(f"{len(frame)} officers assigned to {len(covered)} of {len(units)} units")
    if units and len(covered) < len(units):
        report.warnings.append(
            f"{len(units) - len(covered)} units have no officer: "
            f"{', '.join(sorted(units - covered)[:8])}"
        )
    current = context.layer_at("officers", context.current_version() or 0)
    unchanged = (
        not current.empty
        and same_rows(current, frame, OFFICER_ATTRIBUTES)
        and all(phones.get(c) == p for c, p in zip(frame["code"], frame["phone"], strict=True))
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
        old = current[["code", "name", "unit_codes"]] if not current.empty else None
        return diff_frames(
            old, frame[["code", "name", "unit_codes"]], "officers", compare=("unit_codes",)
        )

    return LayerLoad(
        "officers",
        Source.of_file("officers", path),
        report,
        frame,
        write,
        f"{len(frame)} officers",
        diff,
        unchanged=unchanged,
    )
