"""Isochrone bands: the parts of the road network reached within each time, as polygons.

The exact answer is the reached edge parts (:meth:`Reach.pieces`, partial edges cut where
the time runs out). A band's polygon is those parts buffered by ``buffer_m``:

- ``method="raster"`` (the default, and what the API serves): the parts are sampled every
  half cell, the distance to the nearest sample is computed on a square lattice
  (``scipy.ndimage.distance_transform_edt``) and the polygon is its ``buffer_m`` contour
  (``contourpy``, linear interpolation). The lattice is the same for every band and a
  larger band's distance field is nowhere larger, so bands nest by construction. The
  boundary lies within ``tolerance_m`` (2.6 cells, reported per band) of
  the exact buffer: every point within ``buffer_m - tolerance_m`` of a reached part is
  inside, every point farther than ``buffer_m + tolerance_m`` is outside. Where the lattice
  must be coarser (bands of tens of minutes), the band is drawn ``tolerance_m`` wide if that
  is wider than ``buffer_m``, so reached roads always lie inside.
- ``method="exact"``: the GEOS union of the buffered parts (slower; for checks and small
  bands), each band united with the smaller one so they nest.

Holes smaller than ``min_hole_m2`` (slivers between buffered roads) are filled; larger
holes and separate islands are kept. Polygons are built in EPSG:4547 (metres), where
``area_km2`` is measured, and returned in WGS84.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

import contourpy
import numpy as np
import orjson
import shapely
from numpy.typing import NDArray

from geoservice.bands import DEFAULT_BANDS, Bands
from geoservice.crs import from_metric
from geoservice.errors import InvalidInput, shown
from geoservice.network import Network, Reach, Snaps

DEFAULT_BUFFER_M = 30.0
MAX_BUFFER_M = 500.0
MIN_HOLE_M2 = 1_000.0
MIN_CELL_M = 5.0
MAX_CELLS = 600_000
"""The lattice has cells of ``MIN_CELL_M``, coarser only when the largest band would need
more cells than this."""
TOLERANCE_CELLS = math.sqrt(2) + math.sqrt(0.5) + 0.5
"""Raster bound in cells: quad corner to point (sqrt 2), sample to lattice node (sqrt 1/2),
point on a part to its nearest sample (1/2, samples one cell apart)."""

Method = Literal["raster", "exact"]


@dataclass(frozen=True)
class Band:
    minutes: float
    polygon: shapely.Geometry  # WGS84 (Multi)Polygon
    area_km2: float
    tolerance_m: float


@dataclass(frozen=True)
class Isochrones:
    """Bands from one origin (a point or a line), smallest first."""

    bands: list[Band]
    reach: Reach
    origin: dict[str, float] | None  # the snapped point actually routed from
    buffer_m: float

    @property
    def dataset_version(self) -> int:
        return self.reach.network.version

    def reached_edges(self, minutes: float) -> Any:
        """The exact answer: reached edge parts within ``minutes`` (a DataFrame)."""
        return self.reach.reached_edges(minutes * 60.0)

    def plot(self, basemap: Any = None, **options: Any) -> Any:
        """The bands on a map with a band legend (``geoservice.plots.isochrone_map``); a
        matplotlib Figure."""
        from geoservice import plots

        return plots.isochrone_map(self, basemap, **options)

    def to_geojson(self) -> dict[str, Any]:
        """A FeatureCollection as ``GET /v1/isochrones`` answers it."""
        return {
            "type": "FeatureCollection",
            "features": [
                {
                    "type": "Feature",
                    "geometry": orjson.Fragment(shapely.to_geojson(band.polygon)),
                    "properties": {
                        "minutes": plain_number(band.minutes),
                        "area_km2": round(float(band.area_km2), 6),
                        "tolerance_m": round(float(band.tolerance_m), 2),
                    },
                }
                for band in self.bands
            ],
            "origin": self.origin,
            "profile": self.reach.network.profile,
            "buffer_m": plain_number(self.buffer_m),
            "dataset_version": self.dataset_version,
        }


def _check_buffer(buffer_m: float) -> float:
    """``buffer_m`` if it is in (0, ``MAX_BUFFER_M``] metres."""
    if not 0 < buffer_m <= MAX_BUFFER_M:
        msg = f"buffer_m {shown(buffer_m)} is out of range; expected (0, {MAX_BUFFER_M:g}] metres"
        raise InvalidInput(msg)
    return buffer_m


def isochrones(
    network: Network,
    lon: float,
    lat: float,
    minutes: Bands = DEFAULT_BANDS,
    *,
    buffer_m: float = DEFAULT_BUFFER_M,
    method: Method = "raster",
) -> Isochrones:
    """Bands around one WGS84 point, snapped onto the nearest road."""
    snaps = network.snap_points([lon], [lat])
    result = from_snaps(network, snaps, minutes, buffer_m=buffer_m, method=method)
    origin = {"lon": round(float(snaps.lon[0]), 8), "lat": round(float(snaps.lat[0]), 8)}
    return Isochrones(result.bands, result.reach, origin, result.buffer_m)


def from_snaps(
    network: Network,
    snaps: Snaps,
    minutes: Bands = DEFAULT_BANDS,
    *,
    buffer_m: float = DEFAULT_BUFFER_M,
    method: Method = "raster",
) -> Isochrones:
    """Bands around origins already placed on the network (points, lines, or many at once:
    all of them together form one origin). Minutes given as a plain tuple are checked
    into ``Bands`` (sorted, bounded) here, and ``buffer_m`` must be in (0, ``MAX_BUFFER_M``],
    so Python callers get the API's rules."""
    minutes = Bands(minutes)
    buffer_m = _check_buffer(buffer_m)
    one = Snaps(
        np.zeros_like(snaps.origin),
        snaps.edge,
        snaps.fraction,
        snaps.lon,
        snaps.lat,
        snaps.distance_m,
    )
    reach = network.reach(one, minutes[-1] * 60.0)
    polygons = band_polygons(reach, minutes, buffer_m, method=method)
    return Isochrones(polygons, reach, None, buffer_m)


