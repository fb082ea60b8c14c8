"""Origins placed on the network: each point snapped onto the nearest usable edge (not the
nearest node), at most ``SNAP_LIMIT_M`` away, the edge split at that fraction.

The nearest edge is found through a table of the segments by the square cells their boxes
meet (``SNAP_CELL_M``, then levels of cells ``SNAP_MAX_CELLS`` times wider), its distance
measured by GEOS; of equally near edges the one with the smallest index is taken. A line
origin (a patrol segment) is sampled every ``LINE_STEP_M`` and every sample is snapped: the
whole line is one origin, reached at time 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import shapely
from numpy.typing import NDArray

from geoservice.crs import from_metric, to_metric
from geoservice.errors import InvalidInput
from geoservice.network.geometry import edge_lines, metric_coords

if TYPE_CHECKING:
    from geoservice.network.graph import Network

SNAP_LIMIT_M = 500.0
"""An origin farther than this from every usable road is refused."""
LINE_STEP_M = 25.0
"""A line origin is sampled at this spacing (and at both ends)."""
SNAP_CELL_M = 100.0
"""Side of the finest square cells of the snapping table (each segment listed in every
cell its bounding box meets)."""
SNAP_MAX_CELLS = 16
"""A snap looks at most this many cells around a point on one level of the snapping table
before it goes on to the next, whose cells are this many times wider."""
SNAP_CHUNK = 1 << 16
"""Cells looked up at once by one snap (points times cells), which bounds its scratch
memory."""
SNAP_TOLERANCE_M = 1e-6
"""Margin between the snapping table's distances and GEOS's (floating point), so that every
edge GEOS could find nearest is measured by GEOS."""

Array = NDArray[np.float64]


class NoRoadNearby(InvalidInput):
    """An origin is too far from the road network to be routed from."""

    title = "No road nearby"


@dataclass(frozen=True)
class Snaps:
    """Origins placed on the network: each row a point on an edge, labelled by origin."""

    origin: NDArray[np.int64]  # which origin (0..n_origins-1) the row belongs to
    edge: NDArray[np.int64]
    fraction: Array  # along the edge, source -> target
    lon: Array  # the snapped point
    lat: Array
    distance_m: Array  # from the input point to the snapped point

    @property
    def n_origins(self) -> int:
        return int(self.origin.max()) + 1 if len(self.origin) else 0


class SnapTable(NamedTuple):
    """The segments by square cell, on levels of cells ``SNAP_CELL_M`` wide and each next
    ``SNAP_MAX_CELLS`` times wider (until one level's cells cover the network a few times
    over): each segment listed in every cell its bounding box meets, as sorted ``key``s
    (``base + row * nx + column``) and ``coord``, the index in ``metric_xy`` of the
    segment's first point, with each level's ``(x0, y0, nx, ny, cell, base)``. Geometry
    only (the roads' own direction): a reversed network shares it."""

    key: NDArray[np.int64]
    coord: NDArray[np.int64]
    levels: Array

    @classmethod
    def of(cls, metric_xy: Array, line_at: NDArray[np.int64]) -> SnapTable:
        """The table of the edges ``metric_xy[line_at[e]:line_at[e + 1]]``."""
        xy = np.asarray(metric_xy)
        owner = np.repeat(np.arange(len(line_at) - 1), np.diff(line_at))
        j = np.flatnonzero(owner[1:] == owner[:-1])
        low, high = np.minimum(xy[j], xy[j + 1]), np.maximum(xy[j], xy[j + 1])
        corner = xy.min(axis=0) if len(xy) else np.zeros(2)
        keys, coords, levels = [], [], []
        cell, base = SNAP_CELL_M, 0
        while True:
            c0 = np.floor((low - corner) / cell).astype(np.int64)
            c1 = np.floor((high - corner) / cell).astype(np.int64)
            nx, ny = int(c1[:, 0].max(initial=0)) + 1, int(c1[:, 1].max(initial=0)) + 1
            wide = c1[:, 0] - c0[:, 0] + 1
            count = wide * (c1[:, 1] - c0[:, 1] + 1)
            seg = np.repeat(np.arange(len(j)), count)
            k = np.arange(len(seg)) - np.repeat(np.cumsum(count) - count, count)
            key = base + (c0[seg, 1] + k // wide[seg]) * nx + c0[seg, 0] + k % wide[seg]
            order = np.argsort(key, kind="stable")
            keys.append(key[order])
            coords.append(j[seg[order]].astype(np.int64))
            levels.append([corner[0], corner[1], nx, ny, cell, base])
            if max(nx, ny) <= 4:
                break
            cell, base = cell * SNAP_MAX_CELLS, base + nx * ny
        return cls(np.concatenate(keys), np.concatenate(coords), np.array(levels, dtype=float))


def snap_points(
    network: Network,
    lon: Sequence[float] | Array,
    lat: Sequence[float] | Array,
    max_distance_m: float = SNAP_LIMIT_M,
    *,
    strict: bool = True,
) -> Snaps:
    """Each point onto the nearest edge of ``network`` its profile can use; one origin per
    point (origin ``i`` is point ``i``).

    Raises ``NoRoadNearby`` naming the first point farther than ``max_distance_m``;
    with ``strict=False`` such points are left out instead.
    """
    lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    snaps = _snap(network, lon, lat, np.arange(len(lon)), max_distance_m)
    missing = np.setdiff1d(np.arange(len(lon)), snaps.origin)
    if len(missing) and strict:
        i = int(missing[0])
        msg = (
            f"point ({lon[i]:.6f}, {lat[i]:.6f}) is more than {max_distance_m:g} m from any "
            f"road the {network.profile} profile can use"
        )
        raise NoRoadNearby(msg)
    return snaps


def snap_lines(
    network: Network,
    lines: Sequence[shapely.LineString],
    max_distance_m: float = LINE_STEP_M * 4,
    names: Sequence[str] | None = None,
) -> Snaps:
    """Each WGS84 line is one origin: its samples every ``LINE_STEP_M`` that lie within
    ``max_distance_m`` of a road. A line with no such sample is refused (by its name)."""
    metric = shapely.transform(np.asarray(lines, dtype=object), metric_coords)
    samples, owners = [], []
    for k, line in enumerate(metric):
        steps = np.append(np.arange(0.0, line.length, LINE_STEP_M), line.length)
        samples.append(shapely.line_interpolate_point(line, steps))
        owners.append(np.full(len(steps), k))
    points = np.concatenate(samples)
    x, y = shapely.get_coordinates(points).T
    lon, lat = from_metric(x, y)
    snaps = _snap(network, lon, lat, np.concatenate(owners), max_distance_m)
    missing = np.setdiff1d(np.arange(len(metric)), snaps.origin)
    if len(missing):
        name = names[int(missing[0])] if names is not None else f"#{int(missing[0])}"
        msg = (
            f"line origin {name} runs nowhere within {max_distance_m:g} m of a "
            f"road the {network.profile} profile can use"
        )
        raise NoRoadNearby(msg)
    return snaps


def _snap(
    network: Network, lon: Array, lat: Array, origin: NDArray, max_distance_m: float
) -> Snaps:
    x, y = (np.asarray(v, dtype=float) for v in to_metric(lon, lat))
    points = shapely.points(x, y)
    hit, edge = _nearest(network, x, y, points, max_distance_m)
    lines = network.edge_lines(edge, metric=True)
    fraction = shapely.line_locate_point(lines, points[hit], normalized=True)
    on_line = shapely.line_interpolate_point(lines, fraction, normalized=True)
    sx, sy = shapely.get_coordinates(on_line).T
    slon, slat = from_metric(sx, sy)
    return Snaps(
        origin=np.asarray(origin)[hit].astype(np.int64),
        edge=edge.astype(np.int64),
        fraction=np.clip(fraction, 0.0, 1.0),
        lon=np.asarray(slon),
        lat=np.asarray(slat),
        distance_m=shapely.distance(points[hit], on_line),
    )


def _nearest(
    network: Network, x: Array, y: Array, points: NDArray[np.object_], max_distance_m: float
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """For each metric point (``x``, ``y``; ``points`` the same as shapely Points) with an
    edge within ``max_distance_m``: the point's index (ascending) and its nearest edge.

    Candidates come from the snapping table: squares of cells growing around each point,
    on the finest level first, until the nearest segment found is certainly the nearest
    of all (so every segment as near has been seen too) or none can be near enough; a
    point with no segment in its first cells goes on to the coarser level at once. The
    candidates' distances are then GEOS's, on the edges' lines in the roads' own
    direction; of equally near edges the smallest index wins."""
    levels = network.snap_table.levels
    best = np.full(len(x), np.inf)
    found: list[tuple[NDArray[np.int64], NDArray[np.int64], Array]] = []
    pending = np.flatnonzero(np.isfinite(x) & np.isfinite(y))
    for level, (x0, y0, nx_, ny_, cell, base) in enumerate(levels.tolist()):
        nx, ny, last = int(nx_), int(ny_), level == len(levels) - 1
        cx = np.floor((x[pending] - x0) / cell).astype(np.int64)
        cy = np.floor((y[pending] - y0) / cell).astype(np.int64)
        needed = int((max_distance_m + SNAP_TOLERANCE_M) // cell) + 1
        seen, width = -1, 0 if level == 0 else 1  # a finer level covered one cell
        coarser: list[NDArray[np.int64]] = []  # nothing near on this level's first cells
        while len(pending):
            dx, dy = np.meshgrid(np.arange(-width, width + 1), np.arange(-width, width + 1))
            ring = np.maximum(abs(dx), abs(dy)).ravel() > seen
            dx, dy = dx.ravel()[ring], dy.ravel()[ring]
            chunk = max(1, SNAP_CHUNK // len(dx))  # points looked up at once
            for at in range(0, len(pending), chunk):
                some = slice(at, at + chunk)
                found.append(
                    _near_segments(
                        network,
                        x,
                        y,
                        pending[some],
                        cx[some],
                        cy[some],
                        dx,
                        dy,
                        (nx, ny, int(base)),
                        max_distance_m,
                        best,
                    )
                )
            radius = width * cell
            done = (
                (best[pending] + SNAP_TOLERANCE_M <= radius)
                | (width >= needed)
                | ((cx - width <= 0) & (cx + width >= nx - 1))
                & ((cy - width <= 0) & (cy + width >= ny - 1))
            )
            empty = ~done & np.isinf(best[pending]) & (width >= 2) & (not last)
            coarser.append(pending[empty])
            keep = ~done & ~empty
            pending, cx, cy = pending[keep], cx[keep], cy[keep]
            if width >= SNAP_MAX_CELLS and not last:
                break  # on to the coarser level
            seen, width = width, min(max(1, 2 * width), needed)
        pending = np.sort(np.concatenate([pending, *coarser]))
    if not found:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    point, coord, distance = (np.concatenate(a) for a in zip(*found, strict=True))
    close = distance <= best[point] + SNAP_TOLERANCE_M
    n_edges = network.n_edges
    owner = np.searchsorted(network.line_at, coord[close], side="right") - 1
    pair = np.unique(point[close] * n_edges + owner)  # by point, then edge
    point, edge = pair // n_edges, pair % n_edges
    edges, which = np.unique(edge, return_inverse=True)
    lines = edge_lines(network.metric_xy, network.line_at, edges)  # the roads' own direction
    exact = shapely.distance(points[point], lines[which])
    nearest = np.full(len(x), np.inf)
    np.minimum.at(nearest, point, exact)
    keep = (exact == nearest[point]) & (exact <= max_distance_m)
    hit, first = np.unique(point[keep], return_index=True)
    return hit.astype(np.int64), edge[keep][first].astype(np.int64)


def _near_segments(
    network: Network,
    x: Array,
    y: Array,
    pending: NDArray[np.int64],
    cx: NDArray[np.int64],
    cy: NDArray[np.int64],
    dx: NDArray[np.int64],
    dy: NDArray[np.int64],
    level: tuple[int, int, int],
    max_distance_m: float,
    best: Array,
) -> tuple[NDArray[np.int64], NDArray[np.int64], Array]:
    """The segments listed in the cells (``cx + dx``, ``cy + dy``) of one level
    (``nx, ny, base``) of the snapping table around each ``pending`` point (whose cell
    is ``cx``, ``cy``) within ``max_distance_m`` of it and as near as the nearest found
    so far (``best``, per point, lowered here): the points, the segments' first
    coordinates and the distances (m, this table's own measure)."""
    keys, coords, _ = network.snap_table
    nx, ny, base = level
    at = np.repeat(np.arange(len(pending)), len(dx))
    qx, qy = cx[at] + np.tile(dx, len(pending)), cy[at] + np.tile(dy, len(pending))
    inside = (qx >= 0) & (qx < nx) & (qy >= 0) & (qy < ny)
    key = base + qy[inside] * nx + qx[inside]
    lo = np.searchsorted(keys, key, side="left")
    count = np.searchsorted(keys, key, side="right") - lo
    if count.sum() > SNAP_CHUNK * 16 and len(pending) > 1:  # coarse cells: fewer points
        half = len(pending) // 2
        parts = [
            _near_segments(
                network, x, y, pending[i], cx[i], cy[i], dx, dy, level, max_distance_m, best
            )
            for i in (slice(0, half), slice(half, None))
        ]
        return tuple(np.concatenate(a) for a in zip(*parts, strict=True))  # type: ignore[return-value]
    p = np.repeat(pending[at[inside]], count)
    j = coords[
        np.repeat(lo, count) + (np.arange(len(p)) - np.repeat(np.cumsum(count) - count, count))
    ]
    metric_xy = network.metric_xy
    d = _segment_distance_m(x[p], y[p], metric_xy[j], metric_xy[j + 1])
    near = d <= max_distance_m + SNAP_TOLERANCE_M
    p, j, d = p[near], j[near], d[near]
    np.minimum.at(best, p, d)
    close = d <= best[p] + SNAP_TOLERANCE_M  # the others can never be the nearest
    return p[close], j[close], d[close]


def _segment_distance_m(px: Array | float, py: Array | float, a: Array, b: Array) -> Array:
    """Distances (m) from points to segments ``a``-``b`` (metric), the way GEOS measures
    them (``Distance::pointToSegment``), up to floating point."""
    ax, ay, bx, by = a[:, 0], a[:, 1], b[:, 0], b[:, 1]
    ex, ey = bx - ax, by - ay
    squared = ex * ex + ey * ey
    with np.errstate(invalid="ignore", divide="ignore"):
        r = ((px - ax) * ex + (py - ay) * ey) / squared
        across = np.abs(((ay - py) * ex - (ax - px) * ey) / squared) * np.sqrt(squared)
    to_a = np.sqrt((px - ax) ** 2 + (py - ay) ** 2)
    to_b = np.sqrt((px - bx) ** 2 + (py - by) ** 2)
    return np.where((squared == 0) | (r <= 0), to_a, np.where(r >= 1, to_b, across))
