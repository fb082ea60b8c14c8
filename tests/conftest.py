"""Shared fixtures: a real, throw-away PostGIS database per test session.

The server is the one `make test` started (or GEOSERVICE_DATABASE_URL). An
unreachable server fails the run; nothing here skips.
"""

from __future__ import annotations

import inspect
import os
import secrets
import tempfile
import types
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from geoservice.db import create_engine, libpq_conninfo, upgrade
from geoservice.keys import ROLES, digest
from geoservice.settings import Settings

FIXTURES = Path(__file__).resolve().parent / "fixtures"
"""Data files the tests read, kept beside them (tests/fixtures/README.md: sources, licences)."""

# one worker process per test server is plenty (two cores run the whole suite)
os.environ.setdefault("GEOSERVICE_ANALYSIS_WORKERS", "1")
# the state directory every server and worker the tests start maps versions from
os.environ.setdefault("GEOSERVICE_STATE_DIR", tempfile.mkdtemp(prefix="geoservice-state-"))
# the position journal of every server the tests start: a directory of this session's own
os.environ.setdefault("GEOSERVICE_JOURNAL_DIR", tempfile.mkdtemp(prefix="geoservice-journal-"))

TEST_KEYS = {role: f"gs_{secrets.token_hex(4)}_{secrets.token_urlsafe(32)}" for role in ROLES}
"""One key per role, in every test database (only their hashes are stored)."""
TRACKER_UNITS = ("XD01-1", "XD01-2", "XD02-1")
"""The patrol units the test tracker key is bound to (a car's GPS device)."""


def auth(role: str = "admin") -> dict[str, str]:
    """Headers carrying the test key of ``role``."""
    return {"Authorization": f"Bearer {TEST_KEYS[role]}"}


def _add_test_keys(engine: Engine) -> None:
    with engine.begin() as conn:
        for role, key in TEST_KEYS.items():
            conn.execute(
                sa.text(
                    "INSERT INTO geoservice.api_key "
                    "(name, key_id, role, key_hash, created_by, rate_per_s, burst, units) "
                    "VALUES (:name, :key_id, :role, :hash, 'tests', 1e6, 1000000, :units)"
                ),
                {
                    "name": f"test-{role}",
                    "key_id": key[3:11],
                    "role": role,
                    "hash": digest(key),
                    "units": list(TRACKER_UNITS) if role == "tracker" else None,
                },
            )


def _admin_engine(settings: Settings) -> Engine:
    """The owner's login on ``postgres``, where it makes and drops the test databases: on the
    local cluster ``geoservice_owner`` (no superuser; CREATEDB), and ``template1`` holds
    PostGIS, pgRouting and the audit log's guard, so a new database has them too."""
    url = settings.sqlalchemy_url().set(database="postgres")
    return sa.create_engine(url, isolation_level="AUTOCOMMIT")


@pytest.fixture(scope="session")
def base_settings() -> Settings:
    return Settings()


@pytest.fixture(scope="session")
def make_database(base_settings: Settings) -> Iterator:
    """Factory: a fresh database (migrated, or a copy of ``template``) as Settings; dropped at
    the end of the session."""
    admin = _admin_engine(base_settings)
    created: list[str] = []

    def make(migrate: bool = True, template: str | None = None) -> Settings:
        name = f"geoservice_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        with admin.connect() as conn:
            if template:
                conn.exec_driver_sql(
                    f"CREATE DATABASE {name} TEMPLATE {template} STRATEGY FILE_COPY"
                )
            else:
                conn.exec_driver_sql(f"CREATE DATABASE {name}")
        created.append(name)
        url = base_settings.sqlalchemy_url().set(database=name)
        settings = Settings(database_url=url.render_as_string(hide_password=False))
        if migrate and not template:
            engine = create_engine(settings, "owner")
            upgrade(engine)
            _add_test_keys(engine)
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
    """The owner's engine: tests arrange data as they please."""
    engine = create_engine(settings, "owner")
    yield engine
    engine.dispose()


@pytest.fixture()
def conninfo(settings: Settings) -> str:
    return libpq_conninfo(settings.sqlalchemy_url())


# --- the demo dataset, generated once per session -------------------------------------------

DEMO_SEED = 2020


@pytest.fixture(scope="session")
def demo_files(tmp_path_factory):
    from geoservice.synthetic import write_demo

    return write_demo(tmp_path_factory.mktemp("demo"), seed=DEMO_SEED)


@pytest.fixture(scope="session")
def demo_template(make_database, demo_files, base_settings) -> str:
    """Name of a database holding the demo, published through the ETL; used as a template."""
    from etl.commands import run_loads
    from geoservice.audit import Actor
    from geoservice.demo import demo_steps
    from geoservice.events import load_events_file

    settings = make_database()
    engine = create_engine(settings, "writer")
    run_loads(engine, demo_steps(demo_files), dry_run=False, note="test demo", with_diff=False)
    load_events_file(engine, demo_files.events, Actor("tests", "cli"))  # as `geoservice demo`
    engine.dispose()
    return settings.sqlalchemy_url().database


@pytest.fixture()
def demo_settings(demo_template, make_database) -> Settings:
    """A private copy of the demo database for one test."""
    return make_database(template=demo_template)


