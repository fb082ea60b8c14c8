"""Grid design: base grids of the right size that nest in their large grids, keep the
grids that already fit, and follow roads and rivers.

"按照规模适度、方便管理和相对稳定的原则" — moderate size, easy to manage, stable. For each
large grid in scope, every base grid is sized by the population layer (households or
residents of the places inside it; with ``weight="events"`` each grid event in the register
counts as one more). Grids within the band stay exactly as they are (``keep_fitting``);
the others are redrawn from the area they cover together (the *free area*):

1. **Blocks.** The free area is cut by the roads of ``ROAD_CLASSES`` (residential and up:
   every class a car uses, not service ways, footways or paths) and by rivers (lines, or
   the outlines of water polygons), clipped to it, and polygonized with its own edge
   (``shapely.polygonize``). A road that meets the free area's edge is led to the edge's
   nearest vertex when that lies within ``SNAP_M``, else it stops at its last junction
   inside: a cut never adds a vertex to the edge, so the neighbours outside (kept grids,
   other large grids) stay as they are and the layer stays an exact coverage. Blocks
   under ``SLIVER_M2`` or narrower than ``SLIVER_WIDTH_M`` on average are merged into the
   neighbour they share the longest edge with. Each block holds the places inside it.
2. **Blocks over the ceiling** are split along a chord between two of their own vertices
   (the chord inside that best balances the halves, preferring one along a road and
   short) — the fallback where the roads leave a block too big (a free area without
   roads is one block). A block that no chord divides stays whole and says so.
3. **Grouping** (a max-p regionalisation with a floor and a ceiling, our own): each
   connected part of the free area gets the number of grids ``p`` nearest its total over
   the band's middle among the counts the floor and the ceiling allow, and is bisected
   recursively: blocks are taken in order along the longer axis of the part, through
   shared edges (a sweep that keeps the taken blocks connected), until they hold the
   share of the first ``p // 2`` grids; pieces the sweep cut off join the taken side, so
   both sides stay contiguous. Every boundary between two new grids is a block edge, so
   it runs along a road or river (or a chord of step 2). spopt's ``MaxPHeuristic`` has a
   floor only — no ceiling, no kept regions, no nesting — and is much slower on the same
   blocks (``benchmarks/grid_design.py`` sets the two side by side); its ``p`` is the
   largest the floor allows, which puts every region at the floor's edge. Ours aims at the
   band's middle so a block more or less keeps a grid in the band.
4. **Merge** grids still under the floor, smallest first, into the neighbour (redrawn, same
   large grid, sharing an edge) that gives the smallest result within the ceiling,
   preferring to dissolve edges that do not follow a road. Merging is a coverage union:
   exact.

Every redrawn large grid is checked (an exact coverage of itself, no vertex its outside
neighbours lack); one that fails is redrawn by the chord split of whole grids (steps 2 and
4 on the old grids), the method before blocks. A grid that stays outside the band says why
(one block larger than the ceiling, a large grid smaller than the floor, no neighbour to
merge with).

Codes: kept grids keep theirs; a redrawn grid takes the code of the old grid it covers
most, unless another took it; new codes are numbered after the last of the large grid,
names follow its grids' pattern (``…1-7网格``).
"""

from __future__ import annotations

