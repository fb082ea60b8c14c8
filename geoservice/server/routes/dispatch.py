"""``/v1/dispatch`` and ``/v1/patrols/positions``: who gets there first, and where the
patrol units are."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from geoservice.crs import parse_crs
from geoservice.errors import Forbidden
from geoservice.metrics import POSITIONS_REFUSED
from geoservice.patrols import Refused, check_positions, refuse_jumps, split_by_age
from geoservice.points import wgs84_point
from geoservice.responders import MAX_K
from geoservice.server import handlers
from geoservice.server.bodies import parse_json
from geoservice.server.deps import (
    ask,
    current_state,
    identity_of,
    limited_body,
    requires,
    service_of,
)
from geoservice.server.models import (
    Dispatch,
    PositionsRecorded,
    PositionsRequest,
    RefusedPosition,
    errors,
    json_body,
)
from geoservice.server.routes.locate import Crs, Lat, Lon

router = APIRouter(prefix="/v1", tags=["dispatch"])

MAX_POSITIONS_BYTES = 2 * 1024 * 1024


@router.get(
    "/dispatch",
    response_model=Dispatch,
    responses=errors(401, 403, 404, 422, 429, 503),
    operation_id="dispatch",
    dependencies=[requires("dispatch")],
)
async def dispatch(
    request: Request,
    lon: Lon,
    lat: Lat,
    crs: Crs = None,
    k: Annotated[int, Query(ge=1, le=MAX_K, description="How many responders.")] = 3,
    routes: Annotated[
        bool, Query(description="Add each responder's road route (a GeoJSON LineString).")
    ] = False,
) -> Response:
    """The locate answer for an incident and the ``k`` stations, posts and patrol units
    (at their last positions) that reach it first by road, with ETA and road distance."""
    x, y = wgs84_point(lon, lat, parse_crs(crs))
    state = await current_state(request)
    positions = tuple(await run_in_threadpool(service_of(request).live.current))
    return await ask(request, handlers.dispatch, x, y, k, positions, routes, version=state.version)


@router.post(
    "/patrols/positions",
    response_model=PositionsRecorded,
    responses=errors(401, 403, 404, 413, 422, 429, 503),
    openapi_extra=json_body(PositionsRequest),
    operation_id="record_patrol_positions",
    dependencies=[requires("tracker")],
)
async def record_positions(
    request: Request,
    body: Annotated[bytes, Depends(limited_body(MAX_POSITIONS_BYTES, "positions body"))],
) -> Response:
    """Patrol units' GPS positions, from a key bound to those units (a ``tracker`` key;
    another unit is a 403, nothing kept): all checked (known units, inside the district,
    sane times) before any is kept; positions older than the kept age are ignored; a
    position implying more than ``GEOSERVICE_MAX_SPEED_KMH`` from the unit's last one is
    refused (listed in ``refused``, counted in ``/metrics``). While PostgreSQL is away they
    go to the server's durable journal and are written when it is back (a 503 "journal
    full" only when neither takes them)."""
    service = service_of(request)
    identity = identity_of(request)
    state = await current_state(request)
    max_speed_kmh = service.settings.max_speed_kmh

    def record() -> tuple[int, int, list[Refused]]:
        checked = PositionsRequest.model_validate(parse_json(body)).positions
        now = datetime.now(UTC)
        check_positions(checked, set(state.patrol_units()), state.index, now=now)
        # whose positions first, however old: a key never learns more about other units
        foreign = sorted({p.unit for p in checked if not identity.may_post_for(p.unit)})
        if foreign:
            POSITIONS_REFUSED.labels("unit").inc()
            bound = ", ".join(sorted(identity.units)) or "no unit"
            msg = (
                f"the key {identity.name!r} may not post positions of unit {foreign[0]!r}"
                f"{f' (nor {len(foreign) - 1} more)' if len(foreign) > 1 else ''}; "
                f"it is bound to {bound}"
            )
            raise Forbidden(msg)
        positions, too_old = split_by_age(checked, now, service.settings.position_max_age_s)
        last = {p.unit: p for p in service.live.current()}
        kept, refused = refuse_jumps(positions, last, max_speed_kmh)
        if refused:
            POSITIONS_REFUSED.labels("speed").inc(len(refused))
        service.positions.record(kept)  # PostGIS, or the journal while it is away
        return len(kept), too_old, refused

    recorded, too_old, refused = await run_in_threadpool(record)
    answer = PositionsRecorded(
        recorded=recorded,
        ignored_too_old=too_old,
        max_age_s=service.settings.position_max_age_s,
        refused=[RefusedPosition(**r.__dict__) for r in refused],
        max_speed_kmh=max_speed_kmh,
        dataset_version=state.version,
    )
    return Response(answer.model_dump_json(), media_type="application/json")