def band_polygons(
    reach: Reach,
    minutes: Bands,
    buffer_m: float = DEFAULT_BUFFER_M,
    *,
    method: Method = "raster",
    min_hole_m2: float = MIN_HOLE_M2,
) -> list[Band]:
    """One polygon per band, smallest first, nested."""
    if method == "exact":
        metric = [_fill_small_holes(g, min_hole_m2) for g in _exact(reach, minutes, buffer_m)]
        tolerance = 0.0
    elif method == "raster":
        metric, tolerance = _raster(reach, minutes, buffer_m, min_hole_m2)
    else:
        msg = f"unknown method {method!r}; expected 'raster' or 'exact'"
        raise InvalidInput(msg)
    bands = []
    for m, geom in zip(minutes, metric, strict=True):
        bands.append(Band(m, shapely.transform(geom, _wgs84), geom.area / 1e6, tolerance))
    return bands


def _exact(reach: Reach, minutes: Sequence[float], buffer_m: float) -> list[shapely.Geometry]:
    out: list[shapely.Geometry] = []
    for m in minutes:
        lines = reach.lines(m * 60.0)
        geom = shapely.union_all(shapely.buffer(lines, buffer_m, quad_segs=4))
        out.append(shapely.union(geom, out[-1]) if out else geom)
    return out


def _raster(
    reach: Reach, minutes: Sequence[float], buffer_m: float, min_hole_m2: float
) -> tuple[list[shapely.Geometry], float]:
    net = reach.network
    pieces = [reach.pieces(m * 60.0) for m in minutes]
    if len(pieces[-1].edge) == 0:
        return [shapely.Polygon() for _ in minutes], 0.0
    edges = pieces[-1].edge
    ends = net.node_xy_metric[np.concatenate([net.source[edges], net.target[edges]])]
    lo = ends.min(axis=0) - buffer_m
    hi = ends.max(axis=0) + buffer_m
    cell = max(MIN_CELL_M, math.sqrt(float(np.prod(hi - lo)) / MAX_CELLS))
    # on a coarse lattice (very large bands) the band is drawn at least as wide as the
    # tolerance, so every reached road stays inside it
    level = max(buffer_m, cell * TOLERANCE_CELLS)
    # the contour needs exact distances at the nodes next to those within the level
    exact = math.ceil(level / cell + math.sqrt(2))
    pad = exact + 1  # window margin: every node on a window's edge is beyond the buffer
    lo -= pad * cell
    out = []
    marked = np.empty((0, 2), dtype=np.int64)
    for part in pieces:
        points = net.points_on(part, step=cell)
        # a larger band keeps every lattice node of the smaller ones: its distance field is
        # nowhere larger, so its polygon contains theirs
        marked = np.concatenate([marked, np.rint((points - lo) / cell).astype(np.int64)])
        if len(marked) == 0:
            out.append(shapely.Polygon())
            continue
        i0 = np.maximum(marked.min(axis=0) - pad, 0)
        i1 = marked.max(axis=0) + pad + 1
        hit = np.zeros((i1[1] - i0[1], i1[0] - i0[0]), dtype=bool)
        hit[marked[:, 1] - i0[1], marked[:, 0] - i0[0]] = True
        distance = near_distance(hit, exact) * cell
        xs = lo[0] + cell * np.arange(i0[0], i1[0])
        ys = lo[1] + cell * np.arange(i0[1], i1[1])
        out.append(_contour(xs, ys, distance, level, min_hole_m2))
    return out, cell * TOLERANCE_CELLS


