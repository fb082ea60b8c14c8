"""The nearest grid of points that no grid covers, exactly and vectorised.

The nearest point of a coverage to a point outside it lies on the coverage's outer
boundary (its outer rings and the rings of its holes). That boundary is made of the
*outer segments*: the ring segments that belong to one grid only (a shared edge appears
in both neighbours' rings, identically, since the coverage is valid). So the distance to
the nearest grid is the distance to the nearest outer segment, and only the grids along
the district's edge can be nearest.

A coarse table of square cells answers which segments can be nearest to any point of a
cell: those whose distance from the cell's centre is within the smallest such distance
plus the cell's diagonal (the triangle inequality, both ways), found with an STRtree.
A point is then measured against its cell's few candidates only; points beyond the table
against every outer segment. Distances use GEOS's point-to-segment formula, in the metric CRS.

Ties go to the smallest grid code (grids are numbered in code order): grids within
``TIE_M`` (1 µm) of the nearest count as equally near, so float noise between two ways of
measuring one edge never decides. When the nearest point is a vertex, every grid with that
vertex is as near: the smallest of them wins.
"""

from __future__ import annotations

import numpy as np
import shapely
from numpy.typing import NDArray

CELL_M = 500.0
"""Side of the coarse cells, metres."""
MARGIN_M = 20_000.0
"""The table reaches this far beyond the grids' extent; farther points are rare."""
CHUNK = 1 << 20
"""Point-segment pairs measured at once (bounds memory)."""
TIE_M = 1e-6
"""Distances this close to the nearest count as a tie (the smallest code wins)."""

Array = NDArray[np.float64]


def segment_distance(
    px: Array, py: Array, ax: Array, ay: Array, bx: Array, by: Array
) -> tuple[Array, NDArray[np.int8]]:
    """Distance from points to segments (GEOS's formula) and where the nearest point is:
    0 at ``a``, 1 at ``b``, -1 between."""
    dx, dy = bx - ax, by - ay
    length2 = dx * dx + dy * dy
    with np.errstate(invalid="ignore", divide="ignore"):
        r = ((px - ax) * dx + (py - ay) * dy) / length2
        s = ((ay - py) * dx - (ax - px) * dy) / length2
    at_a = ~(r > 0)  # also a zero-length segment
    at_b = ~at_a & (r >= 1)
    to_a = np.sqrt((px - ax) ** 2 + (py - ay) ** 2)
    to_b = np.sqrt((px - bx) ** 2 + (py - by) ** 2)
    distance = np.where(at_a, to_a, np.where(at_b, to_b, np.abs(s) * np.sqrt(length2)))
    where = np.where(at_a, 0, np.where(at_b, 1, -1)).astype(np.int8)
    return distance, where


