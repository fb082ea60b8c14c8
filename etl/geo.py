"""Geometry helpers shared by the loaders: metric areas, locations, far-away data."""

from __future__ import annotations

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from geoservice.errors import InvalidInput

AREA_TOLERANCE_M2 = 1.0
"""Overlaps, gaps and parts outside a parent smaller than this are ignored (rounding)."""

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
    geoms: np.ndarray, district: BaseGeometry, what: str, allow_outside: bool
) -> None:
    """Refuse data far from the district, saying how far and the likely cause."""
    if allow_outside or len(geoms) == 0:
        return
    minx, miny, maxx, maxy = shapely.total_bounds(geoms)
    if not np.all(np.isfinite([minx, miny, maxx, maxy])):
        return
    extent = shapely.box(minx, miny, maxx, maxy)
    dlon, dlat = district.centroid.x, district.centroid.y
    gap_deg = extent.distance(district)
    gap_km = gap_deg * 111.32 * np.cos(np.radians(dlat))
    if gap_km <= FAR_KM:
        return
    cx, cy = (minx + maxx) / 2, (miny + maxy) / 2
    if shapely.box(miny, minx, maxy, maxx).distance(district) * 111.32 < FAR_KM:
        hint = "lon and lat look swapped"
    elif max(abs(minx), abs(maxx)) > 180 or max(abs(miny), abs(maxy)) > 90:
        hint = (
            f"coordinates up to {max(abs(minx), abs(maxx)):.0f} look like projected metres read "
            "as degrees: pass the file's --crs (e.g. EPSG:4547)"
        )
    else:
        hint = "is --crs right, or the CRS the file states?"
    msg = (
        f"{what} lies {gap_km:,.0f} km from Huicheng District (its centre is at {cx:.4f} "
        f"{cy:.4f}, the district's at {dlon:.4f} {dlat:.4f}); {hint}. "
        "Pass --allow-outside to load it anyway."
    )
    raise InvalidInput(msg)
