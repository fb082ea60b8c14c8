"""Boundary layers: district, town, unit, large_grid, grid.

Checks, each reported with the feature's code (and where, for geometry): fields
present; codes present and unique; names present; geometry present, polygonal and
valid (GEOS reason); parent codes that exist in the layer above; the layer as a
valid coverage (no overlaps, shared edges identical); every child inside its parent
and every parent filled by its children (both up to ``AREA_TOLERANCE_M2``); data
near the district. ``repair=True`` fixes what can be fixed — invalid rings with
``make_valid``, mismatched shared edges by snapping to a 1e-7° grid — and lists it.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import sqlalchemy as sa
from shapely.geometry import MultiPolygon, Polygon

from etl.context import Context
from etl.geo import (
    AREA_TOLERANCE_M2,
    area_m2,
    check_near_district,
    check_offset_datum,
    point_of,
)
from etl.load import LayerLoad, diff_frames, insert_features
from etl.readers import read_vector
from etl.report import Report, where
from geoservice.datasets import Source
from geoservice.errors import InvalidInput
from geoservice.missing import is_missing
from geoservice.models import BOUNDARY_LAYERS, UNIT_KINDS
from geoservice.synthetic.divisions import unit_kind

PRECISION_DEG = 1e-7
DEFAULT_PARENT_FIELD = "parent_code"
SHORT_PARENT_FIELD = "parent"
"""Read when the file has no ``parent_code``: DBF field names stop at 10 characters."""
PARENT = dict(zip(BOUNDARY_LAYERS[1:], BOUNDARY_LAYERS[:-1], strict=True))
CHILD = {parent: child for child, parent in PARENT.items()}
NOUNS = {
    "district": "district",
    "town": "town",
    "unit": "unit",
    "large_grid": "large grid",
    "grid": "grid",
}


@dataclass(frozen=True)
class BoundaryOptions:
    layer: str
    crs: str | None = None
    code_field: str = "code"
    name_field: str = "name"
    parent_field: str = "parent_code"
    layer_name: str | None = None
    encoding: str | None = None
    repair: bool = False
    allow_outside: bool = False


def prepare_boundaries(path: Path, options: BoundaryOptions, context: Context) -> LayerLoad:
    """Read, validate (and with ``repair`` fix) one boundary layer; nothing is written yet."""
    layer = options.layer
    if layer not in BOUNDARY_LAYERS:
        msg = f"unknown layer {layer!r}; expected one of {', '.join(BOUNDARY_LAYERS)}"
        raise InvalidInput(msg)
    noun = NOUNS[layer]
    source = read_vector(
        path, crs=options.crs, layer_name=options.layer_name, encoding=options.encoding
    )
    report = Report(f"{noun} layer from {path.name}", layer)
    frame = _attributes(source, options, report, path)
    geoms = _polygonal(source.geometry.values, frame["code"], noun, options.repair, report)
    frame = gpd.GeoDataFrame(frame, geometry=list(geoms), crs="EPSG:4326")
    district = context.district()
    check_near_district(np.asarray(geoms), district, f"{path.name}", options.allow_outside)
    current = context.current_boundary(layer)
    reference = current.geometry.values if current is not None else np.array([district])
    check_offset_datum(
        np.asarray(geoms, dtype=object),
        np.asarray(reference, dtype=object),
        path.name,
        source.attrs.get("source_crs", ""),
    )

    usable = np.array([g is not None for g in geoms])
    if layer != "district":
        parents = context.boundary(PARENT[layer])
        _check_parents(frame, parents, layer, report)
        if usable.any():
            found = len(report.errors)
            checked = _check_coverage(frame, usable, noun, options.repair, report)
            frame = frame.set_geometry(list(checked))
            # Nesting is only meaningful on valid geometry forming a valid coverage.
            if parents is not None and usable.all() and len(report.errors) == found:
                check_nesting(frame, parents, layer, report)
    report.facts.append(f"{len(frame)} {noun}{'s' if len(frame) != 1 else ''} read")
    if "population" in frame and frame["population"].notna().any():
        report.facts.append(f"population {int(frame['population'].fillna(0).sum()):,}")

    def write(conn: sa.Connection, snapshot_id: int) -> int:
        rows = frame.assign(
            population=[None if is_missing(p) else int(p) for p in frame["population"]]
        )
        return insert_features(
            conn,
            "boundary",
            snapshot_id,
            rows,
            ("code", "name", "parent_code", "kind", "population"),
            multi=True,
        )

    return LayerLoad(
        layer=layer,
        source=Source.of_file(layer, path),
        report=report,
        frame=frame,
        write=write,
        summary=f"{len(frame)} {noun}{'s' if len(frame) != 1 else ''}",
        diff=lambda: diff_frames(
            context.boundary(layer), frame, f"{noun}s", compare=("parent_code", "population")
        ),
    )


def _attributes(
    source: gpd.GeoDataFrame, options: BoundaryOptions, report: Report, path: Path
) -> pd.DataFrame:
    wanted = {"code": options.code_field, "name": options.name_field}
    if options.layer != "district":
        parent = options.parent_field
        if parent == DEFAULT_PARENT_FIELD and parent not in source.columns:
            parent = SHORT_PARENT_FIELD if SHORT_PARENT_FIELD in source.columns else parent
        wanted["parent_code"] = parent
    missing = [field for field in wanted.values() if field not in source.columns]
    if missing:
        available = [c for c in source.columns if c != source.geometry.name]
        msg = f"{path}: no field {', '.join(map(repr, missing))}; the file has {available}"
        raise InvalidInput(msg)
    frame = pd.DataFrame({key: source[field] for key, field in wanted.items()})
    for key in ("code", "name", "parent_code"):
        if key in frame:
            frame[key] = [_text(v) for v in frame[key]]
    if "parent_code" not in frame:
        frame["parent_code"] = None
    for i, code in enumerate(frame["code"], start=1):
        if not code:
            report.error(f"feature #{i}: no code in field {options.code_field!r}")
    for code, count in Counter(c for c in frame["code"] if c).items():
        if count > 1:
            report.error(f"code {code!r} appears {count} times")
    for i, (code, name) in enumerate(zip(frame["code"], frame["name"], strict=True), start=1):
        if not name:
            report.error(f"{code or f'feature #{i}'!r}: no name in field {options.name_field!r}")
    frame["population"] = _populations(source, frame, report)
    frame["kind"] = _kinds(source, frame, options.layer, report)
    return frame


def _text(value: object) -> str | None:
    if is_missing(value):
        return None
    text = str(value).strip()
    if re.fullmatch(r"\d+\.0", text):  # a numeric code read as float
        text = text[:-2]
    return text or None


def _populations(source: gpd.GeoDataFrame, frame: pd.DataFrame, report: Report) -> pd.Series:
    if "population" not in source.columns:
        return pd.Series([None] * len(frame), dtype=object)
    values: list[int | None] = []
    for code, raw in zip(frame["code"], source["population"], strict=True):
        number = pd.to_numeric(pd.Series([raw]), errors="coerce").iloc[0]
        if is_missing(raw) or (isinstance(raw, str) and not raw.strip()):
            values.append(None)
        elif pd.isna(number) or number < 0 or number != int(number):
            report.error(f"{code!r}: population {raw!r} is not a whole number >= 0")
            values.append(None)
        else:
            values.append(int(number))
    return pd.Series(values, dtype=object)


def _kinds(source: gpd.GeoDataFrame, frame: pd.DataFrame, layer: str, report: Report) -> list:
    if layer != "unit":
        return [None] * len(frame)
    given = source["kind"] if "kind" in source.columns else [None] * len(frame)
    kinds = []
    for code, name, kind in zip(frame["code"], frame["name"], given, strict=True):
        kind = _text(kind)
        if kind is None:
            kind = unit_kind(name or "")
        elif kind not in UNIT_KINDS:
            report.error(f"{code!r}: kind {kind!r} is not one of {', '.join(UNIT_KINDS)}")
        kinds.append(kind)
    return kinds


def _geos_reason(reason: str) -> str:
    """'Self-intersection[114.4 23.1]' -> 'Self-intersection at 114.4 23.1'."""
    match = re.fullmatch(r"(.*)\[([-\d.e]+) ([-\d.e]+)\]", reason)
    return f"{match[1]} at {match[2]} {match[3]}" if match else reason


def _polygonal(geoms, codes, noun: str, repair: bool, report: Report) -> list:
    """Polygonal, valid MultiPolygons (None where a feature is unusable)."""
    out: list[MultiPolygon | None] = []
    for code, geom in zip(codes, geoms, strict=True):
        label = f"{noun} {code!r}"
        if geom is None or geom.is_empty:
            report.error(f"{label}: empty geometry")
            out.append(None)
            continue
        if not isinstance(geom, Polygon | MultiPolygon):
            report.error(f"{label}: geometry is {geom.geom_type}, expected Polygon or MultiPolygon")
            out.append(None)
            continue
        if not geom.is_valid:
            reason = _geos_reason(shapely.is_valid_reason(geom))
            if not repair:
                report.error(f"{label}: {reason} (--repair fixes it with make_valid)", geom)
                out.append(None)
                continue
            fixed = shapely.make_valid(geom)
            parts = [p for p in shapely.get_parts(fixed) if isinstance(p, Polygon | MultiPolygon)]
            geom = shapely.union_all(parts)
            report.repairs.append(f"{label}: {reason}; made valid with make_valid")
        out.append(geom if isinstance(geom, MultiPolygon) else MultiPolygon([geom]))
    return out


def _check_parents(
    frame: gpd.GeoDataFrame, parents: gpd.GeoDataFrame | None, layer: str, report: Report
) -> None:
    parent_noun = NOUNS[PARENT[layer]]
    if parents is None:
        report.error(
            f"no {parent_noun} layer is published yet: load the {parent_noun}s before the "
            f"{NOUNS[layer]}s"
        )
        return
    known = set(parents["code"])
    for code, parent in zip(frame["code"], frame["parent_code"], strict=True):
        if not parent:
            report.error(f"{NOUNS[layer]} {code!r}: no parent code")
        elif parent not in known:
            report.error(
                f"{NOUNS[layer]} {code!r}: parent {parent!r} is not a {parent_noun} of the "
                "current dataset"
            )


def _check_coverage(
    frame: gpd.GeoDataFrame, usable: np.ndarray, noun: str, repair: bool, report: Report
) -> np.ndarray:
    """Siblings must form a valid coverage: no overlaps, shared edges identical."""
    geoms = np.array(frame.geometry.values, dtype=object)
    codes = np.asarray(frame["code"])
    index = np.flatnonzero(usable)
    sub = geoms[index]
    if shapely.coverage_is_valid(sub):
        return geoms
    if repair:
        snapped = shapely.set_precision(sub, PRECISION_DEG)
        if shapely.coverage_is_valid(snapped):
            changed = int((~shapely.equals_exact(sub, snapped, 0)).sum())
            report.repairs.append(
                f"snapped {changed} {noun}s to a {PRECISION_DEG}° grid so shared edges match"
            )
            geoms[index] = [
                g if isinstance(g, MultiPolygon) else MultiPolygon([g]) for g in snapped
            ]
            return geoms
    lat0 = float(shapely.get_coordinates(sub[0])[0, 1])
    tree = shapely.STRtree(sub)
    left, right = tree.query(sub, predicate="intersects")
    pairs = left < right
    overlapping: set[int] = set()
    for a, b in zip(left[pairs], right[pairs], strict=True):
        overlap = shapely.intersection(sub[a], sub[b])
        area = area_m2(overlap, lat0)
        if area > AREA_TOLERANCE_M2:
            overlapping.update((a, b))
            report.error(
                f"{noun}s {codes[index[a]]!r} and {codes[index[b]]!r} overlap by {area:,.1f} m² "
                f"near {where(*point_of(overlap))}",
                overlap,
            )
    edges = shapely.coverage_invalid_edges(sub)
    for i, edge in enumerate(edges):
        if i in overlapping or edge is None or edge.is_empty:
            continue
        report.error(
            f"{noun} {codes[index[i]]!r}: its edge does not match its neighbour's exactly "
            f"near {where(*shapely.get_coordinates(edge)[0])} "
            f"(--repair snaps to a {PRECISION_DEG}° grid)",
            edge,
        )
    return geoms


def check_nesting(
    frame: gpd.GeoDataFrame, parents: gpd.GeoDataFrame, layer: str, report: Report
) -> None:
    """Every child inside its parent; every parent filled by its children."""
    noun, parent_noun = NOUNS[layer], NOUNS[PARENT[layer]]
    parent_geom = dict(zip(parents["code"], parents.geometry.values, strict=True))
    lat0 = point_of(parents.geometry.values[0])[1]
    ok = frame["parent_code"].isin(parent_geom.keys()).to_numpy()
    if not ok.any():
        return
    children = frame[ok]
    their_parents = np.array([parent_geom[p] for p in children["parent_code"]], dtype=object)
    outside = shapely.difference(children.geometry.values, their_parents)
    outside_m2 = area_m2(outside, lat0)
    for code, parent, part, area in zip(
        children["code"], children["parent_code"], outside, outside_m2, strict=True
    ):
        if area > AREA_TOLERANCE_M2:
            report.error(
                f"{noun} {code!r} extends {area:,.1f} m² outside its {parent_noun} {parent!r} "
                f"near {where(*point_of(part))}",
                part,
            )
    for parent_code, group in children.groupby("parent_code"):
        covered = shapely.coverage_union_all(group.geometry.values)
        gap = shapely.difference(parent_geom[parent_code], covered)
        tree = shapely.STRtree(group.geometry.values)
        for piece in shapely.get_parts(gap):
            area = area_m2(piece, lat0)
            if area > AREA_TOLERANCE_M2:
                around = sorted(group["code"].to_numpy()[tree.query(piece, "intersects")])
                bordered = (
                    f", bordered by {noun}s {', '.join(map(repr, around[:8]))}"
                    + (f" and {len(around) - 8} more" if len(around) > 8 else "")
                    if around
                    else f", bordered by no {noun}"
                )
                report.error(
                    f"gap of {area:,.1f} m² in {parent_noun} {parent_code!r} covered by no "
                    f"{noun}, near {where(*point_of(piece))}{bordered}",
                    piece,
                )
    for parent_code in sorted(set(parent_geom) - set(children["parent_code"])):
        report.error(f"{parent_noun} {parent_code!r} has no {noun}", parent_geom[parent_code])
