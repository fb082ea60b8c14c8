"""Boundary layers: district, town, unit, large_grid, grid.

Checks, each reported with the feature's code (and where, for geometry): fields
present; codes present and unique; names present; geometry present, polygonal and
valid (GEOS reason); parent codes that exist in the layer above; the layer as a
valid coverage (no overlaps, shared edges identical); every child inside its parent
and every parent filled by its children; data near the district. Overlaps, gaps and
parts outside a parent count when they are larger than ``AREA_TOLERANCE_M2`` and wider
than the load's tolerance (``etl.tolerance``: features equal to the current ones within
it keep the stored geometry; the others are snapped onto the current boundaries).
``repair=True`` fixes what can be fixed — invalid rings with ``make_valid``, mismatched
shared edges by snapping to a 1e-7° grid — and lists it, or says why it cannot.
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
    area_m2,
    check_near_district,
    check_offset_datum,
    point_of,
)
from etl.load import LayerLoad, diff_frames, insert_features, same_rows
from etl.readers import read_vector
from etl.report import Report, where
from etl.tolerance import (
    LocalPlane,
    degrees,
    keep_stored,
    plane_of,
    snap_polygons,
    wider_than,
)
from geoservice.crs import AREA_TOLERANCE_M2, DEFAULT_TOLERANCE_M
from geoservice.datasets import Source
from geoservice.errors import InvalidInput
from geoservice.missing import is_missing
from geoservice.models import BOUNDARY_LAYERS, UNIT_KINDS
from geoservice.synthetic.divisions import unit_kind

PRECISION_DEG = 1e-7
DEFAULT_PARENT_FIELD = "parent_code"
SHORT_PARENT_FIELDS = ("parent_cod", "parent")
"""Read when the file has no ``parent_code``: DBF field names stop at 10 characters, and
GDAL and QGIS write ``parent_code`` to a Shapefile as ``parent_cod``."""
ATTRIBUTES = ("name", "parent_code", "kind", "population")
"""What a boundary feature holds besides its code and geometry."""
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
    parents = context.boundary(PARENT[layer]) if layer != "district" else None
    frame = context.reconcile(
        layer,
        gpd.GeoDataFrame(frame, geometry=list(geoms), crs="EPSG:4326"),
        ATTRIBUTES,
        noun,
        report,
    )
    checked, kept = _within_tolerance(
        frame["code"],
        list(frame.geometry.values),
        current,
        parents,
        context.tolerance_m,
        noun,
        report,
    )
    frame = frame.set_geometry(list(checked))

    usable = np.array([g is not None for g in frame.geometry.values])
    if layer != "district":
        _check_parents(frame, parents, layer, report)
        if usable.any():
            checked, overlaps = _check_coverage(
                frame, usable, noun, options.repair, context.tolerance_m, report
            )
            frame = frame.set_geometry(list(checked))
            # Nesting is only meaningful on valid geometry that does not overlap itself.
            if parents is not None and usable.all() and not overlaps:
                check_nesting(frame, parents, layer, report, context.tolerance_m)
            report.report_loose_edges()
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

    unchanged = current is not None and bool(kept.all()) and same_rows(current, frame, ATTRIBUTES)
    return LayerLoad(
        layer=layer,
        source=Source.of_file(layer, path),
        report=report,
        frame=frame,
        write=write,
        summary=f"{len(frame)} {noun}{'s' if len(frame) != 1 else ''}",
        diff=lambda: diff_frames(current, frame, f"{noun}s", compare=("parent_code", "population")),
        unchanged=unchanged,
    )


def _within_tolerance(
    codes: pd.Series,
    geoms: list,
    current: gpd.GeoDataFrame | None,
    parents: gpd.GeoDataFrame | None,
    tolerance_m: float,
    noun: str,
    report: Report,
) -> tuple[np.ndarray, np.ndarray]:
    """Features equal to the current ones within the tolerance take the stored geometry;
    the others are snapped onto the parents, the kept features and their own stored
    geometry (``etl.tolerance``). Returns the geometries and which were kept."""
    out, kept, stored = keep_stored(
        list(codes),
        geoms,
        [] if current is None else list(current["code"]),
        [] if current is None else list(current.geometry.values),
        tolerance_m,
    )
    plane = plane_of(out)
    if kept.any():
        report.facts.append(
            f"{int(kept.sum()):,} {noun}s equal to the current ones within {tolerance_m:g} m: "
            "kept exactly as stored"
        )
    moving = np.array([g is not None for g in out]) & ~kept
    order = np.flatnonzero(moving)
    order = order[np.argsort(np.asarray(codes, dtype=object)[order].astype(str), kind="stable")]
    fixed = list(out[kept])
    if parents is not None:
        fixed += list(parents.geometry.values)
    out, snapped = snap_polygons(
        out, order, np.array(fixed, dtype=object), stored, tolerance_m, plane
    )
    if snapped.features:
        report.repairs.append(
            f"snapped {snapped.vertices:,} vertices of {snapped.features:,} {noun}s onto the "
            f"boundaries around them, at most {snapped.largest_m * 1000:,.1f} mm "
            f"(--tolerance-m {tolerance_m:g})"
        )
    return out, kept


def _attributes(
    source: gpd.GeoDataFrame, options: BoundaryOptions, report: Report, path: Path
) -> pd.DataFrame:
    wanted = {"code": options.code_field, "name": options.name_field}
    if options.layer != "district":
        parent = options.parent_field
        if parent == DEFAULT_PARENT_FIELD and parent not in source.columns:
            parent = next((f for f in SHORT_PARENT_FIELDS if f in source.columns), parent)
        wanted["parent_code"] = parent
    missing = [field for field in wanted.values() if field not in source.columns]
    if missing:
        available = [c for c in source.columns if c != source.geometry.name]
        msg = f"{path}: no field {', '.join(map(repr, missing))}; the file has {available}"
        raise InvalidInput(msg)
    frame = pd.DataFrame({key: source[field] for key, field in wanted.items()})
    for key in ("code", "name", "parent_code"):
        if key in frame:
            texts = [_text(v) for v in frame[key]]  # None for missing, not pandas' NaN
            frame[key] = pd.Series(texts, index=frame.index, dtype=object)
    if "parent_code" not in frame:
        frame["parent_code"] = None
    for i, code in enumerate(frame["code"], start=1):
        if not code:
            report.error(
                f"feature #{i}: no code in field {options.code_field!r}", kind="missing_value"
            )
    for code, count in Counter(c for c in frame["code"] if c).items():
        if count > 1:
            report.error(f"code {code!r} appears {count} times", code=code, kind="duplicate_code")
    for i, (code, name) in enumerate(zip(frame["code"], frame["name"], strict=True), start=1):
        if not name:
            report.error(
                f"{code or f'feature #{i}'!r}: no name in field {options.name_field!r}",
                code=code,
                kind="missing_value",
            )
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
            report.error(f"{code!r}: population {raw!r} is not a whole number >= 0", code=code)
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
            report.error(
                f"{code!r}: kind {kind!r} is not one of {', '.join(UNIT_KINDS)}", code=code
            )
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
            report.error(f"{label}: empty geometry", code=code, kind="invalid_geometry")
            out.append(None)
            continue
        if not isinstance(geom, Polygon | MultiPolygon):
            report.error(
                f"{label}: geometry is {geom.geom_type}, expected Polygon or MultiPolygon",
                geom,
                code=code,
                kind="invalid_geometry",
            )
            out.append(None)
            continue
        if not geom.is_valid:
            reason = _geos_reason(shapely.is_valid_reason(geom))
            if not repair:
                report.error(
                    f"{label}: {reason} (--repair fixes it with make_valid)",
                    geom,
                    code=code,
                    kind="invalid_geometry",
                )
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
            report.error(
                f"{NOUNS[layer]} {code!r}: no parent code", code=code, kind="missing_value"
            )
        elif parent not in known:
            report.error(
                f"{NOUNS[layer]} {code!r}: parent {parent!r} is not a {parent_noun} of the "
                "current dataset",
                code=code,
                kind="bad_reference",
            )


def _check_coverage(
    frame: gpd.GeoDataFrame,
    usable: np.ndarray,
    noun: str,
    repair: bool,
    tolerance_m: float,
    report: Report,
) -> tuple[np.ndarray, bool]:
    """Siblings must form a valid coverage: no overlaps, shared edges identical. Returns
    the geometries (snapped to a 1e-7° grid by ``repair`` when that makes the coverage
    valid) and whether any overlap was found. Edges that do not match are reported after
    the gaps a nesting check names (``report_loose_edges``)."""
    geoms = np.array(frame.geometry.values, dtype=object)
    codes = np.asarray(frame["code"])
    index = np.flatnonzero(usable)
    sub = geoms[index]
    if shapely.coverage_is_valid(sub):
        return geoms, False
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
            return geoms, False
    plane = plane_of(sub)
    tree = shapely.STRtree(sub)
    left, right = tree.query(sub, predicate="intersects")
    pairs = left < right
    overlapping: set[int] = set()
    for a, b in zip(left[pairs], right[pairs], strict=True):
        overlap = shapely.intersection(sub[a], sub[b])
        area = area_m2(overlap, plane.lat0)
        if area > AREA_TOLERANCE_M2 and _wide(overlap, tolerance_m, plane):
            overlapping.update((a, b))
            report.error(
                f"{noun}s {codes[index[a]]!r} and {codes[index[b]]!r} overlap by {area:,.1f} m² "
                f"near {where(*point_of(overlap))}",
                overlap,
                code=str(codes[index[a]]),
                kind="overlap",
            )
    edges = shapely.coverage_invalid_edges(sub)
    how = (
        f"snapping to a {PRECISION_DEG}° grid (--repair) does not close it: move the edge "
        "onto its neighbour's"
        if repair
        else f"--repair snaps vertices to a {PRECISION_DEG}° grid, which closes only "
        "differences of millimetres"
    )
    for i, edge in enumerate(edges):
        if i in overlapping or edge is None or edge.is_empty:
            continue
        report.loose_edges.append(
            (
                f"{noun} {codes[index[i]]!r}: its edge does not match its neighbour's exactly "
                f"near {where(*shapely.get_coordinates(edge)[0])} ({how})",
                edge,
                str(codes[index[i]]),
            )
        )
    return geoms, bool(overlapping)


def _wide(geom, tolerance_m: float, plane: LocalPlane) -> bool:
    """Wider than the tolerance somewhere (narrower is rounding, not a problem)."""
    return bool(wider_than(np.array([geom], dtype=object), tolerance_m, plane)[0])


def check_nesting(
    frame: gpd.GeoDataFrame,
    parents: gpd.GeoDataFrame,
    layer: str,
    report: Report,
    tolerance_m: float = DEFAULT_TOLERANCE_M,
) -> None:
    """Every child inside its parent; every parent filled by its children (parts larger
    than ``AREA_TOLERANCE_M2`` and wider than ``tolerance_m``)."""
    noun, parent_noun = NOUNS[layer], NOUNS[PARENT[layer]]
    parent_geom = dict(zip(parents["code"], parents.geometry.values, strict=True))
    plane = LocalPlane(point_of(parents.geometry.values[0])[1])
    lat0 = plane.lat0
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
        if area > AREA_TOLERANCE_M2 and _wide(part, tolerance_m, plane):
            report.error(
                f"{noun} {code!r} extends {area:,.1f} m² outside its {parent_noun} {parent!r} "
                f"near {where(*point_of(part))}",
                part,
                code=code,
                kind="outside_parent",
            )
    for parent_code, group in children.groupby("parent_code"):
        members = np.asarray(group.geometry.values, dtype=object)
        covered = (
            shapely.coverage_union_all(members)
            if shapely.coverage_is_valid(members)
            else shapely.union_all(members)
        )
        gap = shapely.difference(parent_geom[parent_code], covered)
        tree = shapely.STRtree(members)
        for piece in shapely.get_parts(gap):
            area = area_m2(piece, lat0)
            if area > AREA_TOLERANCE_M2 and _wide(piece, tolerance_m, plane):
                near = shapely.buffer(piece, degrees(max(tolerance_m, 0.01)))
                around = sorted(group["code"].to_numpy()[tree.query(near, "intersects")])
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
                    code=parent_code,
                    kind="gap",
                )
    for parent_code in sorted(set(parent_geom) - set(children["parent_code"])):
        report.error(
            f"{parent_noun} {parent_code!r} has no {noun}",
            parent_geom[parent_code],
            code=parent_code,
            kind="gap",
        )
