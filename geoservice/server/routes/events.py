"""``/v1/events``: the grid event register — record events, count them, list the overdue."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from geoservice.events import StatsBy, event_stats, overdue_events
from geoservice.server import handlers
from geoservice.server.deps import ask, identity_of, limited_body, requires, service_of
from geoservice.server.media import OrjsonResponse
from geoservice.server.models import (
    EventsRecorded,
    EventsRequest,
    EventStats,
    OverdueEvents,
    errors,
    json_body,
)
from geoservice.server.params import OptionalMoment

router = APIRouter(prefix="/v1/events", tags=["events"])

MAX_EVENTS_BYTES = 4 * 1024 * 1024


@router.post(
    "",
    response_model=EventsRecorded,
    responses=errors(401, 403, 404, 413, 422, 429, 503),
    openapi_extra=json_body(EventsRequest),
    operation_id="record_events",
    dependencies=[requires("dispatch")],
)
async def record(
    request: Request,
    body: Annotated[bytes, Depends(limited_body(MAX_EVENTS_BYTES, "events body"))],
) -> Response:
    """Record grid events: each checked, located in the dataset version current at its
    time, routed by its category; all or none are recorded. Ids are unique."""
    return await ask(request, handlers.record_events, body, identity_of(request).name)


@router.get(
    "/stats",
    response_model=EventStats,
    responses=errors(401, 403, 422, 429, 503),
    operation_id="event_stats",
    dependencies=[requires("planner")],
)
async def stats(
    request: Request,
    by: Annotated[StatsBy, Query(description="What to group the events by.")] = StatsBy.TOWN,
    start: Annotated[
        OptionalMoment, Query(alias="from", description="From this time (ISO 8601), inclusive.")
    ] = None,
    end: Annotated[
        OptionalMoment, Query(alias="to", description="Up to this time (ISO 8601), exclusive.")
    ] = None,
) -> Response:
    """Per town, unit, grid, category or month: events, closed, open, closure rate,
    median handling hours of the closed, and open events past their deadline."""
    engine = service_of(request).engine
    answer = await run_in_threadpool(event_stats, engine, by, start, end)
    return OrjsonResponse(answer)


@router.get(
    "/overdue",
    response_model=OverdueEvents,
    responses=errors(401, 403, 422, 429, 503),
    operation_id="overdue_events",
    dependencies=[requires("planner")],
)
async def overdue(
    request: Request,
    as_of: Annotated[
        OptionalMoment, Query(description="Overdue at this time (default: now).")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> Response:
    """Open events past their category's deadline, most overdue first, with who handles
    them."""
    engine = service_of(request).engine
    answer = await run_in_threadpool(overdue_events, engine, as_of, limit)
    return OrjsonResponse(answer)
