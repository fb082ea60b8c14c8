"""Operations: ``GET /metrics`` (admin), ``GET /v1/audit`` (gis), ``GET /v1/keys`` (admin)."""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from geoservice import audit, keys, metrics
from geoservice.server.deps import identity_of, requires, service_of
from geoservice.server.documents import TEXT
from geoservice.server.models import AuditEntry, Identity, KeyListing, errors
from geoservice.server.params import OptionalText

router = APIRouter(tags=["operations"])


@router.get(
    "/metrics",
    dependencies=[requires("admin")],
    responses={200: {"content": {metrics.CONTENT_TYPE: TEXT}}, **errors(401, 403, 429)},
    response_class=Response,
    operation_id="metrics",
)
def prometheus_metrics(request: Request) -> Response:
    """Prometheus text format: requests and latency per route and status, the dataset
    version served, state build times and failures (this server process)."""
    return Response(metrics.exposition(), media_type=metrics.CONTENT_TYPE)


@router.get(
    "/v1/whoami",
    dependencies=[requires("tracker")],
    response_model=Identity,
    responses=errors(401, 429),
    operation_id="whoami",
)
def whoami(request: Request) -> Identity:
    """The key's name, role and units (what a client, such as the map page, may offer)."""
    identity = identity_of(request)
    return Identity(name=identity.name, role=identity.role, units=sorted(identity.units))


@router.get(
    "/v1/audit",
    dependencies=[requires("gis")],
    response_model=list[AuditEntry],
    responses=errors(401, 403, 429, 503),
    operation_id="audit",
)
async def audit_log(
    request: Request,
    limit: Annotated[int, Query(ge=1, le=10_000, description="Newest entries first.")] = 100,
    action: Annotated[
        OptionalText, Query(description="publish, promote, rollback, key_created or key_revoked.")
    ] = None,
) -> Response:
    """Who published, promoted or rolled back which version, who created or revoked keys."""

    def read() -> list[audit.Entry]:
        with service_of(request).engine.connect() as conn:
            return audit.entries(conn, limit=limit, action=action)

    entries = await run_in_threadpool(read)
    return Response(orjson.dumps([e.to_json() for e in entries]), media_type="application/json")


@router.get(
    "/v1/keys",
    dependencies=[requires("admin")],
    response_model=list[KeyListing],
    responses=errors(401, 403, 429, 503),
    operation_id="keys",
)
async def key_listing(request: Request) -> list[BaseModel]:
    """The keys (names, roles, dates; never the keys, which are not kept)."""

    def read() -> list[keys.KeyInfo]:
        with service_of(request).engine.connect() as conn:
            return keys.list_keys(conn)

    return [KeyListing(**info.__dict__) for info in await run_in_threadpool(read)]