class OuterEdges:
    """Outer segments of a coverage (metric polygons in code order) and a candidate table."""

    def __init__(self, metric_polygons: NDArray[np.object_]) -> None:
        rings = shapely.get_rings(shapely.get_parts(metric_polygons))
        part_owner = np.repeat(
            np.arange(len(metric_polygons)), shapely.get_num_geometries(metric_polygons)
        )
        ring_owner = np.repeat(
            part_owner, shapely.get_num_interior_rings(shapely.get_parts(metric_polygons)) + 1
        )
        xy, ring = shapely.get_coordinates(rings, return_index=True)
        same = ring[1:] == ring[:-1]
        a, b = xy[:-1][same], xy[1:][same]
        grid = ring_owner[ring[:-1][same]]
        # a segment is outer when it appears once, whichever way it runs
        forward = (a[:, 0] < b[:, 0]) | ((a[:, 0] == b[:, 0]) & (a[:, 1] <= b[:, 1]))
        key = np.where(forward[:, None], np.hstack([a, b]), np.hstack([b, a]))
        _, inverse, counts = np.unique(key, axis=0, return_inverse=True, return_counts=True)
        outer = counts[inverse.ravel()] == 1
        self.a, self.b, self.grid = a[outer], b[outer], grid[outer].astype(np.int64)
        # the smallest grid having each end as a vertex (ties at a vertex)
        vertices, vertex_owner = xy, ring_owner[ring]
        order = np.lexsort((vertex_owner, vertices[:, 1], vertices[:, 0]))
        sorted_xy = vertices[order]
        first = np.ones(len(order), dtype=bool)
        first[1:] = np.any(sorted_xy[1:] != sorted_xy[:-1], axis=1)
        unique_xy = sorted_xy[first]
        smallest = vertex_owner[order][first]
        self.a_grid = smallest[_row_lookup(unique_xy, self.a)]
        self.b_grid = smallest[_row_lookup(unique_xy, self.b)]
        self._build_table()

    FIELDS = ("a", "b", "grid", "a_grid", "b_grid", "cand", "cand_start")

    def to_arrays(self) -> dict[str, NDArray]:
        """The segments and the candidate table as named arrays (``from_arrays`` reads them)."""
        return {
            **{name: getattr(self, name) for name in self.FIELDS},
            "table": np.array([self.x0, self.y0, self.nx, self.ny], dtype=np.float64),
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, NDArray]) -> OuterEdges:
        """The edges ``to_arrays`` gave (arrays used as they are, mapped or not)."""
        edges = cls.__new__(cls)
        for name in cls.FIELDS:
            setattr(edges, name, arrays[name])
        x0, y0, nx, ny = (float(v) for v in arrays["table"])
        edges.x0, edges.y0, edges.nx, edges.ny = x0, y0, int(nx), int(ny)
        return edges

    def _build_table(self) -> None:
        lo = np.minimum(self.a, self.b).min(axis=0) - MARGIN_M
        hi = np.maximum(self.a, self.b).max(axis=0) + MARGIN_M
        self.x0, self.y0 = lo
        self.nx, self.ny = np.ceil((hi - lo) / CELL_M).astype(int)
        cx = self.x0 + (np.arange(self.nx) + 0.5) * CELL_M
        cy = self.y0 + (np.arange(self.ny) + 0.5) * CELL_M
        gx, gy = np.meshgrid(cx, cy)
        centres = np.column_stack([gx.ravel(), gy.ravel()])
        reach = CELL_M * np.sqrt(2.0)  # twice the half diagonal
        # each cell lists the segments within (its nearest segment's distance + reach) of its
        # centre, found with an STRtree (work grows with cells, not cells x segments); the
        # slack covers rounding between GEOS's distance and ``segment_distance``
        tree = shapely.STRtree(shapely.linestrings(np.stack([self.a, self.b], axis=1)))
        starts, lists = [0], []
        for k in range(0, len(centres), CHUNK // 4):
            points = shapely.points(centres[k : k + CHUNK // 4])
            (point, _), nearest = tree.query_nearest(points, return_distance=True)
            limit = np.empty(len(points))
            limit[point] = nearest + reach + 1e-6
            cell, segment = tree.query(points, predicate="dwithin", distance=limit)
            order = np.lexsort((segment, cell))
            lists.append(segment[order])
            counts = np.bincount(cell, minlength=len(points))
            starts.extend((np.cumsum(counts) + starts[-1]).tolist())
        self.cand = np.concatenate(lists).astype(np.int32)  # halves the state; < 2**31 segments
        self.cand_start = np.asarray(starts, dtype=np.int32)

    def nearest(self, x: Array, y: Array) -> tuple[NDArray[np.int64], Array]:
        """Index of the nearest grid and the distance in metres, for metric points."""
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        cx = np.floor((x - self.x0) / CELL_M).astype(np.int64)
        cy = np.floor((y - self.y0) / CELL_M).astype(np.int64)
        in_table = (cx >= 0) & (cx < self.nx) & (cy >= 0) & (cy < self.ny)
        cell = np.where(in_table, cy * self.nx + cx, 0)
        starts = np.where(in_table, self.cand_start[cell], -1)
        counts = np.where(in_table, self.cand_start[cell + 1] - self.cand_start[cell], len(self.a))
        grid = np.empty(len(x), dtype=np.int64)
        distance = np.empty(len(x))
        done = np.concatenate([[0], np.cumsum(counts)])
        lo = 0
        while lo < len(x):  # chunks of about CHUNK pairs (far points pair with every segment)
            hi = max(lo + 1, int(np.searchsorted(done, done[lo] + CHUNK, side="right")) - 1)
            part = slice(lo, hi)
            grid[part], distance[part] = self._measure(x[part], y[part], starts[part], counts[part])
            lo = hi
        return grid, distance

    def _measure(self, x, y, starts, counts) -> tuple[NDArray[np.int64], Array]:
        n = len(x)
        owner = np.repeat(np.arange(n), counts)
        offsets = np.arange(len(owner)) - np.repeat(np.cumsum(counts) - counts, counts)
        first_candidate = np.repeat(starts, counts)
        listed = first_candidate >= 0
        segment = np.where(
            listed, self.cand[np.where(listed, first_candidate + offsets, 0)], offsets
        )
        a, b = self.a[segment], self.b[segment]
        distance, where = segment_distance(x[owner], y[owner], a[:, 0], a[:, 1], b[:, 0], b[:, 1])
        grid = np.select(
            [where == 0, where == 1],
            [self.a_grid[segment], self.b_grid[segment]],
            self.grid[segment],
        )
        # per point (its pairs are contiguous): the smallest distance, then the smallest grid
        first = np.cumsum(counts) - counts
        least = np.minimum.reduceat(distance, first)
        tied = distance <= np.repeat(least, counts) + TIE_M
        best = np.minimum.reduceat(np.where(tied, grid, np.iinfo(np.int64).max), first)
        return best, least


def _row_lookup(table: Array, rows: Array) -> NDArray[np.int64]:
    """Position of each of ``rows`` in ``table`` (sorted by x then y; every row present)."""
    view = np.dtype([("x", np.float64), ("y", np.float64)])
    keys = np.ascontiguousarray(table).view(view).ravel()
    wanted = np.ascontiguousarray(rows).view(view).ravel()
    return np.searchsorted(keys, wanted)
