"""The FastAPI application: ``create_app(settings)``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from geoservice import __version__
from geoservice.api import coverage, health, isochrones, layers, locate, models, problems
from geoservice.api.fastpath import LocateFastPath
from geoservice.service import Service
from geoservice.settings import Settings

BODY_MODELS = (models.LocateBatchRequest, models.ScenarioRequest)
"""Bodies read by the routes themselves (under a size limit), documented in the schema."""


def create_app(settings: Settings | None = None) -> LocateFastPath:
    """Build the app; the service (database, workers, state) starts in the lifespan.

    The FastAPI app is wrapped in ``LocateFastPath``, which answers valid
    ``GET /v1/locate`` requests without FastAPI's per-request machinery.
    """
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service = Service(settings)
        app.state.settings = settings
        app.state.service = service
        service.start()
        try:
            yield
        finally:
            await run_in_threadpool(service.close)

    app = FastAPI(
        title="geoservice",
        version=__version__,
        description="Grid governance and police coverage for Huicheng District (惠城区).",
        lifespan=lifespan,
    )
    problems.install(app)
    for module in (health, locate, isochrones, coverage, layers):
        app.include_router(module.router)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return LocateFastPath(app)


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's schema plus the body models the routes read themselves."""
    if app.openapi_schema is None:
        schema = FastAPI.openapi(app)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for model in BODY_MODELS:
            body = model.model_json_schema(ref_template="#/components/schemas/{model}")
            components.update(body.pop("$defs", {}))
            components[model.__name__] = body
        app.openapi_schema = schema
    return app.openapi_schema
