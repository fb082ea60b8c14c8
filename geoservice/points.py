"""Points from the world's values, checked and converted to WGS84: a query string's or a
command line's ``lon``/``lat`` and ``crs``, a JSON list of ``[x, y]`` pairs or
``{"lon": x, "lat": y}`` objects in a request's CRS.

The server's edge and the command line read points here; the core (``geoservice/locate``
and the rest) takes the WGS84 floats and arrays this returns. Errors name the value:
``InvalidCoordinates``, ``UnknownCRS``, ``PayloadTooLarge`` over ``MAX_POINTS``.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
from numpy.typing import NDArray

from geoservice.crs import InputCRS, parse_crs
from geoservice.errors import InvalidCoordinates, PayloadTooLarge, shown

DISTRICT_BBOX = (113.9, 22.6, 115.1, 23.8)
"""Huicheng and surroundings; used only to spot swapped lon/lat."""
MAX_POINTS = 100_000
"""The most points one list in a request may hold."""


def parse_point(lon: str | None, lat: str | None, crs_name: str | None) -> tuple[float, float]:
    """One point from query strings or command-line arguments (texts; None when missing)
    in the CRS named ``crs_name`` (default WGS84); returns WGS84 lon, lat."""
    crs = parse_crs(crs_name)
    return wgs84_point(coordinate("lon", lon), coordinate("lat", lat), crs)


def coordinate(name: str, raw: str | None) -> float:
    """The number the text ``raw`` holds (``name``: ``lon`` or ``lat``, for the message)."""
    if raw is None or not raw.strip():
        msg = f"{name} is missing; expected a number"
        raise InvalidCoordinates(msg)
    try:
        return float(raw)
    except (TypeError, ValueError):
        msg = f"{name} {raw!r} is not a number"
        raise InvalidCoordinates(msg) from None


def wgs84_point(x: float, y: float, crs: InputCRS) -> tuple[float, float]:
    """The point ``x``, ``y`` of ``crs`` checked as ``check_coordinates`` checks it, as WGS84
    lon, lat."""
    if crs.name in ("wgs84", "cgcs2000") and _plainly_valid(x, y):
        return x, y  # the common case, without numpy's per-call overhead
    lon, lat = check_coordinates(np.array([x]), np.array([y]), crs, single=True)
    return float(lon[0]), float(lat[0])


def to_wgs84_points(points: Any, crs: InputCRS) -> tuple[NDArray, NDArray]:
    """Validate ``[[x, y], ...]`` (or ``[{"lon": x, "lat": y}, ...]``) in ``crs``, 1 to
    ``MAX_POINTS`` of them, and convert to WGS84 arrays; errors name the value."""
    if not isinstance(points, list):
        msg = f"points must be a list of [lon, lat] pairs, got {type(points).__name__}"
        raise InvalidCoordinates(msg)
    if len(points) == 0:
        msg = f"points is empty; send 1 to {MAX_POINTS:,} [lon, lat] pairs"
        raise InvalidCoordinates(msg)
    if len(points) > MAX_POINTS:
        msg = f"{len(points):,} points is more than the limit of {MAX_POINTS:,} per request"
        raise PayloadTooLarge(msg)
    numbers = (float, int)
    if not all(
        type(pair) is list
        and len(pair) == 2
        and type(pair[0]) in numbers
        and type(pair[1]) in numbers
        for pair in points
    ):
        points = [_as_pair(item) for item in points]
        for i, item in enumerate(points):
            if not (isinstance(item, list) and len(item) == 2):
                msg = (
                    f"points[{i}] is {shown(item)}; expected a [lon, lat] pair of numbers "
                    "or {lon, lat}"
                )
                raise InvalidCoordinates(msg)
            for value in item:
                if type(value) not in numbers:
                    msg = f"points[{i}] has {shown(value)}; expected numbers"
                    raise InvalidCoordinates(msg)
    xy = np.array(points, dtype=np.float64)
    return check_coordinates(xy[:, 0], xy[:, 1], crs)


def _as_pair(item: Any) -> Any:
    """``{"lon": x, "lat": y}`` as ``[x, y]`` (x, y in the request's CRS); any other item
    as it is."""
    if isinstance(item, dict) and item.keys() == {"lon", "lat"}:
        return [item["lon"], item["lat"]]
    return item


def check_coordinates(
    x: NDArray, y: NDArray, crs: InputCRS, *, single: bool = False
) -> tuple[NDArray, NDArray]:
    """Finite, not swapped, in range; returns WGS84 lon/lat arrays. Errors name the value
    (``point i`` unless ``single``)."""

    def fail(mask: NDArray, problem: str) -> None:
        if mask.any():
            i = int(np.flatnonzero(mask)[0])
            where = "" if single else f"point {i}: "
            raise InvalidCoordinates(where + problem.format(x=x[i], y=y[i]))

    fail(~(np.isfinite(x) & np.isfinite(y)), "({x}, {y}) is not a finite coordinate")
    if crs.geographic:
        minx, miny, maxx, maxy = DISTRICT_BBOX
        swapped = (y >= minx) & (y <= maxx) & (x >= miny) & (x <= maxy)
        fail(swapped, "({x}, {y}) looks like lat, lon for Huicheng; send lon first")
        fail(np.abs(x) > 180, "longitude {x} outside [-180, 180]")
        fail(np.abs(y) > 90, "latitude {y} outside [-90, 90]")
    else:  # metres: a pair within 180 and 90 of the projection's origin is degrees sent by mistake
        degrees = (np.abs(x) <= 180) & (np.abs(y) <= 90)
        fail(degrees, f"({{x}}, {{y}}) looks like degrees; {crs.name} takes metres (x, y)")
    lon, lat = crs.to_wgs84(x, y)
    lon, lat = np.atleast_1d(lon), np.atleast_1d(lat)
    fail(~(np.isfinite(lon) & np.isfinite(lat)), f"({{x}}, {{y}}) is not a point of {crs.name}")
    return lon, lat


def named_items(message: str, where: str) -> str:
    """``to_wgs84_points``'s message with its ``points[i]`` or ``point i`` named as the
    caller numbers its items: ``row i+1`` (a file's rows) or ``where[i]`` (a JSON list)."""

    def name(match: re.Match[str]) -> str:
        i = int(match[1] or match[2])
        return f"row {i + 1}" if where == "row" else f"{where}[{i}]"

    return re.sub(r"points?(?:\[(\d+)\]| (\d+))", name, message)


def _plainly_valid(x: float, y: float) -> bool:
    """Finite, in range and not a swapped Huicheng pair: what ``check_coordinates`` passes
    unchanged (anything else goes through it, for its message)."""
    minx, miny, maxx, maxy = DISTRICT_BBOX
    return (
        math.isfinite(x)
        and math.isfinite(y)
        and abs(x) <= 180
        and abs(y) <= 90
        and not (minx <= y <= maxx and miny <= x <= maxy)
    )
