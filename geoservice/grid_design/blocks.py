"""Blocks: the area to redraw cut by roads and rivers (``design``, step 1), road ends led
to the area's own vertices, slivers merged into their neighbours."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import shapely
from shapely.geometry import LineString, MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from geoservice.crs import to_metric
from geoservice.grid_design.measure import metric

SNAP_M = 60.0
"""A road meeting the free area's edge within this of one of the edge's vertices is led
to that vertex; farther, it stops at its last junction inside (metres)."""
SLIVER_M2 = 1_000.0
"""A block smaller than this (m²) is merged into a neighbour."""
SLIVER_WIDTH_M = 8.0
"""A block narrower than this on average (2 × area / perimeter, metres) is merged too."""


class Cuts:
    """The lines that cut blocks (roads of ``ROAD_CLASSES``, rivers), WGS84."""

    def __init__(self, lines: Sequence[BaseGeometry]) -> None:
        self.lines = np.asarray(lines, dtype=object).reshape(-1)
        self.tree = shapely.STRtree(self.lines)

    def near(self, area: BaseGeometry) -> np.ndarray:
        return self.lines[self.tree.query(area, predicate="intersects")]


def blocks_of(area: Polygon | MultiPolygon, cuts: Cuts) -> list[Polygon] | None:
    """The blocks ``cuts`` cut out of ``area`` (``design``, step 1), slivers merged;
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
    metres = [metric(f) for f in faces]
    areas = np.array([m.area for m in metres])
    widths = np.array([2 * m.area / max(m.length, 1e-9) for m in metres])
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