def near_distance(hit: NDArray[np.bool_], reach: int) -> NDArray[np.float64]:
    """Euclidean distance, in cells, from every lattice node to the nearest ``hit`` node:
    exact up to ``reach`` cells, at least ``reach`` beyond.

    Separable: the distance to the nearest hit in the same row (two running extrema), then
    the minimum over the rows within ``reach`` of ``dy**2 + row_distance**2``, in small
    integers (squared distances between lattice nodes are whole numbers).
    """
    cols = np.arange(hit.shape[1], dtype=np.int32)
    far = np.int32(hit.shape[1] + reach + 1)
    left = np.maximum.accumulate(np.where(hit, cols, -far), axis=1)
    right = np.minimum.accumulate(np.where(hit, cols, 2 * far)[:, ::-1], axis=1)[:, ::-1]
    row = np.minimum(np.minimum(cols - left, right - cols), reach + 1)
    worst = (reach + 1) ** 2 + reach**2
    kind = np.uint8 if worst < 2**8 else np.uint16 if worst < 2**16 else np.uint32
    row = (row * row).astype(kind)
    best = row.copy()
    for dy in range(1, reach + 1):
        step = kind(dy * dy)
        np.minimum(best[dy:], row[:-dy] + step, out=best[dy:])
        np.minimum(best[:-dy], row[dy:] + step, out=best[:-dy])
    return np.sqrt(best, dtype=np.float64)


def _contour(
    xs: NDArray, ys: NDArray, z: NDArray, level: float, min_hole_m2: float
) -> shapely.Geometry:
    """Polygons where ``z <= level``; holes smaller than ``min_hole_m2`` left out."""
    generator = contourpy.contour_generator(xs, ys, z, fill_type=contourpy.FillType.OuterOffset)
    filled = generator.filled(-1.0, level)  # OuterOffset: (points per polygon, ring offsets)
    points = cast(list[NDArray[np.float64]], filled[0])
    offsets = cast(list[NDArray[np.uint32]], filled[1])
    polygons = []
    for xy, ring_starts in zip(points, offsets, strict=True):
        x, y = xy[:, 0], xy[:, 1]
        cross = x * np.roll(y, -1) - np.roll(x, -1) * y  # shoelace terms, per vertex
        sums = np.add.reduceat(cross, ring_starts[:-1])
        # the wrap-around term of each ring must use the ring's own first vertex
        last, head = ring_starts[1:] - 1, ring_starts[:-1]
        sums += x[last] * y[head] - x[head] * y[last] - cross[last]
        ring_of = np.repeat(np.arange(len(head)), np.diff(ring_starts))
        rings = shapely.linearrings(xy, indices=ring_of)
        keep = np.abs(sums[1:]) / 2 >= min_hole_m2
        polygons.append(shapely.polygons(rings[0], holes=rings[1:][keep]))
    return shapely.MultiPolygon(polygons) if polygons else shapely.Polygon()


def _fill_small_holes(geom: shapely.Geometry, min_hole_m2: float) -> shapely.Geometry:
    parts = []
    for part in shapely.get_parts(geom):
        if not isinstance(part, shapely.Polygon):
            continue
        holes = [r for r in part.interiors if shapely.Polygon(r).area >= min_hole_m2]
        parts.append(shapely.Polygon(part.exterior, holes))
    if not parts:
        return shapely.Polygon()
    return parts[0] if len(parts) == 1 else shapely.MultiPolygon(parts)


def _wgs84(xy: NDArray) -> NDArray:
    lon, lat = from_metric(xy[:, 0], xy[:, 1])
    return np.column_stack([lon, lat])


def plain_number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value
