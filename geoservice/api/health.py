"""``GET /health``."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter, Request
from pydantic import BaseModel

from geoservice.datasets import current_version_id

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str
    database: str
    dataset_version: int | None


@router.get("/health", response_model=Health)
def health(request: Request) -> Health:
    """``ok`` when PostGIS answers; ``degraded`` (never an error) when it does not."""
    state = request.app.state
    try:
        with state.engine.connect() as conn:
            version = current_version_id(conn)
    except sa.exc.SQLAlchemyError:
        return Health(status="degraded", database="down", dataset_version=state.last_version)
    state.last_version = version
    return Health(status="ok", database="up", dataset_version=version)
