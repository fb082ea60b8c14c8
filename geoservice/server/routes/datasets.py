"""``/v1/datasets``: the published versions and drafts, and what changed between two."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from geoservice import datasets, drafts
from geoservice.audit import Actor
from geoservice.export import MEDIA_TYPE
from geoservice.server import handlers
from geoservice.server.deps import ask, identity_of, requires, service_of
from geoservice.server.documents import BINARY, DiffFeatures, alternatives
from geoservice.server.media import GEOJSON
from geoservice.server.models import DatasetDiff, DatasetVersion, DraftOpened, errors
from geoservice.server.params import MAX_ID, Text

router = APIRouter(prefix="/v1/datasets", tags=["datasets"], dependencies=[requires("planner")])


@router.get(
    "",
    response_model=list[DatasetVersion],
    responses=errors(401, 403, 429, 503),
    operation_id="datasets",
)
async def dataset_versions(request: Request) -> list[BaseModel]:
    """Every dataset version, oldest first: who made it, from which files, its status
    (``published`` or ``draft``) and whether it is the current one."""

    def read() -> list[datasets.DatasetVersion]:
        with service_of(request).engine.connect() as conn:
            return datasets.list_versions(conn)

    return [DatasetVersion(**v.__dict__) for v in await run_in_threadpool(read)]


@router.post(
    "/drafts",
    status_code=201,
    response_model=DraftOpened,
    dependencies=[requires("gis")],
    responses=errors(401, 403, 404, 429, 503),
    operation_id="draft_open",
)
async def open_draft(
    request: Request,
    note: Annotated[Text, Query(max_length=500, description="Why the draft is opened.")] = "",
) -> DraftOpened:
    """Open a draft holding the current version's layers, to edit over its OGC API
    (``/ogc/drafts/N``: QGIS edits it with OGC API – Features Part 4); ``geoservice
    promote N`` checks the whole draft and makes it current."""
    identity = identity_of(request)
    service = service_of(request)
    draft = await run_in_threadpool(
        drafts.open_draft, service.editor, actor=Actor(identity.name, "api"), note=note
    )
    return DraftOpened(draft=draft, ogc=f"/ogc/drafts/{draft}")


@router.get(
    "/{a}/diff/{b}",
    response_model=DatasetDiff,
    responses={
        200: alternatives((GEOJSON, DiffFeatures)),
        **errors(401, 403, 404, 422, 429, 503),
    },
    operation_id="dataset_diff",
)
async def dataset_diff(
    request: Request,
    a: Annotated[int, Path(ge=1, le=MAX_ID, description="The version compared from.")],
    b: Annotated[int, Path(ge=1, le=MAX_ID, description="The version compared to.")],
    f: Annotated[
        Literal["json", "geojson"],
        Query(description="json: codes per layer; geojson: the changed features, for a map."),
    ] = "json",
) -> Response:
    """Per layer, the codes added, removed, with changed geometry and with changed
    attributes from version ``a`` to version ``b`` (roads: their edge counts)."""
    return await ask(request, handlers.dataset_diff, a, b, f == "geojson")


@router.get(
    "/{n}/export.gpkg",
    response_class=Response,
    responses={
        200: {"content": {MEDIA_TYPE: BINARY}, "description": "The version as a GeoPackage."},
        **errors(401, 403, 404, 422, 429, 503),
    },
    operation_id="dataset_export",
)
async def dataset_export(request: Request, n: Annotated[int, Path(ge=1, le=MAX_ID)]) -> Response:
    """Every layer of version ``n`` as one GeoPackage bundle (officers as a table without
    personal columns, ``base_version`` = n in its metadata): the start of a revision,
    loaded back with ``geoservice etl bundle``."""
    return await ask(request, handlers.dataset_export, n)
