"""The FastAPI application: ``create_app(settings)``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from geoservice import __version__
from geoservice.api import coverage, health, isochrones, layers, locate, problems
from geoservice.api.fastpath import LocateFastPath
from geoservice.db import create_engine
from geoservice.index_holder import IndexHolder
from geoservice.settings import Settings


def create_app(settings: Settings | None = None) -> LocateFastPath:
    """Build the app; the engine is opened in the lifespan, not at import.

    The FastAPI app is wrapped in ``LocateFastPath``, which answers valid
    ``GET /v1/locate`` requests without FastAPI's per-request machinery.
    """
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = settings
        app.state.engine = create_engine(settings)
        app.state.last_version = None
        app.state.indexes = IndexHolder(app.state.engine)
        app.state.indexes.refresh()
        app.state.indexes.listen()
        try:
            yield
        finally:
            app.state.indexes.close()
            app.state.engine.dispose()

    app = FastAPI(
        title="geoservice",
        version=__version__,
        description="Grid governance and police coverage for Huicheng District (惠城区).",
        lifespan=lifespan,
    )
    problems.install(app)
    app.include_router(health.router)
    app.include_router(locate.router)
    app.include_router(isochrones.router)
    app.include_router(coverage.router)
    app.include_router(layers.router)
    return LocateFastPath(app)
