"""Typed parameter values the routes share: the world's strings checked once, at the edge.

Each is an ``Annotated`` type FastAPI validates before a route runs; a value outside it is
a 422 problem+json naming the parameter and the value (``server/problems.py``). GeoJSON
geometries in bodies are read by ``geojson_geometry``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import shapely
from fastapi import Depends, Query
from pydantic import AfterValidator
from shapely.errors import GEOSException
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from geoservice.bands import Bands
from geoservice.collections import BBox
from geoservice.coverage import OriginKind, Weight
from geoservice.errors import InvalidGeometry, InvalidInput, shown

MAX_ID = 2**31 - 1
"""The largest dataset version, draft or other stored id (PostgreSQL ``integer``)."""
CHINA = ZoneInfo("Asia/Shanghai")
UNREADABLE = (
    GEOSException, ValueError, TypeError, AttributeError, IndexError, KeyError, RecursionError
)  # fmt: skip
"""What shapely raises on coordinates that are no geometry (nested too deep among them)."""


def geojson_geometry(
    value: Any, kinds: tuple[str, ...], where: str, *, empty: bool = False
) -> BaseGeometry:
    """A GeoJSON geometry of one of ``kinds`` in CRS84 (longitude, latitude) as a 2D shapely
    geometry; an empty one only with ``empty``. ``InvalidGeometry`` names ``where``: another
    type, coordinates shapely cannot read, or outside ±180, ±90."""
    if not isinstance(value, dict) or value.get("type") not in kinds:
        kind = value.get("type") if isinstance(value, dict) else value
        msg = f"{where} {shown(kind)}: expected a GeoJSON {' or '.join(kinds)} (CRS84)"
        raise InvalidGeometry(msg)
    try:
        geometry = shapely.force_2d(shape(value))
    except UNREADABLE as exc:
        msg = f"{where}: not a readable {value['type']}: {shown(exc)}"
        raise InvalidGeometry(msg) from None
    coords = shapely.get_coordinates(geometry)
    if (len(coords) == 0 and not empty) or not (
        ((coords[:, 0] >= -180) & (coords[:, 0] <= 180)).all()
        and ((coords[:, 1] >= -90) & (coords[:, 1] <= 90)).all()
    ):
        msg = f"{where}: coordinates must be longitude, latitude (CRS84) within ±180, ±90"
        raise InvalidGeometry(msg)
    return geometry


def _no_nul(value: str | None) -> str | None:
    if value is not None and "\x00" in value:
        msg = "a NUL character (%00) is not allowed in a text"
        raise ValueError(msg)
    return value


def _representable(value: datetime | None) -> datetime | None:
    """A time that UTC and China time can both hold (without an offset: China time)."""
    if value is None:
        return value
    aware = value if value.tzinfo is not None else value.replace(tzinfo=CHINA)
    try:
        aware.astimezone(UTC)
        aware.astimezone(CHINA)
    except OverflowError:
        msg = "a time between the years 1 and 9999 in both UTC and China time is expected"
        raise ValueError(msg) from None
    return value


def parse_bbox(value: str | None) -> BBox | None:
    """``minlon,minlat,maxlon,maxlat`` in WGS84."""
    if value is None:
        return None
    parts = value.split(",")
    try:
        box = tuple(float(p) for p in parts)
    except ValueError:
        box = ()
    if len(box) != 4 or any(v != v or abs(v) == float("inf") for v in box):
        msg = f"bbox {value!r}: expected minlon,minlat,maxlon,maxlat (four numbers)"
        raise InvalidInput(msg)
    minx, miny, maxx, maxy = box
    if not (-180 <= minx < maxx <= 180 and -90 <= miny < maxy <= 90):
        msg = f"bbox {value!r}: expected minlon < maxlon within ±180 and minlat < maxlat within ±90"
        raise InvalidInput(msg)
    return minx, miny, maxx, maxy


def body_crs(request: dict[str, Any]) -> str | None:
    """The ``crs`` member of a request body: a text, or None when absent."""
    crs = request.get("crs")
    if crs is not None and not isinstance(crs, str):
        msg = f"crs {shown(crs)} must be a string such as 'wgs84' or 'EPSG:4547'"
        raise InvalidInput(msg)
    return crs


Text = Annotated[str, AfterValidator(_no_nul)]
"""A text without NUL characters (PostgreSQL stores none)."""
OptionalText = Annotated[str | None, AfterValidator(_no_nul)]
OptionalMoment = Annotated[datetime | None, AfterValidator(_representable)]
"""An ISO 8601 time (China time without an offset) that every time zone can hold."""


def minutes_query(
    minutes: Annotated[
        str,
        Query(description="Band limits in minutes, comma-separated, each in (0, 60], at most 6."),
    ] = "1,3,5",
) -> Bands:
    """The ``minutes`` query parameter as bands (a 422 naming a bad value)."""
    return Bands.parse(minutes)


Minutes = Annotated[Bands, Depends(minutes_query)]
OriginsQuery = Annotated[OriginKind, Query(description="Which response origins count.")]
WeightQuery = Annotated[
    Weight,
    Query(description="What a grid weighs: its residents, or the grid events recorded in it."),
]
