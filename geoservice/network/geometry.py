"""Edge geometry as coordinate arrays — WGS84 and EPSG:4547, one edge's after another —
never one shapely object per edge: mapped from the state directory they cost a process
nothing of its own. Lines are built from them for the edges an answer draws or measures;
the straight segments of every edge give points along edges."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import shapely
from numpy.typing import NDArray

from geoservice.crs import to_metric

Array = NDArray[np.float64]


def metric_coords(xy: Array) -> Array:
    """WGS84 (lon, lat) rows as EPSG:4547 (x, y) rows."""
    x, y = to_metric(xy[:, 0], xy[:, 1])
    return np.column_stack([x, y])


def edge_lines(
    xy: Array, line_at: NDArray[np.int64], edges: NDArray[np.int64], *, reverse: bool = False
) -> NDArray[np.object_]:
    """LineStrings of ``edges`` (indices), edge ``e`` being ``xy[line_at[e]:line_at[e + 1]]``,
    turned round with ``reverse``."""
    edges = np.asarray(edges, dtype=np.int64)
    if len(edges) == 0:
        return np.empty(0, dtype=object)
    start, count = line_at[edges], np.diff(line_at)[edges]
    position = np.repeat(start, count) + (
        np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
    )
    lines = shapely.linestrings(
        np.asarray(xy[position]), indices=np.repeat(np.arange(len(edges)), count)
    )
    return shapely.reverse(lines) if reverse else lines


def substring(line: shapely.LineString, start: float, end: float) -> shapely.LineString:
    """The part of ``line`` between two length fractions."""
    xy = shapely.get_coordinates(line)
    along = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(xy, axis=0).T))])
    total = along[-1]
    if total == 0:
        return line
    a, b = start * total, end * total
    inner = (along > a) & (along < b)
    ends = (
        [np.interp(v, along, xy[:, 0]) for v in (a, b)],
        [np.interp(v, along, xy[:, 1]) for v in (a, b)],
    )
    coords = np.vstack([[ends[0][0], ends[1][0]], xy[inner], [ends[0][1], ends[1][1]]])
    return shapely.linestrings(coords)


class Segments(NamedTuple):
    """Every straight segment of every edge in metres, in a network's direction: start
    ``a``, end ``b``, the edge fractions where it starts and ends, each edge's first segment
    (``first[e]:first[e + 1]``), and ``keys``: each segment's edge plus the fraction where it
    starts, sorted, so one ``searchsorted`` finds the segment of any point on any edge."""

    a: Array
    b: Array
    start: Array
    end: Array
    first: NDArray[np.int64]
    keys: Array

    @classmethod
    def of(
        cls,
        metric_xy: Array,
        line_at: NDArray[np.int64],
        length_m: Array,
        *,
        backwards: bool = False,
    ) -> Segments:
        """The segments of the edges ``metric_xy[line_at[e]:line_at[e + 1]]`` of lengths
        ``length_m``; with ``backwards``, of each edge turned round."""
        n_edges = len(line_at) - 1
        owner = np.repeat(np.arange(n_edges), np.diff(line_at))
        if backwards:  # each edge's coordinates turned round
            turned = line_at[owner] + line_at[owner + 1] - 1 - np.arange(len(owner))
            xy = np.asarray(metric_xy)[turned]
        else:
            xy = np.asarray(metric_xy)
        same = owner[1:] == owner[:-1]
        a, b, edge = xy[:-1][same], xy[1:][same], owner[:-1][same]
        length = np.hypot(*(b - a).T)
        first = np.searchsorted(edge, np.arange(n_edges + 1))
        done = np.cumsum(length)
        done -= np.repeat(done[first[:-1]] - length[first[:-1]], np.diff(first))
        total = length_m[edge]
        end = np.divide(done, total, out=np.ones_like(done), where=total > 0)
        end[first[1:] - 1] = 1.0
        start = np.divide(done - length, total, out=np.zeros_like(done), where=total > 0)
        keys = np.repeat(np.arange(n_edges), np.diff(first)) + start
        return cls(a, b, start, end, first, keys)

    def points_along(self, edge: NDArray[np.int64], fraction: Array) -> Array:
        """Metric (x, y) of points at length fractions along edges."""
        a, b, seg_start, seg_end, first, keys = self
        k = np.searchsorted(keys, edge + fraction, side="right") - 1
        k = np.clip(k, first[edge], first[edge + 1] - 1)
        span = seg_end[k] - seg_start[k]
        t = np.divide(fraction - seg_start[k], span, out=np.zeros_like(span), where=span > 0)
        t = np.clip(t, 0.0, 1.0)[:, None]
        return a[k] + (b[k] - a[k]) * t

    def points_on(self, edge: NDArray[np.int64], start: Array, end: Array, step: float) -> Array:
        """Metric points along the parts of edges ``edge`` from fraction ``start`` to
        ``end``: both ends and at most ``step`` apart."""
        a, b, seg_start, seg_end, first, _ = self
        count = first[edge + 1] - first[edge]
        owner = np.repeat(np.arange(len(count)), count)
        seg = first[edge][owner] + (
            np.arange(len(owner)) - np.repeat(np.cumsum(count) - count, count)
        )
        lo = np.maximum(start[owner], seg_start[seg])
        hi = np.minimum(end[owner], seg_end[seg])
        keep = hi >= lo
        seg, lo, hi = seg[keep], lo[keep], hi[keep]
        span = seg_end[seg] - seg_start[seg]
        t0 = np.divide(lo - seg_start[seg], span, out=np.zeros_like(lo), where=span > 0)
        t1 = np.divide(hi - seg_start[seg], span, out=np.zeros_like(hi), where=span > 0)
        length = np.hypot(*(b[seg] - a[seg]).T) * (t1 - t0)
        n = np.ceil(length / step).astype(np.int64) + 1
        which = np.repeat(np.arange(len(n)), n)
        k = np.arange(len(which)) - np.repeat(np.cumsum(n) - n, n)
        t = t0[which] + (t1 - t0)[which] * (k / np.maximum(np.repeat(n - 1, n), 1))
        s = seg[which]
        return a[s] + (b[s] - a[s]) * t[:, None]
