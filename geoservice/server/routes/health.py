"""``GET /health`` (liveness) and ``GET /ready`` (readiness); no key needed."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from geoservice.datasets import current_version_id
from geoservice.server.deps import service_of
from geoservice.server.documents import Ready
from geoservice.server.models import Health, errors
from geoservice.server.problems import problem

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health, operation_id="health")
def health(request: Request) -> Health:
    """``ok`` when PostGIS answers; ``degraded`` (never an error) when it does not, or
    when patrol positions this server received still wait in its journal (dispatch and
    live coverage answer from the positions in memory meanwhile)."""
    service = service_of(request)
    try:
        with service.engine.connect() as conn:
            version = current_version_id(conn)
    except sa.exc.SQLAlchemyError:
        return Health(status="degraded", database="down", dataset_version=service.last_version)
    service.last_version = version
    if service.positions.degraded:
        return Health(status="degraded", database="up", dataset_version=version)
    return Health(status="ok", database="up", dataset_version=version)


@router.get("/ready", response_model=Ready, responses=errors(503), operation_id="ready")
def ready(request: Request) -> JSONResponse:
    """200 once a dataset version is loaded and its in-memory state built, else 503."""
    state = service_of(request).current
    if state is None:
        return problem(503, "no dataset version is loaded yet", "Not ready")
    return JSONResponse({"status": "ready", "dataset_version": state.version})
