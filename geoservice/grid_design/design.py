"""Grid design: base grids of the right size that nest in their large grids, keep the
grids that already fit, and follow roads and rivers.

"按照规模适度、方便管理和相对稳定的原则" — moderate size, easy to manage, stable. For each
large grid in scope, every base grid is sized by the population layer (households or
residents of the places inside it; with ``Weight.EVENTS`` each grid event in the register
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

Here: ``propose`` and each large grid's plan. Step 1 lives in ``blocks``, steps 2 and 4 in
``pieces``, step 3 in ``partition``, codes and names in ``naming``; ``scope`` reads the rows.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry
from sqlalchemy.engine import Connection

from geoservice.coverage import Weight
from geoservice.crs import to_metric
from geoservice.errors import InvalidInput
from geoservice.grid_design.blocks import Cuts, blocks_of
from geoservice.grid_design.measure import Roads, Sizes
from geoservice.grid_design.naming import named
from geoservice.grid_design.partition import group_blocks
from geoservice.grid_design.pieces import Piece, merge_all, split_all
from geoservice.grid_design.proposal import Grid, LargeGridPlan, Outside, Proposal
from geoservice.grid_design.rivers import outlines
from geoservice.grid_design.scope import (
    Band,
    Scope,
    has_population,
    large_grids_in,
    read_events,
    read_grids,
    read_places,
    read_road_lines,
)
from geoservice.store import VersionReader


def propose(
    conn: Connection,
    version: int,
    scope: Scope,
    band: Band,
    *,
    keep_fitting: bool = True,
    weight: Weight | None = None,
    rivers: Sequence[BaseGeometry] = (),
) -> Proposal:
    """The proposal for the large grids in ``scope`` at ``version``.

    Reads only the scope's grids, and the places, events and roads that meet its large
    grids. ``weight``: with ``Weight.EVENTS`` each grid event counts as one more of the
    band's measure (otherwise the population layer alone). ``rivers``: lines or polygons
    (WGS84) that cut blocks besides the roads (the database holds no water layer; see
    ``read_rivers``).
    """
    reader = VersionReader(conn, version)
    chosen = large_grids_in(reader, scope)
    grids = read_grids(reader, chosen)
    points, residents, households = read_places(reader, chosen)
    if len(points) == 0 and not has_population(reader):
        msg = (
            f"dataset version {version} has no population layer: load one "
            "(`geoservice etl population FILE`) before designing grids"
        )
        raise InvalidInput(msg)
    counts = households if band.measure == "households" else residents
    events = read_events(reader, chosen) if weight == Weight.EVENTS else np.empty((0, 2))
    lines = read_road_lines(reader, chosen)
    roads = Roads(lines)
    cuts = Cuts([*lines, *outlines(rivers)])
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
    return Proposal(
        version, band, keep_fitting, weight, plans, sorted(proposed, key=lambda g: g.code)
    )


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
        pieces = split_all(pieces, band, measure, roads, reasons)
    pieces = merge_all(pieces, band, roads, reasons)
    after = named(parent, members, kept, pieces)
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


def _from_blocks(
    redrawn: list[Grid],
    band: Band,
    measure: Sizes,
    roads: Roads,
    cuts: Cuts,
    reasons: dict[int, str],
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
        parts = split_all([piece], band, measure, roads, unsplit)
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
