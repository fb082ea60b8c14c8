"""The linear tolerance of a load (``--tolerance-m``), as GIS systems have one.

ArcGIS calls it the XY (cluster) tolerance, QGIS the snapping tolerance: coordinates that
moved less than it — through an export rounded to 7 or 8 decimals, a reprojection to
CGCS2000 Gauss–Kruger and back, a Shapefile's reoriented rings — are the same
coordinates. Three rules follow, applied in this order:

1. **Unchanged stays identical.** A feature whose every vertex lies within the tolerance
   of the current version's feature of the same code, and back (a discrete Hausdorff
   distance, so ring start and orientation do not matter), keeps the stored geometry bit
   for bit. A round trip of a layer is then "no change".
2. **Snapping.** Every other polygon's vertices within the tolerance of a reference
   boundary — its parent as the load leaves it, the kept features of its layer, the
   features of its layer snapped before it (in code order), its own stored geometry —
   are moved onto it (GEOS's snapper); each move is reported.
3. **Slivers are no problems.** An overlap, a gap or a part outside a parent narrower
   than the tolerance everywhere is rounding, not an error; anything wider is reported.

Distances are metres on a local equirectangular plane (``LocalPlane``): affine, so
snapping and sliver tests are exact up to the plane's scale error (well under 1% in a
district). Snapping itself runs in degrees, so snapped vertices land on the reference's
own coordinates, with the tolerance converted conservatively (a degree of latitude).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from numpy.typing import NDArray
from shapely.geometry import MultiPolygon

METRES_PER_DEGREE_LAT = 110_574.0
METRES_PER_DEGREE_LON_AT_EQUATOR = 111_320.0


@dataclass(frozen=True)
class LocalPlane:
    """Metres east and north of a reference latitude (an affine map of lon/lat)."""

    lat0: float

    @property
    def scale(self) -> tuple[float, float]:
        return (
            METRES_PER_DEGREE_LON_AT_EQUATOR * float(np.cos(np.radians(self.lat0))),
            METRES_PER_DEGREE_LAT,
        )

    def metric(self, geoms: NDArray[np.object_]) -> NDArray[np.object_]:
        sx, sy = self.scale
        return shapely.transform(geoms, lambda xy: xy * np.array([sx, sy]))


@dataclass(frozen=True)
class Snapped:
    """What snapping did to a layer: features moved, vertices moved, the largest move."""

    features: int
    vertices: int
    largest_m: float


def degrees(tolerance_m: float) -> float:
    """A tolerance in metres as degrees, never wider than ``tolerance_m`` on the ground
    (a degree of longitude is shorter than one of latitude away from the equator)."""
    return tolerance_m / METRES_PER_DEGREE_LON_AT_EQUATOR


def plane_of(geoms: NDArray[np.object_]) -> LocalPlane:
    """The local plane at the middle latitude of ``geoms``."""
    present = geoms[[g is not None for g in geoms]]
    if not len(present):
        return LocalPlane(0.0)
    _, miny, _, maxy = shapely.total_bounds(present)
    return LocalPlane((miny + maxy) / 2)


def equal_within(
    a: NDArray[np.object_], b: NDArray[np.object_], tolerance_m: float, plane: LocalPlane
) -> NDArray[np.bool_]:
    """Pairwise: ``a[i]`` and ``b[i]`` are the same geometry within ``tolerance_m``.

    Same type, every vertex of each within the tolerance of a vertex of the other
    (discrete Hausdorff distance), and areas that differ by no more than the tolerance
    along the perimeter allows. None equals only None.
    """
    out = np.zeros(len(a), dtype=bool)
    present = np.array([x is not None and y is not None for x, y in zip(a, b, strict=True)])
    if not present.any():
        return out
    index = np.flatnonzero(present)
    x, y = a[index], b[index]
    same_type = shapely.get_type_id(x) == shapely.get_type_id(y)
    exact = same_type & shapely.equals_exact(x, y, degrees(tolerance_m))
    rest = np.flatnonzero(same_type & ~exact)
    if len(rest):
        mx, my = plane.metric(x[rest]), plane.metric(y[rest])
        close = shapely.hausdorff_distance(mx, my) <= tolerance_m
        areas = np.abs(shapely.area(mx) - shapely.area(my))
        close &= areas <= shapely.length(mx) * tolerance_m + 1e-9
        exact[rest] = close
    out[index] = exact
    return out


def keep_stored(
    codes: NDArray[np.object_] | list,
    geoms: NDArray[np.object_] | list,
    current_codes: NDArray[np.object_] | list,
    current_geoms: NDArray[np.object_] | list,
    tolerance_m: float,
) -> tuple[NDArray[np.object_], NDArray[np.bool_], NDArray[np.object_]]:
    """Rule 1: each geometry equal within the tolerance to the stored one of its code is
    replaced by the stored one. Returns the geometries, which were kept, and the stored
    geometry of each code (None where the code is new)."""
    out = np.array(list(geoms), dtype=object)
    by_code = dict(zip(current_codes, current_geoms, strict=True))
    stored = np.array([by_code.get(code) for code in codes] + [None], dtype=object)[:-1]
    kept = equal_within(out, stored, tolerance_m, plane_of(out))
    out[kept] = stored[kept]
    return out, kept, stored


def snap_polygons(
    geoms: NDArray[np.object_],
    order: NDArray[np.int64],
    fixed: NDArray[np.object_],
    own: NDArray[np.object_],
    tolerance_m: float,
    plane: LocalPlane,
) -> tuple[NDArray[np.object_], Snapped]:
    """Snap the polygons at positions ``order`` of ``geoms`` (in that order) onto the
    boundaries of ``fixed`` (parents, kept features), of those snapped before them, and of
    ``own[i]`` (the stored geometry of the same code, or None). A snap that would make a
    polygon invalid is not made. Returns the new array and what moved."""
    out = geoms.copy()
    tol = degrees(tolerance_m)
    references = [shapely.boundary(g) for g in fixed if g is not None]
    tree_fixed = shapely.STRtree(references) if references else None
    movable = shapely.STRtree([geoms[i] for i in order]) if len(order) else None
    done = np.zeros(len(order), dtype=bool)
    features = vertices = 0
    largest = 0.0
    for k, i in enumerate(order.tolist()):
        geom = geoms[i]
        near = shapely.buffer(shapely.envelope(geom), tol)
        lines = []
        if tree_fixed is not None:
            lines += [references[j] for j in tree_fixed.query(near)]
        if movable is not None:
            lines += [shapely.boundary(out[order[j]]) for j in movable.query(near) if done[j]]
        if own[i] is not None:
            lines.append(shapely.boundary(own[i]))
        done[k] = True
        if not lines:
            continue
        snapped = shapely.snap(geom, shapely.GeometryCollection(lines), tol)
        if shapely.equals_exact(snapped, geom, 0.0) or not shapely.is_valid(snapped):
            continue
        moved = _moved_vertices(geom, snapped)
        if not moved:
            continue
        out[i] = snapped if isinstance(snapped, MultiPolygon) else MultiPolygon([snapped])
        features += 1
        vertices += moved
        distance = shapely.hausdorff_distance(*plane.metric(np.array([geom, snapped])))
        largest = max(largest, float(distance))
    return out, Snapped(features, vertices, largest)


def _moved_vertices(before: shapely.Geometry, after: shapely.Geometry) -> int:
    """Vertices of ``after`` that are not vertices of ``before``."""
    old = {tuple(xy) for xy in shapely.get_coordinates(before).tolist()}
    return sum(tuple(xy) not in old for xy in shapely.get_coordinates(after).tolist())


def wider_than(geoms: NDArray[np.object_], tolerance_m: float, plane: LocalPlane) -> NDArray:
    """Which (polygonal) geometries are wider than ``tolerance_m`` somewhere: something is
    left after shrinking them by half the tolerance."""
    if tolerance_m <= 0:
        return np.ones(len(geoms), dtype=bool)
    shrunk = shapely.buffer(plane.metric(np.asarray(geoms, dtype=object)), -tolerance_m / 2)
    return ~shapely.is_empty(shrunk)