@pytest.fixture()
def demo_engine(demo_settings) -> Iterator[Engine]:
    """The owner's engine on a private demo copy."""
    engine = create_engine(demo_settings, "owner")
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def broken(demo_files, tmp_path_factory) -> dict[str, Path]:
    """Every deliberately broken variant of the demo files, by name."""
    from geoservice.synthetic.broken import VARIANTS

    out = tmp_path_factory.mktemp("broken")
    return {name: make(demo_files, out) for name, make in VARIANTS.items()}


def row_counts(engine: Engine) -> dict[str, int]:
    """Rows per table plus the current version: what a failed load must leave as it was."""
    tables = (
        "boundary",
        "station",
        "officer",
        "officer_unit",
        "patrol_segment",
        "road_node",
        "road_edge",
        "snapshot",
        "dataset_version",
    )
    with engine.connect() as conn:
        counts = {
            t: conn.execute(sa.text(f"SELECT count(*) FROM geoservice.{t}")).scalar_one()
            for t in tables
        }
        counts["current"] = conn.execute(
            sa.text("SELECT version_id FROM geoservice.current_dataset")
        ).scalar_one()
    return counts


@pytest.fixture(scope="session")
def demo_readonly(demo_template, make_database) -> Settings:
    """One copy of the demo shared by tests that only read it."""
    return make_database(template=demo_template)


@pytest.fixture(scope="session")
def demo_index(demo_readonly):
    from geoservice.locate import build_index

    engine = create_engine(demo_readonly)
    index = build_index(engine)
    engine.dispose()
    return index


@pytest.fixture(scope="session")
def demo_network(demo_readonly):
    """The demo's car network, built once."""
    from geoservice.network import load_network

    engine = create_engine(demo_readonly)
    network = load_network(engine)
    engine.dispose()
    return network


@pytest.fixture(scope="session")
def demo_client(demo_readonly) -> Iterator:
    """The real app (with its worker process) on the shared read-only demo copy."""
    from fastapi.testclient import TestClient

    from geoservice.server.app import create_app

    with TestClient(create_app(demo_readonly), headers=auth("admin")) as client:
        yield client


@pytest.fixture()
def client(demo_client):
    """The demo app; modules testing another database define their own ``client``."""
    return demo_client


# --- tiers: one marker per test, from what it uses ------------------------------------------

DB_FIXTURES = frozenset(
    {
        "make_database",
        "settings",
        "engine",
        "conninfo",
        "demo_template",
        "demo_settings",
        "demo_engine",
        "demo_readonly",
        "demo_index",
        "demo_network",
        "demo_client",
        "client",
    }
)
"""The fixtures above that make, or hand out, a database on the PostgreSQL server."""

TIERS: tuple[tuple[str, frozenset[str], frozenset[str]], ...] = (
    # (marker, fixtures that put a test in it, names its code calls that do), heaviest first
    ("cluster", frozenset({"cluster"}), frozenset()),  # test_cluster: primary, standby, HAProxy
    ("browser", frozenset(), frozenset({"sync_playwright"})),  # headless Chromium
    # the real app (with its worker process), a served HTTP port, the worker pool
    ("system", frozenset({"demo_client"}), frozenset({"TestClient", "serving", "WorkerPool"})),
    ("db", DB_FIXTURES, frozenset()),
)
"""A test's tier is the first of these whose fixtures it uses or whose names its code calls;
a test using none of them is ``unit``: it needs no PostgreSQL, no server and no browser."""


def _called_names(functions: Iterable) -> set[str]:
    """Every name the code of ``functions`` refers to, following the functions and classes of
    the tests package they name (helpers such as ``tests.server.serving``)."""
    names: set[str] = set()
    seen: set[types.CodeType] = set()
    todo = list(functions)
    while todo:
        function = inspect.unwrap(todo.pop())
        code = getattr(function, "__code__", None)
        if code is None or code in seen:
            continue
        seen.add(code)
        codes = [code]
        while codes:
            current = codes.pop()
            codes.extend(c for c in current.co_consts if isinstance(c, types.CodeType))
            for name in current.co_names:
                names.add(name)
                found = function.__globals__.get(name)
                if getattr(found, "__module__", "").partition(".")[0] != "tests":
                    continue
                if inspect.isfunction(found):
                    todo.append(found)
                elif inspect.isclass(found):
                    todo.extend(f for f in vars(found).values() if inspect.isfunction(f))
    return names


def tier_of(item: pytest.Item) -> str:
    fixtures = set(getattr(item, "fixturenames", ()))
    info = getattr(item, "_fixtureinfo", None)
    defined = info.name2fixturedefs if info is not None else {}
    functions = [getattr(item, "function", None)]
    functions += [defs[-1].func for name, defs in defined.items() if name in fixtures and defs]
    called = _called_names(f for f in functions if f is not None)
    for tier, tier_fixtures, tier_calls in TIERS:
        if fixtures & tier_fixtures or called & tier_calls:
            return tier
    return "unit"


@pytest.hookimpl(tryfirst=True)  # before ``-m`` deselects by these markers
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        item.add_marker(tier_of(item))
