"""``GET /v1/layers/{layer}``: boundaries, stations and patrol segments as GeoJSON."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from geoservice.layers import check_layer
from geoservice.server import handlers
from geoservice.server.deps import Version, ask, requires
from geoservice.server.media import GeoJSONResponse
from geoservice.server.models import Layer, errors
from geoservice.server.params import parse_bbox

router = APIRouter(prefix="/v1", tags=["layers"], dependencies=[requires("planner")])


@router.get(
    "/layers/{layer}",
    response_model=Layer,
    response_class=GeoJSONResponse,
    responses=errors(401, 403, 404, 422, 429, 503),
    operation_id="layer",
)
async def layer_features(
    request: Request,
    version: Version,
    layer: str,
    bbox: Annotated[str | None, Query(description="minlon,minlat,maxlon,maxlat (WGS84)")] = None,
) -> Response:
    """district, town, unit, large_grid, grid, station or patrol_segment as GeoJSON."""
    name, box = check_layer(layer), parse_bbox(bbox)
    return await ask(request, handlers.layer_features, name, box, version=version)
