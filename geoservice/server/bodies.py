"""Reading JSON request bodies under a size limit (413 over it, 422 when not JSON), and
the points of a batch locate body."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
from fastapi import Request
from numpy.typing import NDArray

from geoservice.crs import parse_crs
from geoservice.errors import InvalidInput, PayloadTooLarge
from geoservice.points import to_wgs84_points
from geoservice.server.params import body_crs


async def read_json(request: Request, limit: int, label: str = "request body") -> Any:
    """The parsed body; refused before reading when ``Content-Length`` is over ``limit``."""
    size = request.headers.get("content-length")
    if size is not None and size.isdigit() and int(size) > limit:
        msg = f"{label} of {int(size):,} bytes is over the limit of {limit:,}"
        raise PayloadTooLarge(msg)
    raw = await request.body()
    if len(raw) > limit:
        msg = f"{label} of {len(raw):,} bytes is over the limit of {limit:,}"
        raise PayloadTooLarge(msg)
    return parse_json(raw)


def parse_json(body: bytes) -> Any:
    """``body`` parsed as JSON (a 422 naming where it is not)."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        msg = f"body is not valid JSON: {exc}"
        raise InvalidInput(msg) from None


def batch_points(request: Any) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The WGS84 lon, lat arrays of a parsed ``POST /v1/locate`` body, ``{"crs": NAME,
    "points": [[x, y] or {"lon": x, "lat": y}, ...]}`` (1 to ``MAX_POINTS`` points)."""
    if not isinstance(request, dict) or "points" not in request:
        msg = 'body must be an object {"crs": "wgs84", "points": [[lon, lat], ...]}'
        raise InvalidInput(msg)
    return to_wgs84_points(request["points"], parse_crs(body_crs(request)))