import heapq
import itertools
import json
import math
import re
from collections.abc import Iterable, Sequence
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
"""Roads that cut blocks and that a boundary may follow (every class a car uses from
residential up; service ways, footways and paths do not cut)."""
WATERWAYS = ("river", "canal", "riverbank")
"""OSM ``waterway`` values read as rivers (``natural=water`` areas too, by their outline)."""
SNAP_M = 60.0
"""A road meeting the free area's edge within this of one of the edge's vertices is led
to that vertex; farther, it stops at its last junction inside (metres)."""
SLIVER_M2 = 1_000.0
"""A block smaller than this (m²) is merged into a neighbour."""
SLIVER_WIDTH_M = 8.0
"""A block narrower than this on average (2 × area / perimeter, metres) is merged too."""
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
    """The grids of the large grids in scope as proposed (``write_bundle`` adds the others,
    as stored)."""

    def geojson(self) -> dict[str, Any]:
        """The proposed grids of the large grids in scope, as a FeatureCollection (WGS84)."""
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
    rivers: Sequence[BaseGeometry] = (),
) -> Proposal:
    """The proposal for the large grids in ``scope`` at ``version``.

    Reads only the scope's grids, and the places, events and roads that meet its large
    grids. ``rivers``: lines or polygons (WGS84) that cut blocks besides the roads (the
    database holds no water layer; see ``read_rivers``).
    """
    if weight not in (None, "events"):
        msg = f"weight {weight!r}: expected events (or none)"
        raise InvalidInput(msg)
    chosen = large_grids_in(conn, version, scope)
    grids = _grids(conn, version, chosen)
    points, residents, households = _population(conn, version, chosen)
    if len(points) == 0 and not _has_population(conn, version):
        msg = (
            f"dataset version {version} has no population layer: load one "
            "(`geoservice etl population FILE`) before designing grids"
        )
        raise InvalidInput(msg)
    counts = households if band.measure == "households" else residents
    events = _events(conn, version, chosen) if weight == "events" else np.empty((0, 2))
    lines = _road_lines(conn, version, chosen)
    roads = Roads(lines)
    cuts = Cuts([*lines, *_outlines(rivers)])
    measure = Sizes(points, counts, residents, events)
    by_parent: dict[str, list[tuple[str, str, int | None, MultiPolygon]]] = {}
    for code, name, parent, population, geom in grids:
        by_parent.setdefault(parent, []).append((code, name, population, geom))
    plans = []
    proposed: list[Grid] = []
    for parent in sorted(by_parent):
        geoms = [geom for *_, geom in by_parent[parent]]
        sizes, _ = measure.of_many(geoms)
        members = [
            Grid(code, name, parent, geom, int(size), population)
            for (code, name, population, geom), size in zip(by_parent[parent], sizes, strict=True)
        ]
        plan = plan_large_grid(parent, members, band, keep_fitting, measure, roads, cuts)
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

    def of_many(self, geometries: Sequence[BaseGeometry]) -> tuple[np.ndarray, np.ndarray]:
        """(sizes, residents) of the places inside each of ``geometries``, in one query."""
        n = len(geometries)
        if n == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        which, inside = self.tree.query(np.asarray(geometries, dtype=object), "contains")
        sizes = np.bincount(which, self.counts[inside], minlength=n).astype(np.int64)
        people = np.bincount(which, self.residents[inside], minlength=n).astype(np.int64)
        if self.event_tree is not None:
            hit, _ = self.event_tree.query(np.asarray(geometries, dtype=object), "contains")
            sizes += np.bincount(hit, minlength=n)
        return sizes, people


class Cuts:
    """The lines that cut blocks (roads of ``ROAD_CLASSES``, rivers), WGS84."""

    def __init__(self, lines: Sequence[BaseGeometry]) -> None:
        self.lines = np.asarray(lines, dtype=object).reshape(-1)
        self.tree = shapely.STRtree(self.lines)

    def near(self, area: BaseGeometry) -> np.ndarray:
        return self.lines[self.tree.query(area, predicate="intersects")]


def _outlines(rivers: Iterable[BaseGeometry]) -> list[BaseGeometry]:
    """Rivers as lines: polygons (water areas) by their outline."""
    out: list[BaseGeometry] = []
    for geometry in rivers:
        for part in shapely.get_parts(geometry):
            if isinstance(part, Polygon):
                out.extend(shapely.get_parts(part.boundary))
            elif part.geom_type in ("LineString", "LinearRing") and not part.is_empty:
                out.append(LineString(part.coords))
    return out


