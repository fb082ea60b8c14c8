"""Geometry helpers shared by the loaders: metric areas, locations, far-away data."""

from __future__ import annotations

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from geoservice.errors import InvalidInput

FAR_KM = 5.0
"""Data whose extent stays this far from the district is taken for a CRS mistake."""


def area_m2(geoms, lat0: float):
    """Areas in m² on a local equirectangular plane at latitude ``lat0``.

    Affine, unlike a map projection, so the degenerate slivers that rounding leaves
    between exactly matching edges keep their zero area (a Transverse Mercator bends
    long straight edges and would give them hundreds of m²). Within a district the
    scale error is well under 1%.
    """
    scale = 111_320.0 * 110_574.0 * np.cos(np.radians(lat0))
    return shapely.area(geoms) * scale


def point_of(geom: BaseGeometry) -> tuple[float, float]:
    """A representative location of a geometry (WGS84)."""
    point = shapely.point_on_surface(geom) if not geom.is_empty else geom
    return point.x, point.y


def check_near_district(
    geoms: np.ndarray,
    district: BaseGeometry,
    what: str,
    allow_outside: bool,
    *,
    crs_hint: str = "is --crs right, or the CRS the file states?",
) -> None:
    """Refuse data far from the district, saying how far (metres, EPSG:4547) and the
    likely cause (``crs_hint`` when neither swapped axes nor projected metres explain it)."""
    if allow_outside or len(geoms) == 0:
        return
    minx, miny, maxx, maxy = shapely.total_bounds(geoms)
    if not np.all(np.isfinite([minx, miny, maxx, maxy])):
        return
    extent = shapely.box(minx, miny, maxx, maxy)
    dlon, dlat = district.centroid.x, district.centroid.y
    projectable = max(abs(minx), abs(maxx)) <= 180 and max(abs(miny), abs(maxy)) <= 90
    if projectable:
        gap_km = _metric(extent).distance(_metric(district)) / 1000
    else:  # not lon/lat at all: a rough figure, in degrees of latitude
        gap_km = extent.distance(district) * 110.574
    if gap_km <= FAR_KM:
        return
    cx, cy = (minx + maxx) / 2, (miny + maxy) / 2
    swapped = shapely.box(miny, minx, maxy, maxx)
    if (
        max(abs(miny), abs(maxy)) <= 180
        and max(abs(minx), abs(maxx)) <= 90
        and (_metric(swapped).distance(_metric(district)) / 1000 < FAR_KM)
    ):
        hint = "lon and lat look swapped."
    elif not projectable:
        hint = (
            f"coordinates up to {max(abs(minx), abs(maxx)):.0f} look like projected metres read "
            "as degrees: pass the file's --crs (e.g. EPSG:4547)."
        )
    else:
        hint = crs_hint
    msg = (
        f"{what} lies {gap_km:,.0f} km from Huicheng District at its nearest (its centre is at "
        f"{cx:.4f} {cy:.4f}, the district's at {dlon:.4f} {dlat:.4f}); {hint} "
        "Pass --allow-outside to load it anyway."
    )
    raise InvalidInput(msg)


def _metric(geom: BaseGeometry) -> BaseGeometry:
    """A WGS84 geometry in EPSG:4547 metres (densified, so long box edges stay true)."""
    from geoservice.crs import to_metric

    dense = shapely.segmentize(geom, 0.01)
    return shapely.transform(dense, lambda xy: np.column_stack(to_metric(xy[:, 0], xy[:, 1])))


OFFSET_CLOSE_M = 5.0
"""A vertex this close to a reference boundary is taken to lie on it."""


def check_offset_datum(geoms: np.ndarray, reference: np.ndarray, what: str, crs_name: str) -> None:
    """Refuse data that sits at the GCJ-02 (or BD-09) offset from the reference boundaries.

    Chinese web maps export GCJ-02 coordinates, often labelled WGS84: the boundaries then
    run hundreds of metres beside the published ones, all in the same direction. If few of
    the file's vertices lie on a reference boundary as read, and many once read as GCJ-02
    (or BD-09), the file says the wrong CRS; the message names the one that fits.
    """
    if crs_name != "wgs84" or len(geoms) == 0 or len(reference) == 0:
        return
    coords = shapely.get_coordinates(shapely.boundary(geoms[[g is not None for g in geoms]]))
    if len(coords) == 0:
        return
    sample = coords[:: max(1, len(coords) // 4000)]
    lines = shapely.boundary(reference)
    tree = shapely.STRtree(lines)
    lat0 = float(np.median(sample[:, 1]))
    metres = 111_320.0 * np.array([np.cos(np.radians(lat0)), 1.0])

    def on_reference(xy: np.ndarray) -> float:
        _, distance = tree.query_nearest(shapely.points(xy), return_distance=True)
        # degrees to metres, roughly (only the order of magnitude matters here)
        return float(np.mean(distance * metres.mean() <= OFFSET_CLOSE_M)) if len(distance) else 0.0

    as_read = on_reference(sample)
    from geoservice.crs import bd09_to_wgs84, gcj02_to_wgs84

    for name, label, inverse in (
        ("gcj02", "GCJ-02", gcj02_to_wgs84),
        ("bd09", "BD-09", bd09_to_wgs84),
    ):
        fixed = np.column_stack(inverse(sample[:, 0], sample[:, 1]))
        as_offset = on_reference(fixed)
        if as_offset >= 0.3 and as_read < 0.2 * as_offset:
            shift = np.hypot(*((fixed - sample).mean(axis=0) * metres))
            msg = (
                f"{what}: only {as_read:.0%} of its boundary vertices lie on the current "
                f"boundaries as read (WGS84), but {as_offset:.0%} once read as {label}, "
                f"about {shift:,.0f} m away: the file holds {label} coordinates (a "
                f"Chinese web map's) labelled as WGS84. Load it with --crs {name}."
            )
            raise InvalidInput(msg)
