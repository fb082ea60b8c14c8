"""``GET /v1/locate`` and ``POST /v1/locate``: the lean dispatch path."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Query, Request, Response

from geoservice.api.bodies import read_json
from geoservice.errors import InvalidInput
from geoservice.locate import locate_points, parse_point

router = APIRouter(prefix="/v1", tags=["locate"])

MAX_BODY_BYTES = 8 * 1024 * 1024
JSON = "application/json"


@router.get("/locate")
async def locate_one(
    request: Request,
    lon: str | None = Query(None, description="Longitude (or easting) of the point."),
    lat: str | None = Query(None, description="Latitude (or northing) of the point."),
    crs: str | None = Query(None, description="wgs84 (default), cgcs2000, gcj02, bd09, EPSG:NNNN"),
) -> Response:
    """The base grid of one point with its whole hierarchy, officers and station."""
    x, y = parse_point(lon, lat, crs)
    index = request.app.state.indexes.index
    return Response(orjson.dumps(index.locate(x, y)), media_type=JSON)


@router.post("/locate")
async def locate_batch(request: Request) -> Response:
    """Body ``{"crs": "wgs84", "points": [[lon, lat], ...]}`` (1 to 100,000 points);
    results in input order."""
    body = await read_json(request, MAX_BODY_BYTES)
    if not isinstance(body, dict) or "points" not in body:
        msg = 'body must be an object {"crs": "wgs84", "points": [[lon, lat], ...]}'
        raise InvalidInput(msg)
    crs = body.get("crs")
    if crs is not None and not isinstance(crs, str):
        msg = f"crs {crs!r} must be a string"
        raise InvalidInput(msg)
    index = request.app.state.indexes.index
    batch = locate_points(index, body["points"], crs)
    return Response(index.results_json(batch), media_type=JSON)