def plan_large_grid(
    parent: str,
    members: list[Grid],
    band: Band,
    keep_fitting: bool,
    measure: Sizes,
    roads: Roads,
    cuts: Cuts | None = None,
) -> LargeGridPlan:
    """The plan of one large grid: ``members`` are its grids; with ``cuts``, redrawn grids
    are grouped from blocks (falling back to the chord split of whole grids when the
    blocks would not give an exact coverage), without, by the chord split alone."""
    kept = [g for g in members if keep_fitting and band.low <= g.size <= band.high]
    kept_codes = {g.code for g in kept}
    redrawn = [g for g in members if g.code not in kept_codes]
    pieces: list[Piece] | None = None
    reasons: dict[int, str] = {}
    if cuts is not None and redrawn:
        pieces = _from_blocks(redrawn, band, measure, roads, cuts, reasons)
        if pieces is not None and not _exact(redrawn, pieces):
            pieces, reasons = None, {}
    if pieces is None:
        pieces = []
        for grid in redrawn:
            for part in grid.geometry.geoms:  # each part is its own piece: grids are contiguous
                size, residents = measure.of(part)
                pieces.append(Piece(part, size, residents, {grid.code}))
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


def _exact(redrawn: list[Grid], pieces: list[Piece]) -> bool:
    """Do ``pieces`` cover exactly the area of ``redrawn``, each one polygon, with no vertex
    on its edge that the old grids lacked (so every neighbour outside still matches)?"""
    geoms = np.array([p.geometry for p in pieces], dtype=object)
    if not all(isinstance(g, Polygon) for g in geoms) or not shapely.coverage_is_valid(geoms):
        return False
    old = [g.geometry for g in redrawn]
    area = shapely.coverage_union_all(old)
    if abs(sum(shapely.area(geoms)) - area.area) > 1e-9 * max(area.area, 1e-12):
        return False
    if shapely.area(shapely.symmetric_difference(shapely.coverage_union_all(geoms), area)) > (
        1e-9 * area.area
    ):
        return False
    vertices = {tuple(xy) for xy in shapely.get_coordinates(old)}
    coords = np.unique(shapely.get_coordinates(geoms), axis=0)
    on_edge = shapely.dwithin(shapely.points(coords), area.boundary, 1e-9)
    return all(tuple(xy) in vertices for xy in coords[on_edge])


def blocks_of(area: Polygon | MultiPolygon, cuts: Cuts) -> list[Polygon] | None:
    """The blocks ``cuts`` cut out of ``area`` (module docstring, step 1), slivers merged;
    None when polygonizing does not give back ``area`` exactly."""
    edge = area.boundary
    corners = np.unique(shapely.get_coordinates(edge), axis=0)
    lines = cuts.near(area)
    parts = shapely.get_parts(shapely.intersection(lines, area)) if len(lines) else []
    parts = [p for p in parts if p.geom_type == "LineString" and p.length > 0]
    kept: list[LineString] = []
    if parts:
        shapely.prepare(area)
        along = shapely.covered_by(parts, shapely.buffer(edge, 1e-7))  # a road on the edge
        corners_m = np.column_stack(to_metric(corners[:, 0], corners[:, 1]))
        for part, on_edge in zip(parts, along, strict=True):
            if on_edge:
                continue
            line = _led_to_corners(part, edge, corners, corners_m)
            if line is not None:
                kept.append(line)
    if not kept:
        return [p for p in shapely.get_parts(area)]
    noded = shapely.unary_union(np.array([edge, *kept], dtype=object))
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))
    faces = faces[shapely.contains(area, shapely.point_on_surface(faces))]
    if abs(float(shapely.area(faces).sum()) - area.area) > 1e-9 * area.area:
        return None
    return _without_slivers(list(faces))


def _led_to_corners(
    part: LineString, edge: BaseGeometry, corners: np.ndarray, corners_m: np.ndarray
) -> LineString | None:
    """``part`` (a cut clipped to the area) with each end on the edge moved to the edge's
    nearest vertex within ``SNAP_M``; None when an end is farther, or the moved line would
    touch the edge anywhere else."""
    coords = np.array(part.coords)
    ends = shapely.points(coords[[0, -1]])
    on_edge = shapely.dwithin(ends, edge, 1e-9)
    if not on_edge.any():
        return None if shapely.intersects(part, edge) else part
    targets = []
    for k, index in ((0, 0), (1, -1)):
        if not on_edge[k]:
            continue
        x, y = to_metric(coords[[index], 0], coords[[index], 1])
        distance = np.hypot(corners_m[:, 0] - x[0], corners_m[:, 1] - y[0])
        nearest = int(np.argmin(distance))
        if distance[nearest] > SNAP_M:
            return None
        coords[index] = corners[nearest]
        targets.append(tuple(corners[nearest]))
    if len(targets) == 2 and targets[0] == targets[1]:
        return None
    line = LineString(coords)
    if not line.is_valid or line.length == 0:
        return None
    touching = shapely.get_coordinates(shapely.intersection(line, edge))
    if len(touching) != len(targets) or {tuple(xy) for xy in touching} != set(targets):
        return None
    return line


