"""Events that cannot break the register: bounded times, ids and descriptions, checked
alike by ``POST /v1/events`` and ``etl events``; a repeated id, also in a race, is a 409."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from geoservice.db import create_engine
from geoservice.events import SPAN_BEFORE_FIRST
from geoservice.server.app import create_app
from tests.cli import run_cli
from tests.conftest import auth


@pytest.fixture(scope="module")
def bounds_settings(demo_template, make_database):
    return make_database(template=demo_template)


@pytest.fixture(scope="module")
def client(bounds_settings):
    with TestClient(create_app(bounds_settings), headers=auth("dispatch")) as client:
        yield client


@pytest.fixture(scope="module")
def owner(bounds_settings):
    engine = create_engine(bounds_settings, "owner")
    yield engine
    engine.dispose()


def _event(**fields) -> dict:
    return {
        "id": "B-1",
        "time": datetime.now(UTC).isoformat(),
        "category": "city",
        "status": "open",
        "lon": 114.41,
        "lat": 23.1,
        **fields,
    }


def _count(owner) -> int:
    with owner.connect() as conn:
        return conn.execute(sa.text("SELECT count(*) FROM geoservice.event")).scalar_one()


def _first_since(owner) -> datetime:
    with owner.connect() as conn:
        return conn.execute(sa.text("SELECT min(since) FROM geoservice.current_history")).scalar()


def test_each_bound_is_a_422_naming_the_value(client, owner) -> None:
    before = _count(owner)
    too_early = (_first_since(owner) - SPAN_BEFORE_FIRST - timedelta(days=1)).isoformat()
    cases = [
        (_event(time="0001-01-01T00:00:00+08:00"), "0001-01-01T00:00:00+08:00"),
        (_event(time="9999-12-31T23:59:59-12:00"), "9999-12-31T23:59:59-12:00"),
        (_event(time=too_early), "ten years before the first dataset version"),
        (_event(time=(datetime.now(UTC) + timedelta(days=2)).isoformat()), "a day from now"),
        (_event(status="closed", closed_at="9999-01-01T00:00:00+08:00"), "closed_at 9999"),
        (_event(id=[1]), "id [1] is not a string"),
        (_event(id=17), "id 17 is not a string"),
        (_event(id="x" * 65), "1 to 64 of the characters"),
        (_event(id="a b"), "'a b'"),
        (_event(id="E/../1"), "'E/../1'"),
        (_event(description="长" * 2_001), "2,001 characters is over the limit of 2,000"),
        (_event(description="x" * 3_000_000), "3,000,000 characters"),
        (_event(description={"text": "x"}), "is not text"),
        (_event(category="weather"), "'weather'"),
        (_event(category=["city"]), "['city']"),
        (_event(status="done"), "'done'"),
    ]
    for body, named in cases:
        response = client.post("/v1/events", json={"events": [body]})
        assert response.status_code == 422, (named, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert named in str(response.json()), (named, response.json())
    assert _count(owner) == before  # nothing refused was stored
    # the extremes inside the bounds are taken
    earliest = _first_since(owner) - SPAN_BEFORE_FIRST + timedelta(minutes=1)
    edge = [
        _event(id="E" * 64, time=earliest.isoformat(), description="长" * 2_000),
        _event(id="A-z_0.9:x", time=(datetime.now(UTC) + timedelta(hours=23)).isoformat()),
    ]
    answer = client.post("/v1/events", json={"events": edge})
    assert answer.status_code == 200, answer.text
    assert answer.json()["recorded"] == 2


def test_the_etl_refuses_the_same(bounds_settings, owner, tmp_path) -> None:
    path = tmp_path / "events.csv"
    path.write_text(
        "id,time,category,status,lon,lat,description\n"
        "Y1,0001-01-01T00:00:00+08:00,city,open,114.41,23.1,\n"
        "Y 2,2021-03-01T10:00:00+08:00,city,open,114.41,23.1,\n"
        f"Y3,2021-03-01T10:00:00+08:00,city,open,114.41,23.1,{'x' * 2_001}\n",
        encoding="utf-8",
    )
    before = _count(owner)
    done = run_cli("etl", "events", str(path), settings=bounds_settings)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    for named in ("'Y 2'", "2,001 characters"):
        assert named in done.stderr, (named, done.stderr)
    # the rows well-formed, the times are checked against the register's bounds
    path.write_text(
        "id,time,category,status,lon,lat\n"
        "Y1,0001-01-01T00:00:00+08:00,city,open,114.41,23.1\n"
        "Y2,2021-03-01T10:00:00+08:00,city,closed,114.41,23.1\n",
        encoding="utf-8",
    )
    done = run_cli("etl", "events", str(path), settings=bounds_settings)
    assert done.returncode == 2 and "'Y1': time 0001-01-01T00:00:00+08:00" in done.stderr
    assert "Y2" not in done.stderr
    assert _count(owner) == before


def _insert(conn, key: str, when: str, status: str = "open", closed: str | None = None) -> None:
    conn.execute(
        sa.text(
            "INSERT INTO geoservice.event (id, time, category, status, closed_at, geom, "
            "grid_code, dataset_version, recorded_by) VALUES (:id, :time, 'city', :status, "
            ":closed, ST_SetSRID(ST_MakePoint(114.41, 23.1), 4326), 'G', 1, 'tests')"
        ),
        {"id": key, "time": when, "status": status, "closed": closed},
    )


def test_no_stored_row_can_break_a_read(client, owner) -> None:
    # what the table cannot hold, not even from its owner
    for when in ("0001-01-01T00:00:00+08:00", "9999-12-31T00:00:00Z", "1899-12-31T23:59:59Z"):
        with pytest.raises(sa.exc.IntegrityError, match="event_time_bounds"), owner.begin() as c:
            _insert(c, "X-bad", when)
    with pytest.raises(sa.exc.IntegrityError, match="event_id_length"), owner.begin() as c:
        _insert(c, "X" * 65, "2021-01-01T00:00:00Z")
    # the extremes it can hold: every read still answers
    with owner.begin() as conn:
        _insert(conn, "X-1900", "1900-01-01T00:00:00Z")
        _insert(conn, "X-2199", "2199-12-31T23:00:00Z")
        _insert(conn, "X-closed", "1900-01-01T00:00:00Z", "closed", "2199-12-31T23:00:00Z")
    planner = auth("planner")
    overdue = client.get("/v1/events/overdue", headers=planner)
    assert overdue.status_code == 200, overdue.text
    assert "X-1900" in {e["id"] for e in overdue.json()["events"]}
    late = client.get(
        "/v1/events/overdue", params={"as_of": "2200-06-01T00:00:00"}, headers=planner
    )
    assert late.status_code == 200, late.text
    for by in ("month", "town", "category"):
        stats = client.get("/v1/events/stats", params={"by": by}, headers=planner)
        assert stats.status_code == 200, (by, stats.text)


def test_a_repeated_id_is_a_409_also_in_a_race(client, owner) -> None:
    body = {"events": [_event(id="R-1")]}
    assert client.post("/v1/events", json=body).status_code == 200
    again = client.post("/v1/events", json=body)
    assert again.status_code == 409 and "R-1" in again.json()["detail"]
    assert again.headers["content-type"] == "application/problem+json"
    # another writer holds R-2 uncommitted: the request passes its check, then waits on the
    # unique index, and loses once the other commits
    with owner.connect() as conn, ThreadPoolExecutor(1) as pool:
        transaction = conn.begin()
        _insert(conn, "R-2", datetime.now(UTC).isoformat())
        racing = pool.submit(client.post, "/v1/events", json={"events": [_event(id="R-2")]})
        deadline = time.monotonic() + 60
        with owner.connect() as watch:
            while not watch.execute(
                sa.text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock'"
                )
            ).scalar_one():
                assert time.monotonic() < deadline, "the racing request never waited"
                assert not racing.done(), racing.result().text
                time.sleep(0.05)
        transaction.commit()
        response = racing.result(timeout=60)
    assert response.status_code == 409, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert "R-2" in response.json()["detail"]
