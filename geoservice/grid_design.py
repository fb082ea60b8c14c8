"""Grid design: base grids of the right size that nest in their large grids, keep the
grids that already fit, and follow roads where a cut is needed.

"按照规模适度、方便管理和相对稳定的原则" — moderate size, easy to manage, stable. For each
large grid in scope, every base grid is sized by the population layer (households or
residents of the places inside it; with ``weight="events"`` each grid event in the register
counts as one more). Grids within the band stay exactly as they are (``keep_fitting``);
the others are redrawn from their own area, in two steps:

1. **Split** a grid over the ceiling along a chord between two of its own vertices — the
   chord inside the grid that best balances the two halves, preferring one that runs
   along a road and is short. Cutting between existing vertices adds no vertex to any
   neighbour, so the grids stay an exact coverage (shared edges identical).
2. **Merge** grids under the floor, smallest first, into the neighbour (redrawn, same large
   grid, sharing an edge) that gives the smallest result within the ceiling, preferring to
   dissolve edges that do not follow a road. Merging is a coverage union: exact.

This is a greedy max-p regionalisation with a floor and a ceiling on the existing grids
as building blocks. PySAL spopt's ``MaxPHeuristic`` has a floor only (no ceiling, no
keeping of fitting regions, no nesting), which is why it is not used here; the benchmark
sets the two side by side. A grid that stays outside the band says why (a large grid
smaller than the floor, no neighbour to merge with, no cut that brings it under the
ceiling).

Codes: kept grids keep theirs; a redrawn grid takes the code of the old grid it covers
most, unless another took it; new codes are numbered after the last of the large grid,
names follow its grids' pattern (``…1-7网格``).
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
import sqlalchemy as sa
from shapely.geometry import LineString, MultiPolygon, Polygon, mapping
from shapely.geometry.base import BaseGeometry
from shapely.ops import split
from sqlalchemy.engine import Connection

from geoservice.crs import to_metric
from geoservice.diff import features_at
from geoservice.errors import InvalidInput
from geoservice.export import BASE_KEY, creation_options

Measure = Literal["households", "residents"]
ROAD_CLASSES = (
    "motorway",
    "trunk",
    "primary",
    "secondary",
    "tertiary",
    "unclassified",
    "residential",
)
"""Roads a cut may follow (every class a car uses; footways and paths are not edges)."""
ROAD_NEAR_M = 15.0
"""A boundary within this of a road (metres) counts as following it."""
MAX_CHORD_VERTICES = 80
"""Vertices considered as chord ends (a ring with more is sampled evenly)."""


@dataclass(frozen=True)
class Band:
    measure: Measure
    low: int
    high: int

    @classmethod
    def parse(cls, measure: Measure, text: str) -> Band:
        """``300-500`` as a band of ``measure``."""
        match = re.fullmatch(r"\s*(\d+)\s*-\s*(\d+)\s*", text)
        if not match or int(match[1]) < 1 or int(match[1]) > int(match[2]):
            msg = f"--{measure} {text!r}: expected LOW-HIGH, whole numbers, 1 <= LOW <= HIGH"
            raise InvalidInput(msg)
        return cls(measure, int(match[1]), int(match[2]))

    def __str__(self) -> str:
        return f"{self.low}-{self.high} {self.measure}"


@dataclass(frozen=True)
class Grid:
    code: str
    name: str
    parent_code: str
    geometry: MultiPolygon
    size: int
    population: int | None
    """The grid's ``population`` attribute: as stored for a grid left as it was, else the
    residents of the places inside it."""


@dataclass
class Piece:
    """A grid being redrawn: its area, size and the old grids it covers."""

    geometry: Polygon | MultiPolygon
    size: int
    residents: int
    origins: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class Outside:
    code: str
    size: int
    reason: str


@dataclass(frozen=True)
class LargeGridPlan:
    code: str
    before: list[Grid]
    after: list[Grid]
    kept: list[str]
    outside: list[Outside]

    def to_json(self) -> dict[str, Any]:
        return {
            "large_grid": self.code,
            "grids_before": len(self.before),
            "grids_after": len(self.after),
            "kept": len(self.kept),
            "sizes_before": _sizes([g.size for g in self.before]),
            "sizes_after": _sizes([g.size for g in self.after]),
            "outside_band": [o.__dict__ for o in self.outside],
        }


@dataclass(frozen=True)
class Proposal:
    version: int
    band: Band
    keep_fitting: bool
    weight: str | None
    plans: list[LargeGridPlan]
    grids: list[Grid]
    """The whole grid layer as proposed (grids outside the scope unchanged)."""

    def geojson(self) -> dict[str, Any]:
        """The proposed grids of the large grids in scope, as a FeatureCollection (WGS84)."""
        in_scope = {p.code for p in self.plans}
        kept = {code for p in self.plans for code in p.kept}
        return {
            "type": "FeatureCollection",
            "features": [
                {
                    "type": "Feature",
                    "id": g.code,
                    "geometry": mapping(g.geometry),
                    "properties": {
                        "code": g.code,
                        "name": g.name,
                        "parent_code": g.parent_code,
                        self.band.measure: g.size,
                        "kept": g.code in kept,
                        "in_band": self.band.low <= g.size <= self.band.high,
                    },
                }
                for g in self.grids
                if g.parent_code in in_scope
            ],
            "dataset_version": self.version,
        }

    def report(self) -> dict[str, Any]:
        after = [g for p in self.plans for g in p.after]
        return {
            "dataset_version": self.version,
            "band": {"measure": self.band.measure, "low": self.band.low, "high": self.band.high},
            "keep_fitting": self.keep_fitting,
            "weight": self.weight,
            "large_grids": len(self.plans),
            "grids_before": sum(len(p.before) for p in self.plans),
            "grids_after": len(after),
            "kept": sum(len(p.kept) for p in self.plans),
            "in_band": sum(self.band.low <= g.size <= self.band.high for g in after),
            "sizes_after": _sizes([g.size for g in after]),
            "per_large_grid": [p.to_json() for p in self.plans],
        }


def _sizes(values: Sequence[int]) -> dict[str, float | None]:
    if not values:
        return {"min": None, "median": None, "max": None}
    return {
        "min": int(min(values)),
        "median": float(np.median(values)),
        "max": int(max(values)),
    }


@dataclass(frozen=True)
class Scope:
    large_grids: tuple[str, ...] = ()
    units: tuple[str, ...] = ()
    towns: tuple[str, ...] = ()
    all: bool = False


def large_grids_in(conn: Connection, version: int, scope: Scope) -> list[str]:
    """The large grids a scope names (404-free: unknown codes are an ``InvalidInput``)."""
    given = [bool(scope.large_grids), bool(scope.units), bool(scope.towns), scope.all]
    if sum(given) != 1:
        msg = "name exactly one scope: --large-grid, --unit, --town or --all"
        raise InvalidInput(msg)
    rows = conn.execute(
        sa.text(
            "SELECT l.code, l.parent_code AS unit, u.parent_code AS town "
            "FROM geoservice.boundary l JOIN geoservice.boundary u "
            "ON u.snapshot_id = geoservice.snapshot_of(:v, 'unit') AND u.code = l.parent_code "
            "WHERE l.snapshot_id = geoservice.snapshot_of(:v, 'large_grid') ORDER BY l.code"
        ),
        {"v": version},
    ).all()
    if scope.all:
        return [r.code for r in rows]
    for noun, codes, known in (
        ("large grid", scope.large_grids, {r.code for r in rows}),
        ("unit", scope.units, {r.unit for r in rows}),
        ("town", scope.towns, {r.town for r in rows}),
    ):
        unknown = sorted(set(codes) - known)
        if unknown:
            msg = f"no {noun} {', '.join(unknown)} in dataset version {version}"
            raise InvalidInput(msg)
    return [
        r.code
        for r in rows
        if r.code in scope.large_grids or r.unit in scope.units or r.town in scope.towns
    ]


def propose(
    conn: Connection,
    version: int,
    scope: Scope,
    band: Band,
    *,
    keep_fitting: bool = True,
    weight: str | None = None,
) -> Proposal:
    """The proposal for the large grids in ``scope`` at ``version``."""
    if weight not in (None, "events"):
        msg = f"weight {weight!r}: expected events (or none)"
        raise InvalidInput(msg)
    chosen = set(large_grids_in(conn, version, scope))
    grids = _grids(conn, version)
    points, residents, households = _population(conn, version)
    if len(points) == 0:
        msg = (
            f"dataset version {version} has no population layer: load one "
            "(`geoservice etl population FILE`) before designing grids"
        )
        raise InvalidInput(msg)
    counts = households if band.measure == "households" else residents
    events = _events(conn) if weight == "events" else np.empty((0, 2))
    roads = _roads(conn, version)
    measure = Sizes(points, counts, residents, events)
    by_parent: dict[str, list[tuple[str, str, int | None, MultiPolygon]]] = {}
    for code, name, parent, population, geom in grids:
        by_parent.setdefault(parent, []).append((code, name, population, geom))
    plans = []
    proposed: list[Grid] = []
    for parent in sorted(by_parent):
        members = [
            Grid(code, name, parent, geom, measure.of(geom)[0], population)
            for code, name, population, geom in by_parent[parent]
        ]
        if parent not in chosen:
            proposed.extend(members)
            continue
        plan = plan_large_grid(parent, members, band, keep_fitting, measure, roads)
        plans.append(plan)
        proposed.extend(plan.after)
    return Proposal(version, band, keep_fitting, weight, plans, sorted(proposed, key=_code))


def _code(grid: Grid) -> str:
    return grid.code


class Sizes:
    """Sizes of areas: the places (and events) inside them."""

    def __init__(
        self, points: np.ndarray, counts: np.ndarray, residents: np.ndarray, events: np.ndarray
    ) -> None:
        self.points, self.counts, self.residents, self.events = points, counts, residents, events
        self.tree = shapely.STRtree(shapely.points(points))
        self.event_tree = shapely.STRtree(shapely.points(events)) if len(events) else None

    def of(self, geometry: BaseGeometry) -> tuple[int, int]:
        """(size, residents) of the places inside ``geometry``."""
        inside = self.tree.query(geometry, predicate="contains")
        size = int(self.counts[inside].sum())
        if self.event_tree is not None:
            size += len(self.event_tree.query(geometry, predicate="contains"))
        return size, int(self.residents[inside].sum())


def plan_large_grid(
    parent: str,
    members: list[Grid],
    band: Band,
    keep_fitting: bool,
    measure: Sizes,
    roads: Roads,
) -> LargeGridPlan:
    kept = [g for g in members if keep_fitting and band.low <= g.size <= band.high]
    kept_codes = {g.code for g in kept}
    pieces: list[Piece] = []
    for grid in members:
        if grid.code in kept_codes:
            continue
        for part in grid.geometry.geoms:  # each part is its own piece: grids are contiguous
            size, residents = measure.of(part)
            pieces.append(Piece(part, size, residents, {grid.code}))
    reasons: dict[int, str] = {}
    pieces = _split_all(pieces, band, measure, roads, reasons)
    pieces = _merge_all(pieces, band, roads, reasons)
    after = _named(parent, members, kept, pieces)
    outside = []
    total = sum(g.size for g in members)
    for grid, piece in zip(after[len(kept) :], pieces, strict=True):
        if band.low <= grid.size <= band.high:
            continue
        if grid.size < band.low and total < band.low:
            reason = f"the whole large grid holds {total} {band.measure}, under the floor"
        else:
            reason = reasons.get(id(piece)) or (
                "under the floor: no neighbour to merge with within the ceiling"
                if grid.size < band.low
                else "over the ceiling: no cut between its vertices brings it under"
            )
        outside.append(Outside(grid.code, grid.size, reason))
    return LargeGridPlan(parent, members, after, sorted(kept_codes), outside)


def _split_all(
    pieces: list[Piece], band: Band, measure: Sizes, roads: Roads, reasons: dict
) -> list[Piece]:
    done: list[Piece] = []
    todo = list(pieces)
    while todo:
        piece = todo.pop()
        if piece.size <= band.high:
            done.append(piece)
            continue
        halves = _best_split(piece, measure, roads, band.low)
        if halves is None:
            reasons[id(piece)] = "over the ceiling, and no cut between its vertices divides it"
            done.append(piece)
            continue
        todo.extend(halves)
    return done


def _best_split(piece: Piece, measure: Sizes, roads: Roads, low: int) -> list[Piece] | None:
    polygon = piece.geometry
    if not isinstance(polygon, Polygon):
        return None
    ring = list(polygon.exterior.coords)[:-1]
    step = max(1, len(ring) // MAX_CHORD_VERTICES)
    ends = range(0, len(ring), step)
    scale = np.sqrt(_area_m2(polygon))
    best: tuple[float, list[Piece]] | None = None
    shapely.prepare(polygon)
    for i, j in itertools.combinations(ends, 2):
        if j - i < 2 or (i == 0 and j >= len(ring) - 1):
            continue  # neighbours on the ring: no area between them
        chord = LineString([ring[i], ring[j]])
        if not polygon.contains(chord):
            continue
        parts = shapely.get_parts(split(polygon, chord))
        if len(parts) != 2:
            continue
        sizes = [measure.of(part) for part in parts]
        if min(s[0] for s in sizes) == 0:
            continue
        balance = abs(sizes[0][0] - sizes[1][0]) / piece.size
        balance += sum(s[0] < low for s in sizes)  # a half under the floor is a last resort
        length = _length_m(chord) / scale
        off_road = 1.0 - roads.share(chord)
        score = balance + 0.3 * off_road + 0.2 * length
        if best is None or score < best[0]:
            halves = [
                Piece(part, size, residents, set(piece.origins))
                for part, (size, residents) in zip(parts, sizes, strict=True)
            ]
            best = (score, halves)
    return None if best is None else best[1]


def _merge_all(pieces: list[Piece], band: Band, roads: Roads, reasons: dict) -> list[Piece]:
    pieces = list(pieces)
    stuck: set[int] = set()
    while True:
        small = [p for p in pieces if p.size < band.low and id(p) not in stuck]
        if not small:
            return pieces
        piece = min(small, key=lambda p: (p.size, sorted(p.origins)))
        options = []
        for other in pieces:
            if other is piece:
                continue
            shared = shapely.intersection(piece.geometry.boundary, other.geometry.boundary)
            length = _length_m(shared)
            if length <= 0.01:
                continue
            merged = piece.size + other.size
            if merged > band.high:
                continue
            options.append((merged, roads.share(shared), -length, other))
        if not options:
            stuck.add(id(piece))
            reasons[id(piece)] = (
                "under the floor: every neighbour it could merge with would pass the ceiling"
                if any(_touches(piece, p) for p in pieces if p is not piece)
                else "under the floor: it touches no other redrawn grid of its large grid"
            )
            continue
        merged_size, _road, _length, other = min(options, key=lambda o: o[:3])
        union = shapely.coverage_union_all([piece.geometry, other.geometry])
        union = union if isinstance(union, Polygon | MultiPolygon) else piece.geometry
        combined = Piece(
            union, merged_size, piece.residents + other.residents, piece.origins | other.origins
        )
        pieces = [p for p in pieces if p is not piece and p is not other] + [combined]


def _touches(a: Piece, b: Piece) -> bool:
    return _length_m(shapely.intersection(a.geometry.boundary, b.geometry.boundary)) > 0.01


def _named(parent: str, members: list[Grid], kept: list[Grid], pieces: list[Piece]) -> list[Grid]:
    """Kept grids, then the redrawn ones with their codes and names."""
    old = {g.code: g for g in members}
    taken = {g.code for g in kept}
    suffixes = [int(g.code[len(parent) :]) for g in members if g.code[len(parent) :].isdigit()]
    width = max((len(g.code) - len(parent) for g in members), default=2)
    following = max(suffixes, default=0)
    pattern = next((m for g in members if (m := re.fullmatch(r"(.*-)(\d+)(网格)", g.name))), None)
    out = list(kept)
    order = sorted(range(len(pieces)), key=lambda i: -_area_m2(pieces[i].geometry))
    codes: dict[int, str] = {}
    for i in order:
        piece = pieces[i]
        overlaps = sorted(
            piece.origins,
            key=lambda c: (-shapely.area(shapely.intersection(old[c].geometry, piece.geometry)), c),
        )
        code = next((c for c in overlaps if c not in taken), None)
        if code is None:
            following += 1
            code = f"{parent}{following:0{width}d}"
        taken.add(code)
        codes[i] = code
    for i, piece in enumerate(pieces):
        code = codes[i]
        if code in old:
            name = old[code].name
        elif pattern is not None:
            name = f"{pattern[1]}{int(code[len(parent) :])}{pattern[3]}"
        else:
            name = f"{code}网格"
        geometry = piece.geometry
        multi = geometry if isinstance(geometry, MultiPolygon) else MultiPolygon([geometry])
        if code in old and shapely.equals_exact(old[code].geometry, multi, 0):
            out.append(old[code])  # left as it was: attributes as stored
        else:
            out.append(Grid(code, name, parent, multi, piece.size, piece.residents))
    return out


def _area_m2(geometry: BaseGeometry) -> float:
    return float(shapely.area(_metric(geometry)))


def _length_m(geometry: BaseGeometry) -> float:
    return float(shapely.length(_metric(geometry))) if not geometry.is_empty else 0.0


def _metric(geometry: BaseGeometry) -> BaseGeometry:
    return shapely.transform(geometry, lambda xy: np.column_stack(to_metric(xy[:, 0], xy[:, 1])))


class Roads:
    """The roads a boundary may follow, in metres, for "how much of this line runs along
    a road": points every ``SAMPLE_M`` along the line, the share within ``ROAD_NEAR_M``."""

    SAMPLE_M = 5.0

    def __init__(self, lines: Sequence[BaseGeometry]) -> None:
        self.tree = shapely.STRtree([_metric(line) for line in lines])
        self.empty = len(lines) == 0

    def share(self, line: BaseGeometry) -> float:
        if self.empty or line.is_empty:
            return 0.0
        metric = _metric(line)
        length = shapely.length(metric)
        if length == 0:
            return 0.0
        steps = np.linspace(0, length, max(2, int(length / self.SAMPLE_M) + 1))
        samples = shapely.line_interpolate_point(_lines_of(metric), steps[:, None]).ravel()
        samples = samples[~shapely.is_empty(samples)]
        if len(samples) == 0:
            return 0.0
        hit, _ = self.tree.query(samples, predicate="dwithin", distance=ROAD_NEAR_M)
        return len(np.unique(hit)) / len(samples)