def _without_slivers(faces: list[Polygon]) -> list[Polygon]:
    """``faces`` with each sliver (``SLIVER_M2``, ``SLIVER_WIDTH_M``) merged into the
    neighbour it shares the longest edge with, smallest first."""
    metric = [_metric(f) for f in faces]
    areas = np.array([m.area for m in metric])
    widths = np.array([2 * m.area / max(m.length, 1e-9) for m in metric])
    slivers = np.flatnonzero((areas < SLIVER_M2) | (widths < SLIVER_WIDTH_M))
    if len(slivers) == 0 or len(faces) == 1:
        return faces
    group = list(range(len(faces)))

    def root(i: int) -> int:
        while group[i] != i:
            group[i] = group[group[i]]
            i = group[i]
        return i

    tree = shapely.STRtree(faces)
    for i in sorted((int(k) for k in slivers), key=lambda k: areas[k]):
        best, best_length = None, 0.0
        for j in tree.query(faces[i], predicate="intersects"):
            if root(int(j)) == root(int(i)):
                continue
            length = shapely.length(shapely.intersection(faces[i].boundary, faces[j].boundary))
            if length > best_length:
                best, best_length = int(j), float(length)
        if best is not None:
            group[root(int(i))] = root(best)
    members: dict[int, list[Polygon]] = {}
    for i, face in enumerate(faces):
        members.setdefault(root(i), []).append(face)
    out = []
    for parts in members.values():
        merged = parts[0] if len(parts) == 1 else shapely.coverage_union_all(parts)
        out.extend(shapely.get_parts(merged))
    return out


def _from_blocks(
    redrawn: list[Grid], band: Band, measure: Sizes, roads: Roads, cuts: Cuts, reasons: dict
) -> list[Piece] | None:
    """The redrawn grids of a large grid grouped from its blocks (steps 1–3), or None."""
    area = shapely.coverage_union_all([g.geometry for g in redrawn])
    blocks = blocks_of(area, cuts)
    if blocks is None:
        return None
    sizes, people = measure.of_many(blocks)
    # Step 2: a block over the ceiling is cut by chords between its own vertices.
    stones: list[Piece] = []
    whole: set[int] = set()
    for block, size, residents in zip(blocks, sizes, people, strict=True):
        piece = Piece(block, int(size), int(residents))
        if size <= band.high:
            stones.append(piece)
            continue
        unsplit: dict[int, str] = {}
        parts = _split_all([piece], band, measure, roads, unsplit)
        for part in parts:
            if id(part) in unsplit:
                whole.add(len(stones))
            stones.append(part)
    geoms = np.array([s.geometry for s in stones], dtype=object)
    tree = shapely.STRtree(geoms)
    left, right = tree.query(geoms, predicate="intersects")
    pair = left < right
    left, right = left[pair], right[pair]
    shares_edge = shapely.relate_pattern(geoms[left], geoms[right], "****1****")
    neighbours: list[list[int]] = [[] for _ in stones]
    for i, j in zip(left[shares_edge], right[shares_edge], strict=True):
        neighbours[int(i)].append(int(j))
        neighbours[int(j)].append(int(i))
    centres = shapely.get_coordinates(shapely.centroid(geoms))
    xy = np.column_stack(to_metric(centres[:, 0], centres[:, 1]))
    weights = np.array([s.size for s in stones], dtype=np.int64)
    groups = group_blocks(weights, xy, neighbours, band)
    old = shapely.STRtree([g.geometry for g in redrawn])
    pieces = []
    for members in groups:
        parts = [stones[i].geometry for i in members]
        geometry = parts[0] if len(parts) == 1 else shapely.coverage_union_all(parts)
        size, residents = measure.of(geometry)
        origins = {
            redrawn[int(k)].code
            for k in old.query(geometry, predicate="intersects")
            if shapely.area(shapely.intersection(redrawn[int(k)].geometry, geometry)) > 0
        }
        piece = Piece(geometry, size, residents, origins)
        if len(members) == 1 and members[0] in whole:
            reasons[id(piece)] = (
                f"one block of {size} {band.measure}, larger than the ceiling, and no cut "
                "between its vertices divides it"
            )
        elif size > band.high and size < 2 * band.low:
            reasons[id(piece)] = (
                f"over the ceiling: its blocks hold {size} {band.measure}, too many for one "
                f"grid and too few for two (under twice the floor, {2 * band.low})"
            )
        elif size > band.high:
            reasons[id(piece)] = (
                f"over the ceiling: no division of its {len(members)} blocks "
                "within the band was found"
            )
        pieces.append(piece)
    return pieces


