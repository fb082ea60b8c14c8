"""Shared fixtures: a real, throw-away PostGIS database per test session.

The server is the one `make test` started (or GEOSERVICE_DATABASE_URL). An
unreachable server fails the run; nothing here skips.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from geoservice.db import create_engine, libpq_conninfo, upgrade
from geoservice.settings import Settings

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _admin_engine(settings: Settings) -> Engine:
    url = settings.sqlalchemy_url().set(database="postgres")
    return sa.create_engine(url, isolation_level="AUTOCOMMIT")


@pytest.fixture(scope="session")
def base_settings() -> Settings:
    return Settings()


@pytest.fixture(scope="session")
def make_database(base_settings: Settings) -> Iterator:
    """Factory: a fresh empty database (extensions only) as Settings; dropped at the end."""
    admin = _admin_engine(base_settings)
    created: list[str] = []

    def make(migrate: bool = True) -> Settings:
        name = f"geoservice_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
        created.append(name)
        url = base_settings.sqlalchemy_url().set(database=name)
        settings = Settings(database_url=url.render_as_string(hide_password=False))
        if migrate:
            engine = create_engine(settings)
            upgrade(engine)
            engine.dispose()
        return settings

    yield make
    with admin.connect() as conn:
        for name in created:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    admin.dispose()


@pytest.fixture()
def settings(make_database) -> Settings:
    """A migrated, empty database of its own for one test."""
    return make_database()


@pytest.fixture()
def engine(settings: Settings) -> Iterator[Engine]:
    engine = create_engine(settings)
    yield engine
    engine.dispose()


@pytest.fixture()
def conninfo(settings: Settings) -> str:
    return libpq_conninfo(settings.sqlalchemy_url())
