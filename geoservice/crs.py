"""Coordinate reference systems: parse names, convert to and from WGS84.

PROJ does not know GCJ-02 (the offset datum of Chinese web maps) nor BD-09 (Baidu's
offset on top of it), so they are implemented here from the published formulas:
the forward GCJ-02 offset on the Krasovsky ellipsoid, BD-09 with x_pi = π·3000/180.
Their inverses iterate the forward transform to a fixed point (error < 1e-9 degree,
about 0.1 mm). CGCS2000 (EPSG:4490) and WGS84 differ by centimetres and PROJ only
offers a null transform between them: geoservice treats them as equal.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pyproj
from numpy.typing import ArrayLike, NDArray

from geoservice.errors import UnknownCRS

KRASOVSKY_A = 6378245.0
KRASOVSKY_EE = 0.00669342162296594323
X_PI = np.pi * 3000.0 / 180.0
METRIC_EPSG = 4547
"""CGCS2000 / 3-degree Gauss-Kruger CM 114E: the metric CRS for Huizhou."""
DEFAULT_TOLERANCE_M = 0.01
"""One centimetre: more than 7-decimal rounding moves a vertex (at most 7.6 mm here)."""
AREA_TOLERANCE_M2 = 1.0
"""Overlaps, gaps and parts outside a parent smaller than this are ignored (rounding)."""

NAMED = ("wgs84", "cgcs2000", "gcj02", "bd09")
CRS_HELP = "wgs84, cgcs2000, gcj02, bd09 or EPSG:NNNN known to PROJ"

Array = NDArray[np.float64]


def _offset_lat(x: Array, y: Array) -> Array:
    ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
    ret += (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    ret += (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
    ret += (160.0 * np.sin(y / 12.0 * np.pi) + 320.0 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0
    return ret


def _offset_lon(x: Array, y: Array) -> Array:
    ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
    ret += (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    ret += (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
    ret += (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0
    return ret


def _in_china(lon: Array, lat: Array) -> NDArray[np.bool_]:
    """The rectangle inside which the GCJ-02 offset applies (as published)."""
    return (lon >= 72.004) & (lon <= 137.8347) & (lat >= 0.8293) & (lat <= 55.8271)


def wgs84_to_gcj02(lon: ArrayLike, lat: ArrayLike) -> tuple[Array, Array]:
    """GCJ-02 coordinates of WGS84 points (unchanged outside China)."""
    lon = np.asarray(lon, dtype=np.float64)
    lat = np.asarray(lat, dtype=np.float64)
    dlat = _offset_lat(lon - 105.0, lat - 35.0)
    dlon = _offset_lon(lon - 105.0, lat - 35.0)
    radlat = lat / 180.0 * np.pi
    magic = 1.0 - KRASOVSKY_EE * np.sin(radlat) ** 2
    sqrtmagic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((KRASOVSKY_A * (1.0 - KRASOVSKY_EE)) / (magic * sqrtmagic) * np.pi)
    dlon = (dlon * 180.0) / (KRASOVSKY_A / sqrtmagic * np.cos(radlat) * np.pi)
    inside = _in_china(lon, lat)
    return np.where(inside, lon + dlon, lon), np.where(inside, lat + dlat, lat)


def gcj02_to_bd09(lon: ArrayLike, lat: ArrayLike) -> tuple[Array, Array]:
    x = np.asarray(lon, dtype=np.float64)
    y = np.asarray(lat, dtype=np.float64)
    z = np.sqrt(x * x + y * y) + 0.00002 * np.sin(y * X_PI)
    theta = np.arctan2(y, x) + 0.000003 * np.cos(x * X_PI)
    return z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006


def wgs84_to_bd09(lon: ArrayLike, lat: ArrayLike) -> tuple[Array, Array]:
    return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))


def _invert(forward, lon: ArrayLike, lat: ArrayLike, tol: float = 1e-10, max_iter: int = 20):
    """Solve forward(x) = target by fixed-point iteration x <- x - (forward(x) - target)."""
    target_lon = np.asarray(lon, dtype=np.float64)
    target_lat = np.asarray(lat, dtype=np.float64)
    x, y = target_lon.copy(), target_lat.copy()
    for _ in range(max_iter):
        fx, fy = forward(x, y)
        dx, dy = fx - target_lon, fy - target_lat
        x, y = x - dx, y - dy
        if np.all(np.abs(dx) < tol) and np.all(np.abs(dy) < tol):
            break
    return x, y


def gcj02_to_wgs84(lon: ArrayLike, lat: ArrayLike) -> tuple[Array, Array]:
    """Exact inverse of ``wgs84_to_gcj02`` (iterated to < 1e-10 degree)."""
    return _invert(wgs84_to_gcj02, lon, lat)


def bd09_to_wgs84(lon: ArrayLike, lat: ArrayLike) -> tuple[Array, Array]:
    """Exact inverse of ``wgs84_to_bd09`` (iterated to < 1e-10 degree)."""
    return _invert(wgs84_to_bd09, lon, lat)


def _identity(lon: ArrayLike, lat: ArrayLike) -> tuple[Array, Array]:
    return np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)


@dataclass(frozen=True)
class InputCRS:
    """A CRS geoservice accepts, with vectorised transforms to and from WGS84 lon/lat."""

    name: str
    epsg: int | None
    geographic: bool

    def to_wgs84(self, x: ArrayLike, y: ArrayLike) -> tuple[Array, Array]:
        if self.name == "gcj02":
            return gcj02_to_wgs84(x, y)
        if self.name == "bd09":
            return bd09_to_wgs84(x, y)
        if self.epsg in (None, 4326, 4490):
            return _identity(x, y)
        return _transformer(self.epsg, 4326).transform(np.asarray(x, float), np.asarray(y, float))

    def from_wgs84(self, lon: ArrayLike, lat: ArrayLike) -> tuple[Array, Array]:
        if self.name == "gcj02":
            return wgs84_to_gcj02(lon, lat)
        if self.name == "bd09":
            return wgs84_to_bd09(lon, lat)
        if self.epsg in (None, 4326, 4490):
            return _identity(lon, lat)
        return _transformer(4326, self.epsg).transform(
            np.asarray(lon, float), np.asarray(lat, float)
        )


@lru_cache(maxsize=64)
def _transformer(source: int, target: int) -> pyproj.Transformer:
    return pyproj.Transformer.from_crs(source, target, always_xy=True)


@lru_cache(maxsize=64)
def parse_crs(name: str | None) -> InputCRS:
    """``wgs84`` (default), ``cgcs2000``, ``gcj02``, ``bd09`` or ``EPSG:NNNN``."""
    key = (name or "wgs84").strip().lower()
    if key in ("wgs84", "epsg:4326"):
        return InputCRS("wgs84", 4326, True)
    if key in ("cgcs2000", "epsg:4490"):
        return InputCRS("cgcs2000", 4490, True)
    if key in ("gcj02", "bd09"):
        return InputCRS(key, None, True)
    if key.startswith("epsg:") and key[5:].isdigit():
        code = int(key[5:])
        try:
            crs = pyproj.CRS.from_epsg(code)
        except pyproj.exceptions.CRSError:
            msg = f"unknown CRS {name!r}: PROJ does not know EPSG:{code}; expected {CRS_HELP}"
            raise UnknownCRS(msg) from None
        return InputCRS(f"EPSG:{code}", code, crs.is_geographic)
    msg = f"unknown CRS {name!r}; expected {CRS_HELP}"
    raise UnknownCRS(msg)


def to_metric(lon: ArrayLike, lat: ArrayLike) -> tuple[Array, Array]:
    """WGS84 lon/lat to EPSG:4547 metres (x east, y north)."""
    return _transformer(4326, METRIC_EPSG).transform(np.asarray(lon, float), np.asarray(lat, float))


def from_metric(x: ArrayLike, y: ArrayLike) -> tuple[Array, Array]:
    """EPSG:4547 metres to WGS84 lon/lat."""
    return _transformer(METRIC_EPSG, 4326).transform(np.asarray(x, float), np.asarray(y, float))
