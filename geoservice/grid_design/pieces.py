"""Grids being redrawn (pieces): split along chords between their own vertices while over
the ceiling, merged while under the floor (``design``, steps 2 and 4)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
import shapely
from shapely.geometry import LineString, MultiPolygon, Polygon
from shapely.ops import split

from geoservice.grid_design.measure import Roads, Sizes, area_m2, length_m
from geoservice.grid_design.scope import Band

MAX_CHORD_VERTICES = 80
"""Vertices considered as chord ends (a ring with more is sampled evenly)."""


@dataclass
class Piece:
    """A grid being redrawn: its area, size and the old grids it covers."""

    geometry: Polygon | MultiPolygon
    size: int
    residents: int
    origins: set[str] = field(default_factory=set)


def split_all(
    pieces: list[Piece], band: Band, measure: Sizes, roads: Roads, reasons: dict[int, str]
) -> list[Piece]:
    """``pieces`` with each one over the ceiling split by chords until none is, or no
    chord divides it (its reason then kept in ``reasons`` by ``id``)."""
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
    scale = np.sqrt(area_m2(polygon))
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
        length = length_m(chord) / scale
        off_road = 1.0 - roads.share(chord)
        score = balance + 0.3 * off_road + 0.2 * length
        if best is None or score < best[0]:
            halves = [
                Piece(part, size, residents, set(piece.origins))
                for part, (size, residents) in zip(parts, sizes, strict=True)
            ]
            best = (score, halves)
    return None if best is None else best[1]


def merge_all(
    pieces: list[Piece], band: Band, roads: Roads, reasons: dict[int, str]
) -> list[Piece]:
    """``pieces`` with each one under the floor, smallest first, merged into the neighbour
    sharing an edge that gives the smallest result within the ceiling, preferring an edge
    that does not follow a road; one that cannot be keeps its reason in ``reasons`` by ``id``."""
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
            length = length_m(shared)
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
    return length_m(shapely.intersection(a.geometry.boundary, b.geometry.boundary)) > 0.01
