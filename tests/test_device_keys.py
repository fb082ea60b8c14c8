"""Device keys: a ``tracker`` key per patrol car posts only its units' positions, dispatch
keys post none unless bound to units, and no position may imply a jump no car could drive."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from geoservice.db import create_engine
from geoservice.server.app import create_app
from geoservice.server.models import Identity, PositionsRecorded
from tests.cli import run_cli
from tests.conftest import TRACKER_UNITS, auth

A = (114.41, 23.1)
B = (114.3605, 23.0402)  # 8.3 km from A
NEAR_A = (114.414, 23.1)  # 410 m from A


@pytest.fixture(scope="module")
def keys_settings(demo_template, make_database):
    return make_database(template=demo_template)


@pytest.fixture(scope="module")
def client(keys_settings):
    with TestClient(create_app(keys_settings)) as client:
        yield client


def _at(seconds_ago: float) -> str:
    return (datetime.now(UTC) - timedelta(seconds=seconds_ago)).isoformat()


def _body(*positions: tuple[str, tuple[float, float], str]) -> dict:
    return {
        "positions": [
            {"unit": unit, "lon": lon, "lat": lat, "time": when}
            for unit, (lon, lat), when in positions
        ]
    }


def _stored(settings, unit: str) -> int:
    engine = create_engine(settings, "owner")
    with engine.connect() as conn:
        count = conn.execute(
            sa.text("SELECT count(*) FROM geoservice.patrol_position WHERE unit = :u"),
            {"u": unit},
        ).scalar_one()
    engine.dispose()
    return count


def _refused_metric(client: TestClient) -> float:
    text = client.get("/metrics", headers=auth("admin")).text
    for family in text_string_to_metric_families(text):
        if family.name == "geoservice_positions_refused":
            for sample in family.samples:
                if sample.name.endswith("_total") and sample.labels == {"reason": "speed"}:
                    return sample.value
    return 0.0


def test_a_tracker_posts_its_units_only(client, keys_settings) -> None:
    tracker = auth("tracker")
    ok = client.post("/v1/patrols/positions", json=_body(("XD01-1", A, _at(0))), headers=tracker)
    assert ok.status_code == 200, ok.text
    assert PositionsRecorded.model_validate(ok.json()).recorded == 1
    before = _stored(keys_settings, "XD01-1")
    foreign = client.post(
        "/v1/patrols/positions",
        json=_body(("XD01-1", NEAR_A, _at(0)), ("XD09-1", A, _at(0))),
        headers=tracker,
    )
    assert foreign.status_code == 403, foreign.text
    assert foreign.headers["content-type"] == "application/problem+json"
    assert "'XD09-1'" in foreign.json()["detail"]
    assert ", ".join(TRACKER_UNITS) in foreign.json()["detail"]
    assert _stored(keys_settings, "XD01-1") == before  # nothing of the body was kept
    # a tracker does nothing else
    for path in ("/v1/dispatch?lon=114.41&lat=23.1", "/v1/locate?lon=114.41&lat=23.1"):
        assert client.get(path, headers=tracker).status_code == 403, path
    who = Identity.model_validate(client.get("/v1/whoami", headers=tracker).json())
    assert (who.role, who.units) == ("tracker", sorted(TRACKER_UNITS))


def test_a_dispatch_key_without_units_posts_no_positions(client, keys_settings) -> None:
    before = _stored(keys_settings, "XD02-1")
    refused = client.post(
        "/v1/patrols/positions", json=_body(("XD02-1", A, _at(0))), headers=auth("dispatch")
    )
    assert refused.status_code == 403, refused.text
    assert "'XD02-1'" in refused.json()["detail"] and "no unit" in refused.json()["detail"]
    assert _stored(keys_settings, "XD02-1") == before


def test_the_unit_is_checked_before_the_age(client, keys_settings) -> None:
    """A key may not post a unit's position however old: an old one is a 403 too, not an
    ``ignored_too_old`` 200 (which would tell it what the server keeps)."""
    old = _at(3600)
    for key in ("dispatch", "tracker"):
        refused = client.post(
            "/v1/patrols/positions", json=_body(("XD09-1", A, old)), headers=auth(key)
        )
        assert refused.status_code == 403, (key, refused.text)
        assert refused.headers["content-type"] == "application/problem+json"
        assert "'XD09-1'" in refused.json()["detail"]
    # its own unit's old position is still ignored, and counted
    ignored = client.post(
        "/v1/patrols/positions", json=_body(("XD01-1", A, old)), headers=auth("tracker")
    )
    assert ignored.status_code == 200, ignored.text
    assert (ignored.json()["recorded"], ignored.json()["ignored_too_old"]) == (0, 1)


def _wait_for_key(client: TestClient, key: str) -> None:
    for _ in range(100):  # NOTIFY reaches the server within moments
        if client.get("/v1/whoami", headers={"X-API-Key": key}).status_code == 200:
            return
        time.sleep(0.1)
    raise AssertionError("the new key never reached the server")


def test_keys_bound_to_units_from_the_cli_are_audited(client, keys_settings) -> None:
    made = run_cli(
        *("keys", "create", "car-0815", "--role", "tracker", "--units", "XD03-1,XD03-2"),
        settings=keys_settings,
    )
    assert made.returncode == 0, made.stderr
    car = made.stdout.strip().splitlines()[-1]
    made = run_cli(
        *("keys", "create", "cad-7", "--role", "dispatch", "--units", "XD04-1"),
        settings=keys_settings,
    )
    assert made.returncode == 0, made.stderr
    cad = made.stdout.strip().splitlines()[-1]
    _wait_for_key(client, car)
    _wait_for_key(client, cad)
    car_headers, cad_headers = {"X-API-Key": car}, {"X-API-Key": cad}
    post = client.post(
        "/v1/patrols/positions", json=_body(("XD03-2", A, _at(0))), headers=car_headers
    )
    assert post.status_code == 200, post.text
    post = client.post(
        "/v1/patrols/positions", json=_body(("XD04-1", A, _at(0))), headers=car_headers
    )
    assert post.status_code == 403 and "'XD04-1'" in post.json()["detail"]
    post = client.post(
        "/v1/patrols/positions", json=_body(("XD04-1", A, _at(0))), headers=cad_headers
    )
    assert post.status_code == 200, post.text
    assert client.get("/v1/dispatch?lon=114.41&lat=23.1", headers=cad_headers).status_code == 200
    entries = json.loads(run_cli("audit", "--json", settings=keys_settings).stdout)
    created = {e["detail"]["name"]: e["detail"] for e in entries if e["action"] == "key_created"}
    assert created["car-0815"] == {
        "name": "car-0815",
        "role": "tracker",
        "units": ["XD03-1", "XD03-2"],
    }
    listed = json.loads(run_cli("keys", "list", "--json", settings=keys_settings).stdout)
    assert next(k for k in listed if k["name"] == "car-0815")["units"] == ["XD03-1", "XD03-2"]
    for args, message in (
        (("car-1", "--role", "tracker"), "needs --units"),
        (("car-2", "--role", "tracker", "--units", "XD03-1,XD99-9"), "'XD99-9'"),
        (("car-3", "--role", "tracker", "--units", "XD03-1;drop"), "'XD03-1;drop'"),
        (("car-4", "--role", "tracker", "--units", ","), "no unit given"),
    ):
        result = run_cli("keys", "create", *args, settings=keys_settings)
        assert result.returncode == 2 and message in result.stderr, (args, result.stderr)


def test_a_jump_faster_than_the_limit_is_refused_and_counted(client, keys_settings) -> None:
    tracker = auth("tracker")
    counted = _refused_metric(client)
    first = client.post(
        "/v1/patrols/positions", json=_body(("XD01-2", A, _at(120))), headers=tracker
    )
    assert first.json()["recorded"] == 1, first.text
    # 8.3 km in two minutes: 250 km/h
    jump = client.post("/v1/patrols/positions", json=_body(("XD01-2", B, _at(0))), headers=tracker)
    assert jump.status_code == 200, jump.text
    answer = PositionsRecorded.model_validate(jump.json())
    assert answer.recorded == 0 and answer.max_speed_kmh == 150
    [refused] = answer.refused
    assert refused.unit == "XD01-2" and "km/h" in refused.reason and "150" in refused.reason
    # 410 m in the same two minutes: a car does that
    near = client.post(
        "/v1/patrols/positions", json=_body(("XD01-2", NEAR_A, _at(0))), headers=tracker
    )
    assert near.json()["recorded"] == 1 and near.json()["refused"] == []
    # within one body, each position against the one before it
    now = _at(0)
    both = client.post(
        "/v1/patrols/positions",
        json=_body(("XD02-1", B, now), ("XD02-1", A, _at(30))),
        headers=tracker,
    ).json()
    assert both["recorded"] == 1
    assert [(r["unit"], r["time"]) for r in both["refused"]] == [("XD02-1", now)]
    assert _refused_metric(client) == counted + 2
    # the refused places are nowhere: the units' last positions are the kept ones
    live = client.get("/v1/coverage/live", params={"minutes": "1"}, headers=auth("planner"))
    last = {p["unit"]: (p["lon"], p["lat"]) for p in live.json()["patrols"]}
    assert last["XD01-2"] == pytest.approx(NEAR_A) and last["XD02-1"] == pytest.approx(A)
