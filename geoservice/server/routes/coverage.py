"""``/v1/coverage/...``: officers per unit, 1/3/5-minute response coverage, what-if."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from geoservice.coverage import OriginKind, Weight
from geoservice.server import handlers
from geoservice.server.deps import Version, ask, current_state, limited_body, requires, service_of
from geoservice.server.models import (
    GridMinutes,
    LiveCoverage,
    OfficerCoverage,
    ResponseCoverage,
    ScenarioCoverage,
    ScenarioRequest,
    errors,
    json_body,
)
from geoservice.server.params import Minutes, OriginsQuery, WeightQuery

router = APIRouter(prefix="/v1/coverage", tags=["coverage"], dependencies=[requires("planner")])

MAX_SCENARIO_BYTES = 1024 * 1024


@router.get(
    "/officers",
    response_model=OfficerCoverage,
    responses=errors(401, 403, 404, 429, 503),
    operation_id="coverage_officers",
)
async def officers(request: Request, version: Version) -> Response:
    """Does every unit have its own officer? Per town, heaviest units, misfits."""
    return await ask(request, handlers.coverage_officers, version=version)


@router.get(
    "/response",
    response_model=ResponseCoverage,
    responses=errors(401, 403, 404, 422, 429, 503),
    operation_id="coverage_response",
)
async def response(
    request: Request,
    version: Version,
    minutes: Minutes,
    origins: OriginsQuery = OriginKind.ALL,
    weight: WeightQuery = Weight.RESIDENTS,
) -> Response:
    """Share of grids, area and residents reached within each band along the roads."""
    return await ask(request, handlers.coverage_response, minutes, origins, weight, version=version)


@router.get(
    "/grids",
    response_model=GridMinutes,
    responses=errors(401, 403, 404, 422, 429, 503),
    operation_id="coverage_grids",
)
async def grids(
    request: Request,
    version: Version,
    minutes: Minutes,
    origins: OriginsQuery = OriginKind.ALL,
    weight: WeightQuery = Weight.RESIDENTS,
) -> Response:
    """Every grid's minutes to reach (for a map): codes and minutes, in code order."""
    return await ask(request, handlers.coverage_grids, minutes, origins, weight, version=version)


@router.get(
    "/live",
    response_model=LiveCoverage,
    responses=errors(401, 403, 404, 422, 429, 503),
    operation_id="coverage_live",
)
async def live(
    request: Request,
    minutes: Minutes,
    grids: Annotated[bool, Query(description="Add every grid's minutes (for a map).")] = False,
) -> Response:
    """Response coverage now: from stations and posts, and from the patrol units where
    they last reported (not their segments); ``patrols`` lists the positions used."""
    state = await current_state(request)
    positions = tuple(await run_in_threadpool(service_of(request).live.current))
    return await ask(
        request, handlers.coverage_live, minutes, positions, grids, version=state.version
    )


@router.post(
    "/scenario",
    response_model=ScenarioCoverage,
    responses=errors(401, 403, 404, 413, 422, 429, 503),
    openapi_extra=json_body(ScenarioRequest),
    operation_id="coverage_scenario",
)
async def scenario(
    request: Request,
    version: Version,
    body: Annotated[bytes, Depends(limited_body(MAX_SCENARIO_BYTES, "scenario body"))],
) -> Response:
    """What if patrol points were added, origins removed, roads closed or class speeds
    changed? The answer of ``/response`` for the changed copy, its ``baseline`` and the
    ``difference``; the dataset is not touched."""
    return await ask(request, handlers.coverage_scenario, body, version=version)
