"""``/v1/dispatch`` and ``/v1/patrols/positions``: who gets there first, and where the
patrol units are."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from geoservice import tasks
from geoservice.api.deps import ask, current_state, limited_body, requires, service_of
from geoservice.api.locate import Crs, Lat, Lon
from geoservice.api.models import Dispatch, PositionsRecorded, PositionsRequest, errors, json_body
from geoservice.locate import parse_point
from geoservice.patrols import parse_positions
from geoservice.responders import MAX_K
from geoservice.tasks import parse_json
from geoservice.workers import Lane, Task

router = APIRouter(prefix="/v1", tags=["dispatch"], dependencies=[requires("dispatch")])

MAX_POSITIONS_BYTES = 2 * 1024 * 1024


@router.get(
    "/dispatch",
    response_model=Dispatch,
    responses=errors(401, 403, 404, 422, 429, 503),
    operation_id="dispatch",
)
async def dispatch(
    request: Request,
    lon: Lon = None,
    lat: Lat = None,
    crs: Crs = None,
    k: Annotated[int, Query(ge=1, le=MAX_K, description="How many responders.")] = 3,
) -> Response:
    """The locate answer for an incident and the ``k`` stations, posts and patrol units
    (at their last positions) that reach it first by road, with ETA and road distance."""
    x, y = parse_point(lon, lat, crs)
    state = await current_state(request)
    positions = tuple(await run_in_threadpool(service_of(request).live.current))
    task = Task(tasks.dispatch, state.version, (x, y, k, positions))
    return await ask(request, Lane.DISPATCH, task)


@router.post(
    "/patrols/positions",
    response_model=PositionsRecorded,
    responses=errors(401, 403, 404, 413, 422, 429, 503),
    openapi_extra=json_body(PositionsRequest),
    operation_id="record_patrol_positions",
)
async def record_positions(
    request: Request,
    body: Annotated[bytes, Depends(limited_body(MAX_POSITIONS_BYTES, "positions body"))],
) -> Response:
    """Patrol units' GPS positions: all checked (known units, inside the district, sane
    times) before any is kept; positions older than the kept age are ignored."""
    service = service_of(request)
    state = await current_state(request)

    def record() -> tuple[int, int]:
        positions, too_old = parse_positions(
            parse_json(body),
            set(state.patrol_units()),
            state.index,
            now=datetime.now(UTC),
            max_age_s=service.settings.position_max_age_s,
        )
        service.positions.record(positions)
        service.live.update(positions)
        return len(positions), too_old

    recorded, too_old = await run_in_threadpool(record)
    answer = {
        "recorded": recorded,
        "ignored_too_old": too_old,
        "max_age_s": service.settings.position_max_age_s,
    }
    return Response(orjson.dumps(answer), media_type="application/json")
