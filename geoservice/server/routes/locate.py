"""``GET /v1/locate`` and ``POST /v1/locate``: the dispatch lookups."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from geoservice.crs import parse_crs
from geoservice.points import wgs84_point
from geoservice.server import handlers
from geoservice.server.deps import Version, ask, current_state, limited_body, requires
from geoservice.server.media import OrjsonResponse
from geoservice.server.models import (
    LocateBatch,
    LocateBatchRequest,
    LocateResult,
    errors,
    json_body,
)

router = APIRouter(prefix="/v1", tags=["locate"], dependencies=[requires("dispatch")])

MAX_BODY_BYTES = 8 * 1024 * 1024

Lon = Annotated[float, Query(description="Longitude (or easting) in ``crs``.", examples=[114.41])]
Lat = Annotated[float, Query(description="Latitude (or northing) in ``crs``.", examples=[23.11])]
Crs = Annotated[
    str | None,
    Query(description="wgs84 (default), cgcs2000, gcj02, bd09 or EPSG:NNNN.", examples=["gcj02"]),
]


@router.get(
    "/locate",
    response_model=LocateResult,
    responses=errors(401, 403, 404, 422, 429, 503),
    operation_id="locate",
)
async def locate_one(
    request: Request, version: Version, lon: Lon, lat: Lat, crs: Crs = None
) -> Response:
    """The base grid of one point with its whole hierarchy, officers, station and post.

    Valid requests of the current version are answered before this route, by the server's
    lean path; this route gives the same answers, the errors, and earlier versions."""
    x, y = wgs84_point(lon, lat, parse_crs(crs))
    state = await current_state(request)
    if state.version == version:
        return OrjsonResponse(state.index.locate(x, y))
    return await ask(request, handlers.locate_one, x, y, version=version)


@router.post(
    "/locate",
    response_model=LocateBatch,
    responses=errors(401, 403, 404, 413, 422, 429, 503),
    openapi_extra=json_body(LocateBatchRequest),
    operation_id="locate_batch",
)
async def locate_batch(
    request: Request,
    version: Version,
    body: Annotated[bytes, Depends(limited_body(MAX_BODY_BYTES, "request body"))],
) -> Response:
    """1 to 100,000 points at once; results in input order (8 MB body at most)."""
    return await ask(request, handlers.locate_batch, body, version=version)