def group_blocks(
    sizes: np.ndarray, xy: np.ndarray, neighbours: Sequence[Sequence[int]], band: Band
) -> list[list[int]]:
    """Blocks (their sizes, centres in metres, and which share an edge) grouped into
    contiguous regions sized for the band (module docstring, step 3): every block in
    exactly one region, each region connected through shared edges."""
    n = len(sizes)
    seen = np.zeros(n, dtype=bool)
    out: list[list[int]] = []
    for start in range(n):
        if seen[start]:
            continue
        component = _connected([start], neighbours, None)
        seen[component] = True
        regions = _bisect(component, sizes, xy, neighbours, band, depth=0)
        out.extend(_rebalanced(regions, sizes, neighbours, band))
    return out


def _miss(size: int, band: Band) -> int:
    """How far ``size`` lies outside the band."""
    return max(band.low - size, 0) + max(size - band.high, 0)


def _rebalanced(
    regions: list[list[int]], sizes: np.ndarray, neighbours: Sequence[Sequence[int]], band: Band
) -> list[list[int]]:
    """``regions`` with blocks on their edges moved to a neighbouring region while that
    brings a region outside the band closer to it and leaves no other outside (each move
    lowers the total miss; both regions stay contiguous)."""
    if len(regions) < 2:
        return regions
    label = {i: r for r, members in enumerate(regions) for i in members}
    members = [set(m) for m in regions]
    totals = [int(sizes[m].sum()) for m in regions]
    for _ in range(200):  # moves; each lowers the total miss, so this ends
        moved = False
        for r in sorted(range(len(members)), key=lambda k: -_miss(totals[k], band)):
            if _miss(totals[r], band) == 0:
                break
            move = _best_move(r, members, totals, label, sizes, neighbours, band)
            if move is None:
                continue
            block, source, target = move
            members[source].discard(block)
            members[target].add(block)
            totals[source] -= int(sizes[block])
            totals[target] += int(sizes[block])
            label[block] = target
            moved = True
            break
        if not moved:
            break
    return [sorted(m) for m in members if m]


def _best_move(
    r: int,
    members: list[set[int]],
    totals: list[int],
    label: dict[int, int],
    sizes: np.ndarray,
    neighbours: Sequence[Sequence[int]],
    band: Band,
) -> tuple[int, int, int] | None:
    """The move of one edge block into or out of region ``r`` that lowers the two
    regions' miss most, or None."""
    best: tuple[int, int, int, int] | None = None
    over = totals[r] > band.high
    for i in members[r] if over else {j for k in members[r] for j in neighbours[k]}:
        source = label[i]
        if source != r and over:
            continue
        if source == r and not over:
            continue
        targets = {label[j] for j in neighbours[i]} - {source}
        if over:
            candidates = [(i, source, t) for t in targets]
        else:
            candidates = [(i, source, r)] if r in targets else []
        for block, a, b in candidates:
            if len(members[a]) == 1:
                continue
            size = int(sizes[block])
            before = _miss(totals[a], band) + _miss(totals[b], band)
            after = _miss(totals[a] - size, band) + _miss(totals[b] + size, band)
            if after >= before:
                continue
            rest = members[a] - {block}
            if len(_connected([min(rest)], neighbours, rest)) != len(rest):
                continue
            if best is None or after - before < best[0]:
                best = (after - before, block, a, b)
    return None if best is None else best[1:]


