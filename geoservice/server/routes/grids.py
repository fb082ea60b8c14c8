"""``/v1/grids/propose``: grid design for GIS staff (``geoservice grids propose`` over HTTP),
computed in the analysis lane."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Request, Response
from pydantic import Field

from geoservice import grid_design
from geoservice.errors import InvalidInput
from geoservice.server import tasks
from geoservice.server.deps import ask, requires
from geoservice.server.documents import GeoJSONResponse, GridProposal
from geoservice.server.models import Strict, errors
from geoservice.server.workers import Lane, Task

router = APIRouter(prefix="/v1/grids", tags=["grids"], dependencies=[requires("gis")])

Codes = Annotated[list[Annotated[str, Field(max_length=64)]], Field(max_length=3000)]


class ProposeRequest(Strict):
    """Which large grids, and the band (as ``geoservice grids propose``)."""

    large_grids: Codes = Field(default_factory=list)
    units: Codes = Field(default_factory=list)
    towns: Codes = Field(default_factory=list)
    all: bool = False
    households: str | None = Field(None, max_length=32, examples=["300-500"])
    residents: str | None = Field(None, max_length=32, examples=["800-1500"])
    weight: Literal["events"] | None = None
    keep_fitting: bool = True
    version: int | None = Field(None, ge=1, le=2**31 - 1)


@router.post(
    "/propose",
    operation_id="grids_propose",
    response_model=GridProposal,
    response_class=GeoJSONResponse,
    responses={
        200: {
            "description": "``report`` (as report.json) and ``proposal``: the grids of the "
            "large grids in scope as a GeoJSON FeatureCollection.",
        },
        **errors(401, 403, 404, 415, 422, 429, 503),
    },
)
async def propose(request: Request, body: ProposeRequest) -> Response:
    """Propose base grids whose size lies in the band, nested in their large grids, with
    the grids already in the band kept (``keep_fitting``). Writes nothing: `geoservice
    grids propose --out DIR` writes the same as a bundle to load as a draft."""
    if body.households is not None and body.residents is not None:
        msg = "give households or residents, not both"
        raise InvalidInput(msg)
    band = (
        grid_design.Band.parse("residents", body.residents)
        if body.residents is not None
        else grid_design.Band.parse("households", body.households or "300-500")
    )
    scope = grid_design.Scope(
        tuple(body.large_grids), tuple(body.units), tuple(body.towns), body.all
    )
    task = Task(
        tasks.grids_propose, None, (body.version, scope, band, body.keep_fitting, body.weight)
    )
    return await ask(request, Lane.ANALYSIS, task)