def _lines_of(geometry: BaseGeometry) -> np.ndarray:
    """A line, or the first line of a collection of them (shared boundaries are mostly one)."""
    merged = shapely.line_merge(geometry) if geometry.geom_type != "LineString" else geometry
    parts = shapely.get_parts(merged)
    return parts[:1] if len(parts) else np.array([LineString()])


def _grids(conn: Connection, version: int) -> list[tuple[str, str, str, int | None, MultiPolygon]]:
    rows = conn.execute(
        sa.text(
            "SELECT code, name, parent_code, population, ST_AsBinary(geom) "
            "FROM geoservice.boundary "
            "WHERE snapshot_id = geoservice.snapshot_of(:v, 'grid') ORDER BY code"
        ),
        {"v": version},
    ).all()
    return [(r[0], r[1], r[2], r[3], shapely.from_wkb(bytes(r[4]))) for r in rows]


def _population(conn: Connection, version: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rows = conn.execute(
        sa.text(
            "SELECT ST_X(p), ST_Y(p), residents, households FROM ("
            "SELECT ST_PointOnSurface(geom) AS p, residents, households FROM geoservice.population "
            "WHERE snapshot_id = geoservice.snapshot_of(:v, 'population')) q"
        ),
        {"v": version},
    ).all()
    table = np.array(rows, dtype=float).reshape(-1, 4)
    return table[:, :2], table[:, 2].astype(np.int64), table[:, 3].astype(np.int64)


def _events(conn: Connection) -> np.ndarray:
    rows = conn.execute(sa.text("SELECT ST_X(geom), ST_Y(geom) FROM geoservice.event")).all()
    return np.array(rows, dtype=float).reshape(-1, 2)


def _roads(conn: Connection, version: int) -> Roads:
    rows = conn.execute(
        sa.text(
            "SELECT ST_AsBinary(geom) FROM geoservice.road_edge "
            "WHERE snapshot_id = geoservice.snapshot_of(:v, 'roads') AND highway = ANY(:classes)"
        ),
        {"v": version, "classes": list(ROAD_CLASSES)},
    ).scalars()
    return Roads(shapely.from_wkb([bytes(w) for w in rows]))


BUNDLE_FILES = ("grid.gpkg", "population.gpkg", "report.json")


def write_bundle(conn: Connection, proposal: Proposal, out: Path) -> None:
    """``out`` as a bundle folder: ``grid.gpkg`` (the whole grid layer as proposed, made
    from ``proposal.version``: its ``base_version``), ``population.gpkg`` (the places it
    sized grids by) and ``report.json``. Files of an earlier proposal are replaced; a
    folder holding anything else is refused."""
    if out.exists() and not out.is_dir():
        msg = f"--out {out}: not a folder"
        raise InvalidInput(msg)
    others = (
        sorted(p.name for p in out.iterdir() if p.name not in BUNDLE_FILES) if out.exists() else []
    )
    if others:
        msg = f"--out {out} holds {', '.join(others[:5])}: choose an empty folder"
        raise InvalidInput(msg)
    out.mkdir(parents=True, exist_ok=True)
    metadata = {BASE_KEY: str(proposal.version), "made_by": "geoservice grids propose"}
    grids = gpd.GeoDataFrame(
        {
            "code": [g.code for g in proposal.grids],
            "name": [g.name for g in proposal.grids],
            "parent_code": [g.parent_code for g in proposal.grids],
            "population": pd.array([g.population for g in proposal.grids], dtype="Int64"),
        },
        geometry=[g.geometry for g in proposal.grids],
        crs="EPSG:4326",
    )
    for name in BUNDLE_FILES:
        (out / name).unlink(missing_ok=True)
    pyogrio.write_dataframe(
        grids,
        out / "grid.gpkg",
        layer="grid",
        driver="GPKG",
        promote_to_multi=True,
        **creation_options(metadata),
    )
    people = features_at(conn, "population", proposal.version)
    pyogrio.write_dataframe(
        people, out / "population.gpkg", layer="population", driver="GPKG",
        **creation_options(metadata),
    )  # fmt: skip
    (out / "report.json").write_text(
        json.dumps(proposal.report(), ensure_ascii=False, indent=2), encoding="utf-8"
    )