def _connected(
    starts: Sequence[int], neighbours: Sequence[Sequence[int]], within: set[int] | None
) -> list[int]:
    found = set(starts)
    todo = list(starts)
    while todo:
        i = todo.pop()
        for j in neighbours[i]:
            if j not in found and (within is None or j in within):
                found.add(j)
                todo.append(j)
    return sorted(found)


def regions_for(total: int, band: Band) -> int:
    """How many grids a contiguous area of ``total`` should become: the count nearest
    ``total`` over the band's middle among those the floor and the ceiling allow (when no
    count fits both, the one that misses the band by the smaller share)."""
    if total <= band.high:
        return 1
    fewest, most = math.ceil(total / band.high), max(1, total // band.low)
    if fewest <= most:
        return min(max(round(2 * total / (band.low + band.high)), fewest), most)

    def miss(p: int) -> float:
        each = total / p
        return max(each - band.high, 0) / band.high + max(band.low - each, 0) / band.low

    return min((most, fewest), key=miss)


def _bisect(
    members: list[int],
    sizes: np.ndarray,
    xy: np.ndarray,
    neighbours: Sequence[Sequence[int]],
    band: Band,
    depth: int,
) -> list[list[int]]:
    total = int(sizes[members].sum())
    p = regions_for(total, band)
    if p == 1 or len(members) == 1 or depth > 64:
        return [members]
    inside = set(members)
    span = xy[members].max(axis=0) - xy[members].min(axis=0)
    axis = int(np.argmax(span))
    target = total * (p // 2) / p
    seed = min(members, key=lambda i: (xy[i, axis], i))
    heap = [(xy[seed, axis], seed)]
    queued = {seed}
    taken: list[int] = []
    held = 0
    while heap:
        _, i = heapq.heappop(heap)
        if taken and held + sizes[i] > target:
            if held + sizes[i] - target < target - held:
                taken.append(i)
                held += int(sizes[i])
            break
        taken.append(i)
        held += int(sizes[i])
        for j in neighbours[i]:
            if j in inside and j not in queued:
                queued.add(j)
                heapq.heappush(heap, (xy[j, axis], j))
    rest = inside - set(taken)
    if not rest:
        return [members]
    # The sweep may cut pieces off: all but the largest join the taken side.
    pieces = []
    left = set(rest)
    while left:
        piece = _connected([min(left)], neighbours, left)
        left -= set(piece)
        pieces.append(piece)
    pieces.sort(key=lambda c: (-int(sizes[c].sum()), -len(c), c[0]))
    first = sorted(set(taken).union(*pieces[1:]))
    second = pieces[0]
    return _bisect(first, sizes, xy, neighbours, band, depth + 1) + _bisect(
        second, sizes, xy, neighbours, band, depth + 1
    )


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


SCOPE = (
    "(SELECT geom FROM geoservice.boundary WHERE snapshot_id = "
    "geoservice.snapshot_of(:v, 'large_grid') AND code = ANY(:scope)) l"
)
"""The large grids in scope, to join rows whose ``geom`` meets one (GiST index scans)."""


def _grids(
    conn: Connection, version: int, parents: Sequence[str], *, outside: bool = False
) -> list[tuple[str, str, str, int | None, MultiPolygon]]:
    """The grids of the large grids ``parents`` (``outside``: of every other one)."""
    rows = conn.execute(
        sa.text(
            "SELECT code, name, parent_code, population, ST_AsBinary(geom) "
            "FROM geoservice.boundary "
            "WHERE snapshot_id = geoservice.snapshot_of(:v, 'grid') "
            f"AND {'NOT ' if outside else ''}parent_code = ANY(:scope) ORDER BY code"
        ),
        {"v": version, "scope": list(parents)},
    ).all()
    return [(r[0], r[1], r[2], r[3], shapely.from_wkb(bytes(r[4]))) for r in rows]


def _population(
    conn: Connection, version: int, parents: Sequence[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rows = conn.execute(
        sa.text(
            "SELECT ST_X(p), ST_Y(p), residents, households FROM ("
            "SELECT DISTINCT ON (x.code) ST_PointOnSurface(x.geom) AS p, x.residents, "
            f"x.households FROM {SCOPE} JOIN geoservice.population x ON ST_Intersects(l.geom, "
            "x.geom) WHERE x.snapshot_id = geoservice.snapshot_of(:v, 'population')) q"
        ),
        {"v": version, "scope": list(parents)},
    ).all()
    table = np.array(rows, dtype=float).reshape(-1, 4)
    return table[:, :2], table[:, 2].astype(np.int64), table[:, 3].astype(np.int64)


def _has_population(conn: Connection, version: int) -> bool:
    return bool(
        conn.execute(
            sa.text(
                "SELECT EXISTS (SELECT 1 FROM geoservice.population "
                "WHERE snapshot_id = geoservice.snapshot_of(:v, 'population'))"
            ),
            {"v": version},
        ).scalar()
    )


def _events(conn: Connection, version: int, parents: Sequence[str]) -> np.ndarray:
    rows = conn.execute(
        sa.text(
            "SELECT DISTINCT ON (x.id) ST_X(x.geom), ST_Y(x.geom) "
            f"FROM {SCOPE} JOIN geoservice.event x ON ST_Intersects(l.geom, x.geom)"
        ),
        {"v": version, "scope": list(parents)},
    ).all()
    return np.array(rows, dtype=float).reshape(-1, 2)


def _road_lines(conn: Connection, version: int, parents: Sequence[str]) -> list[BaseGeometry]:
    rows = conn.execute(
        sa.text(
            "SELECT DISTINCT ON (x.id) ST_AsBinary(x.geom) "
            f"FROM {SCOPE} JOIN geoservice.road_edge x ON ST_Intersects(l.geom, x.geom) "
            "WHERE x.snapshot_id = geoservice.snapshot_of(:v, 'roads') "
            "AND x.highway = ANY(:classes)"
        ),
        {"v": version, "classes": list(ROAD_CLASSES), "scope": list(parents)},
    ).scalars()
    return list(shapely.from_wkb([bytes(w) for w in rows]))


def read_rivers(path: Path) -> list[BaseGeometry]:
    """Rivers from a file, WGS84: an OSM file's ways tagged ``waterway`` in ``WATERWAYS``
    or ``natural=water`` (as lines: their outline cuts), or every line and polygon of a
    file GDAL reads (reprojected from its CRS)."""
    if not path.is_file():
        msg = f"--rivers {path}: no such file"
        raise InvalidInput(msg)
    name = path.name.lower()
    if name.endswith((".osm", ".osm.bz2", ".osm.pbf", ".pbf")):
        import osmium

        lines: list[BaseGeometry] = []

        class Handler(osmium.SimpleHandler):
            def way(self, w: Any) -> None:
                tags = w.tags
                if tags.get("waterway") in WATERWAYS or tags.get("natural") == "water":
                    coords = [(n.lon, n.lat) for n in w.nodes if n.location.valid()]
                    if len(coords) >= 2:
                        lines.append(LineString(coords))

        Handler().apply_file(str(path), locations=True)
        return lines
    try:
        frame = pyogrio.read_dataframe(path)
    except Exception as error:  # GDAL's errors name the file
        msg = f"--rivers {path}: {error}"
        raise InvalidInput(msg) from error
    if frame.crs is not None:
        frame = frame.to_crs(4326)
    geoms = [g for g in frame.geometry if g is not None and not g.is_empty]
    return [g for g in geoms if g.geom_type != "Point" and g.geom_type != "MultiPoint"]


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
    rest = [
        Grid(code, name, parent, geom, 0, population)
        for code, name, parent, population, geom in _grids(
            conn, proposal.version, [p.code for p in proposal.plans], outside=True
        )
    ]  # the grids of every other large grid, as stored
    layer = sorted([*rest, *proposal.grids], key=_code)
    grids = gpd.GeoDataFrame(
        {
            "code": [g.code for g in layer],
            "name": [g.name for g in layer],
            "parent_code": [g.parent_code for g in layer],
            "population": pd.array([g.population for g in layer], dtype="Int64"),
        },
        geometry=[g.geometry for g in layer],
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
