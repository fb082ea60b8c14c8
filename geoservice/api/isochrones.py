"""``GET /v1/isochrones``: 1/3/5-minute bands along the road network."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Query, Request, Response

from geoservice.isochrones import DEFAULT_BUFFER_M, check_buffer, isochrones
from geoservice.profiles import DEFAULT_PROFILE

router = APIRouter(prefix="/v1", tags=["isochrones"])


@router.get("/isochrones")
def isochrone_bands(
    request: Request,
    lon: str | None = Query(None, description="Longitude (or easting) of the origin."),
    lat: str | None = Query(None, description="Latitude (or northing) of the origin."),
    minutes: str = Query("1,3,5", description="Band limits in minutes, each in (0, 60], ≤ 6."),
    crs: str | None = Query(None, description="wgs84 (default), cgcs2000, gcj02, bd09, EPSG:NNNN"),
    profile: str = Query(DEFAULT_PROFILE, description="Speed profile: car or foot."),
    buffer_m: str | None = Query(
        None,
        description=f"Band half-width around reached roads, metres ({DEFAULT_BUFFER_M:g}).",
    ),
) -> Response:
    """Nested bands reached from the origin snapped onto the nearest road (≤ 500 m away).

    A sync endpoint on purpose: the work is CPU-bound and runs in the thread pool, off the
    event loop that serves ``/v1/locate``."""
    network = request.app.state.indexes.network(profile)
    result = isochrones(network, lon, lat, minutes, crs=crs, buffer_m=check_buffer(buffer_m))
    return Response(orjson.dumps(result.to_geojson()), media_type="application/geo+json")
