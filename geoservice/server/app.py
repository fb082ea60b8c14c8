"""The FastAPI application: ``create_app(settings)``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from geoservice import __version__
from geoservice.server import documents, models, problems
from geoservice.server.edge import PUBLIC_PATHS, Edge
from geoservice.server.routes import (
    admin,
    coverage,
    datasets,
    dispatch,
    drafts,
    events,
    grids,
    health,
    isochrones,
    layers,
    locate,
    ogc,
    reports,
    webmap,
)
from geoservice.server.service import Service
from geoservice.settings import Settings

SCHEMA_MODELS = (
    models.LocateBatchRequest,
    models.ScenarioRequest,
    models.PositionsRequest,
    models.EventsRequest,
    models.Problem,
    documents.DiffFeatures,
    documents.FeatureIn,
    documents.FeaturePatch,
)
"""Models the routes do not declare to FastAPI — bodies they read themselves (under a size
limit), the problem+json errors — added to the schema's components."""
DOCS_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>geoservice API</title>
<link rel="stylesheet" href="/static/swagger-ui/swagger-ui.css">
<link rel="icon" href="/static/swagger-ui/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/static/swagger-ui/swagger-ui-bundle.js"></script>
<script src="/static/swagger-ui/init.js"></script>
</body>
</html>
"""
"""Swagger UI (``/docs``): the service's own files only, no inline script."""
SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer", "description": "An API key as a bearer token."},
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
}


def create_app(settings: Settings | None = None) -> Edge:
    """Build the app; the service (database, keys, workers, state) starts in the lifespan.

    The FastAPI app is wrapped in ``Edge``: keys, rate limits, request ids, the access
    log, metrics, and the lean path answering valid ``GET /v1/locate`` requests.
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
        description=(
            "Grid governance and police coverage for Huicheng District (惠城区). Every "
            "operation but health, readiness and these docs needs a key: "
            "`Authorization: Bearer KEY` or `X-API-Key: KEY` (roles dispatch < planner < "
            "gis < admin). Errors are `application/problem+json` (RFC 9457)."
        ),
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    problems.install(app)
    for module in (
        health,
        locate,
        dispatch,
        isochrones,
        coverage,
        events,
        layers,
        datasets,
        admin,
        ogc,
        drafts,
        grids,
        reports,
        webmap,
    ):
        app.include_router(module.router)
    app.include_router(ogc.basemap)
    app.mount("/static", StaticFiles(packages=[("geoservice", "static")]), name="static")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        """Swagger UI from the service's own files (no internet needed, no inline script:
        the page's Content-Security-Policy allows only the service's own)."""
        return HTMLResponse(DOCS_PAGE, headers=webmap.PAGE_HEADERS)

    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return Edge(app, auth=settings.auth)


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's schema plus ``SCHEMA_MODELS`` and the key schemes."""
    if app.openapi_schema is None:
        schema = FastAPI.openapi(app)
        components = schema.setdefault("components", {})
        schemas = components.setdefault("schemas", {})
        for model in SCHEMA_MODELS:
            body = model.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas.update(body.pop("$defs", {}))
            schemas[model.__name__] = body
        components["securitySchemes"] = SECURITY_SCHEMES
        schema["security"] = [{"bearer": []}, {"apiKey": []}]
        for path, operations in schema["paths"].items():
            if path in PUBLIC_PATHS:
                for operation in operations.values():
                    operation["security"] = []
        problems.declare_version_reads(schema)
        problems.declare_problems(schema)
        app.openapi_schema = schema
    return app.openapi_schema
