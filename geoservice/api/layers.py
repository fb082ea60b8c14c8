"""``GET /v1/layers/{layer}``: the current boundaries, stations and patrol segments."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Query, Request, Response

from geoservice.layers import parse_bbox, read_features

router = APIRouter(prefix="/v1", tags=["layers"])


@router.get("/layers/{layer}")
def layer_features(
    request: Request,
    layer: str,
    bbox: str | None = Query(None, description="minlon,minlat,maxlon,maxlat (WGS84)"),
) -> Response:
    """district, town, unit, large_grid, grid, station or patrol_segment as GeoJSON."""
    body = read_features(request.app.state.engine, layer, parse_bbox(bbox))
    return Response(orjson.dumps(body), media_type="application/geo+json")
