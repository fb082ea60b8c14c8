"""``/v1/coverage/...``: officers per unit, 1/3/5-minute response coverage, what-if."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Query, Request, Response

from geoservice.api.bodies import read_json
from geoservice.coverage import DEFAULT_ORIGINS, Scenario, officer_coverage
from geoservice.errors import InvalidInput

router = APIRouter(prefix="/v1/coverage", tags=["coverage"])

MAX_SCENARIO_BYTES = 1024 * 1024
JSON = "application/json"


@router.get("/officers")
def officers(request: Request) -> Response:
    """Does every unit have its own officer? Per town, heaviest units, misfits."""
    body = officer_coverage(request.app.state.engine)
    return Response(orjson.dumps(body), media_type=JSON)


@router.get("/response")
def response(
    request: Request,
    minutes: str = Query("1,3,5", description="Band limits in minutes, each in (0, 60]."),
    origins: str = Query(DEFAULT_ORIGINS, description="stations, posts, patrols or all."),
) -> Response:
    """Share of grids, area and residents reached within each band along the roads."""
    model = request.app.state.indexes.coverage()
    return Response(orjson.dumps(model.response(minutes, origins).to_json()), media_type=JSON)


@router.post("/scenario")
async def scenario(request: Request) -> Response:
    """Body: ``{"minutes": [1, 3, 5], "origins": "all", "add_points": [[lon, lat]],
    "remove_origins": [code], "close_edges": [id], "close_roads": [name],
    "speeds_kmh": {class: km/h}, "crs": "wgs84"}``. The dataset is not touched."""
    body = await read_json(request, MAX_SCENARIO_BYTES, "scenario body")
    changes = Scenario.from_json(body)
    origins = body.get("origins", DEFAULT_ORIGINS)
    if not isinstance(origins, str):
        msg = f"origins {origins!r}: expected stations, posts, patrols or all"
        raise InvalidInput(msg)
    model = request.app.state.indexes.coverage()
    result = model.scenario(changes, body.get("minutes", "1,3,5"), origins)
    return Response(orjson.dumps(result.to_json()), media_type=JSON)
