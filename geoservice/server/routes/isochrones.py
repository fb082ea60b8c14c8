"""``GET /v1/isochrones``: 1/3/5-minute bands along the road network."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from geoservice.crs import parse_crs
from geoservice.isochrones import DEFAULT_BUFFER_M, MAX_BUFFER_M
from geoservice.points import wgs84_point
from geoservice.profiles import DEFAULT_PROFILE, check_profile
from geoservice.server import handlers
from geoservice.server.deps import Version, ask, requires
from geoservice.server.media import GeoJSONResponse
from geoservice.server.models import Isochrones, errors
from geoservice.server.params import Minutes
from geoservice.server.routes.locate import Crs, Lat, Lon

router = APIRouter(prefix="/v1", tags=["isochrones"], dependencies=[requires("dispatch")])


@router.get(
    "/isochrones",
    response_model=Isochrones,
    response_class=GeoJSONResponse,
    responses=errors(401, 403, 404, 422, 429, 503),
    operation_id="isochrones",
)
async def isochrone_bands(
    request: Request,
    version: Version,
    lon: Lon,
    lat: Lat,
    minutes: Minutes,
    crs: Crs = None,
    profile: Annotated[str, Query(description="Speed profile: car or foot.")] = DEFAULT_PROFILE,
    buffer_m: Annotated[
        float,
        Query(
            description=f"Band half-width around reached roads, metres, in (0, {MAX_BUFFER_M:g}]."
        ),
    ] = DEFAULT_BUFFER_M,
) -> Response:
    """Nested bands reached from the origin snapped onto the nearest road (≤ 500 m away)."""
    x, y = wgs84_point(lon, lat, parse_crs(crs))
    profile_name = check_profile(profile)
    return await ask(
        request, handlers.isochrone_bands, x, y, minutes, profile_name, buffer_m, version=version
    )
