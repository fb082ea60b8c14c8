"""Measures of areas and lines: in metres, the places (and events) inside an area, how
much of a line runs along a road."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import shapely
from shapely.geometry import LineString
from shapely.geometry.base import BaseGeometry

from geoservice.crs import to_metric

ROAD_NEAR_M = 15.0
"""A boundary within this of a road (metres) counts as following it."""


def area_m2(geometry: BaseGeometry) -> float:
    return float(shapely.area(metric(geometry)))


def length_m(geometry: BaseGeometry) -> float:
    return float(shapely.length(metric(geometry))) if not geometry.is_empty else 0.0


def metric(geometry: BaseGeometry) -> BaseGeometry:
    """``geometry`` (WGS84) in the metric CRS, metres."""
    return shapely.transform(geometry, lambda xy: np.column_stack(to_metric(xy[:, 0], xy[:, 1])))


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


class Roads:
    """The roads a boundary may follow, in metres, for "how much of this line runs along
    a road": points every ``SAMPLE_M`` along the line, the share within ``ROAD_NEAR_M``."""

    SAMPLE_M = 5.0

    def __init__(self, lines: Sequence[BaseGeometry]) -> None:
        self.tree = shapely.STRtree([metric(line) for line in lines])
        self.empty = len(lines) == 0

    def share(self, line: BaseGeometry) -> float:
        if self.empty or line.is_empty:
            return 0.0
        metres = metric(line)
        length = shapely.length(metres)
        if length == 0:
            return 0.0
        steps = np.linspace(0, length, max(2, int(length / self.SAMPLE_M) + 1))
        samples = shapely.line_interpolate_point(_lines_of(metres), steps[:, None]).ravel()
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
