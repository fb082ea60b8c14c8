"""``GET /v1/dispatch``, patrol positions and live coverage, on the real app and database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from geoservice.crs import to_metric
from geoservice.db import create_engine
from geoservice.patrols import CHINA, Position, PositionStore, patrol_units
from geoservice.responders import ranking_key
from geoservice.server.app import create_app
from geoservice.server.models import Dispatch
from geoservice.synthetic.patrols import PatrolSimulator
from tests.cli import run_cli
from tests.conftest import auth
from tests.test_dispatch_grade import strict_json

TRACKER = auth("tracker")
INCIDENTS = [(114.4152, 23.0931), (114.3821, 23.1127), (114.4478, 23.0815), (114.3605, 23.0402)]


@pytest.fixture(scope="module")
def live_settings(demo_template, make_database):
    """A private demo copy: these tests record positions."""
    return make_database(template=demo_template)


@pytest.fixture(scope="module")
def live_client(live_settings):
    # these tests put units at incidents and the simulator's places in turn: jumps no car
    # could drive (the speed limit is tested in test_device_keys.py)
    unlimited = live_settings.model_copy(update={"max_speed_kmh": 1e9})
    with TestClient(create_app(unlimited), headers=auth("dispatch")) as client:
        yield client


def _brute_force(network, engine, lon: float, lat: float) -> list[tuple[float, str]]:
    """Every station and post searched from on its own (forward network, ten minutes):
    its time to the incident's point, in the responders' order."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT kind, code, ST_X(geom), ST_Y(geom) FROM geoservice.current_station")
        ).all()
    goal = network.snap_points([lon], [lat])
    out = []
    for kind, code, x, y in rows:
        start = network.snap_points([x], [y], strict=False)
        if not len(start.edge):
            continue
        reach = network.reach(start, 600.0)
        t = float(reach.time_at(goal.edge, goal.fraction)[0])
        if np.isfinite(t):
            out.append((t, kind, code))
    return [(t, code) for t, _, code in sorted(out, key=lambda r: ranking_key(*r))]


@pytest.mark.parametrize(("lon", "lat"), INCIDENTS)
def test_responders_match_one_search_per_responder(
    demo_client, demo_network, demo_readonly, lon, lat
) -> None:
    answer = strict_json(
        demo_client.get("/v1/dispatch", params={"lon": lon, "lat": lat, "k": 5}).content
    )
    engine = create_engine(demo_readonly)
    brute = _brute_force(demo_network, engine, lon, lat)[:5]
    engine.dispose()
    assert [r["code"] for r in answer["responders"]] == [code for _, code in brute]
    assert [r["eta_s"] for r in answer["responders"]] == pytest.approx(
        [round(t, 1) for t, _ in brute], abs=0.051
    )
    located = demo_client.get("/v1/locate", params={"lon": lon, "lat": lat}).json()
    assert {k: answer[k] for k in located} == located  # the locate answer, whole
    etas = [r["eta_s"] for r in answer["responders"]]
    assert etas == sorted(etas)
    # a road distance is at least the straight line (metres, EPSG:4547)
    for r in answer["responders"]:
        assert r["distance_m"] > 0 and r["kind"] in ("station", "post")
    # routes=true: the same responders, each with its route, as long as its road distance,
    # from where it joins the road to the incident's point on the road
    params = {"lon": lon, "lat": lat, "k": 5, "routes": "true"}
    routed = Dispatch.model_validate_json(demo_client.get("/v1/dispatch", params=params).content)
    snapped = demo_network.snap_points([lon], [lat])
    for plain, r in zip(answer["responders"], routed.responders, strict=True):
        assert r.model_dump(exclude={"route"}) == plain and r.route is not None
        line = np.array(r.route.coordinates)
        x, y = to_metric(line[:, 0], line[:, 1])
        assert np.hypot(np.diff(x), np.diff(y)).sum() == pytest.approx(r.distance_m, abs=2)
        assert line[0] == pytest.approx([r.lon, r.lat], abs=2e-7)
        assert line[-1] == pytest.approx([snapped.lon[0], snapped.lat[0]], abs=2e-7)
    assert "route" not in answer["responders"][0]


def test_dispatch_refuses_bad_input_by_name(demo_client) -> None:
    for params, named in [
        ({"lon": 114.41, "lat": 23.1, "k": 0}, "k"),
        ({"lon": 114.41, "lat": 23.1, "k": 21}, "k"),
        ({"lon": "east", "lat": 23.1}, "lon"),
        ({"lat": 23.1}, "lon"),
    ]:
        response = demo_client.get("/v1/dispatch", params=params)
        assert response.status_code == 422, params
        assert named in response.text
    # far from every road: the locate answer stands, with no responders and why
    answer = demo_client.get("/v1/dispatch", params={"lon": 116.5, "lat": 24.5}).json()
    assert answer["status"] == "outside" and answer["responders"] == []
    assert "500 m" in answer["note"]


def test_dispatch_needs_a_dispatch_key(demo_readonly) -> None:
    with TestClient(create_app(demo_readonly)) as client:
        assert client.get("/v1/dispatch", params={"lon": 114.41, "lat": 23.1}).status_code == 401


def _now() -> str:
    return datetime.now(UTC).isoformat()


def test_a_patrol_unit_at_the_incident_is_sent_first(live_client) -> None:
    lon, lat = INCIDENTS[0]
    before = live_client.get("/v1/dispatch", params={"lon": lon, "lat": lat}).json()
    body = {"positions": [{"unit": "XD01-1", "lon": lon, "lat": lat, "time": _now()}]}
    recorded = live_client.post("/v1/patrols/positions", json=body, headers=TRACKER)
    assert recorded.status_code == 200, recorded.text
    assert recorded.json()["recorded"] == 1
    after = strict_json(live_client.get("/v1/dispatch", params={"lon": lon, "lat": lat}).content)
    first = after["responders"][0]
    assert (first["kind"], first["code"]) == ("patrol", "XD01-1")
    assert first["eta_s"] == 0.0 and first["distance_m"] == 0
    assert after["patrols_reporting"] >= 1
    # the fixed responders keep their times, one place down
    assert after["responders"][1:] == before["responders"][:2]


def test_positions_are_checked_whole_and_name_the_bad_value(live_client, live_settings) -> None:
    good = {"unit": "XD02-1", "lon": 114.41, "lat": 23.1, "time": _now()}
    ahead = (datetime.now(UTC) + timedelta(minutes=10)).isoformat()
    cases = [
        ({**good, "unit": "XD99-9"}, "XD99-9"),
        ({**good, "lon": 116.5, "lat": 24.5}, "outside the district"),
        ({**good, "time": "yesterday"}, "yesterday"),
        ({**good, "time": ahead}, "ahead of the server"),
        ({**good, "lon": "114.41"}, "positions[1]"),
        ({"unit": "XD02-1", "lon": 114.41, "lat": 23.1}, "positions[1]"),
    ]
    engine = create_engine(live_settings, "owner")
    with engine.connect() as conn:
        count = conn.execute(sa.text("SELECT count(*) FROM geoservice.patrol_position")).scalar()
    for bad, named in cases:
        response = live_client.post(
            "/v1/patrols/positions", json={"positions": [good, bad]}, headers=TRACKER
        )
        assert response.status_code == 422, (bad, response.text)
        assert named in response.json()["detail"], (named, response.json())
    with engine.connect() as conn:
        after = conn.execute(sa.text("SELECT count(*) FROM geoservice.patrol_position")).scalar()
    assert after == count  # nothing of a refused body was kept
    old = {**good, "time": (datetime.now(UTC) - timedelta(hours=1)).isoformat()}
    answer = live_client.post(
        "/v1/patrols/positions", json={"positions": [good, old]}, headers=TRACKER
    ).json()
    assert (answer["recorded"], answer["ignored_too_old"]) == (1, 1)
    # without an offset a time is China time: 08:00 UTC is 16:00 there
    naive = datetime.now(CHINA).replace(tzinfo=None).isoformat()
    assert (
        live_client.post(
            "/v1/patrols/positions", json={"positions": [{**good, "time": naive}]}, headers=TRACKER
        ).json()["recorded"]
        == 1
    )
    engine.dispose()


def test_positions_are_kept_by_day_and_old_days_dropped(live_settings) -> None:
    engine = create_engine(live_settings, "recorder")
    long_ago = datetime.now(CHINA) - timedelta(days=40)
    owner = create_engine(live_settings, "owner")
    day = f"patrol_position_{long_ago:%Y%m%d}"
    # a day of forty days ago, as a DBA restoring it would make it (the recorder makes only
    # yesterday to the day after tomorrow: test_least_privilege.py)
    starts = long_ago.replace(hour=0, minute=0, second=0, microsecond=0)
    with owner.begin() as conn:
        conn.execute(
            sa.text(
                f"CREATE TABLE geoservice.{day} PARTITION OF geoservice.patrol_position "
                f"FOR VALUES FROM ('{starts.isoformat()}') TO "
                f"('{(starts + timedelta(days=1)).isoformat()}')"
            )
        )

    def partitions() -> set[str]:
        with owner.connect() as conn:
            return set(
                conn.execute(
                    sa.text(
                        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                        "WHERE i.inhparent = 'geoservice.patrol_position'::regclass"
                    )
                ).scalars()
            )

    assert day in partitions()
    store = PositionStore(engine, keep_days=30)
    store.record([Position("XD03-1", 114.41, 23.1, datetime.now(CHINA))])  # prunes
    kept = partitions()
    assert day not in kept and f"patrol_position_{datetime.now(CHINA):%Y%m%d}" in kept
    # the recorder writes positions and events, nothing else
    with pytest.raises(sa.exc.ProgrammingError, match="permission denied"), engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM geoservice.boundary"))
    engine.dispose()
    owner.dispose()


def test_live_coverage_follows_the_patrols(live_client, live_settings) -> None:
    planner = auth("planner")
    fixed = live_client.get(
        "/v1/coverage/response", params={"origins": "all"}, headers=planner
    ).json()
    # every unit of the team where the simulator puts it now
    engine = create_engine(live_settings)
    units = patrol_units(engine, fixed["dataset_version"])
    simulator = PatrolSimulator(engine, fixed["dataset_version"], units, 20.0)
    now = datetime.now(UTC)
    at_start = simulator.positions(0.0, now)
    a_minute_on = simulator.positions(60.0, now)
    engine.dispose()
    assert len(units) == 102
    moved = [
        np.hypot(a.lon - b.lon, a.lat - b.lat) for a, b in zip(at_start, a_minute_on, strict=True)
    ]
    assert min(moved) > 0.001  # every unit moved (about 330 m at 20 km/h)
    body = {"positions": [{**p.__dict__, "time": now.isoformat()} for p in at_start]}
    # an admin key bound to no unit posts for any (operators' tools, as the simulator)
    recorded = live_client.post("/v1/patrols/positions", json=body, headers=auth("admin"))
    assert recorded.json()["recorded"] == 102
    live = strict_json(
        live_client.get("/v1/coverage/live", params={"grids": "true"}, headers=planner).content
    )
    assert live["origins"] == "live"
    assert {p["unit"] for p in live["patrols"]} >= {u.code for u in units}
    stations_posts = live_client.get(
        "/v1/coverage/response", params={"origins": "posts"}, headers=planner
    ).json()
    for band, base in zip(live["bands"], stations_posts["bands"], strict=True):
        assert band["grids_covered"] >= base["grids_covered"]
    assert len(live["grid_minutes"]["codes"]) == live["bands"][0]["grids_total"]
    assert live_client.get("/v1/coverage/live", headers=auth("dispatch")).status_code == 403


def test_simulate_patrols_records_every_unit(live_settings) -> None:
    done = run_cli("demo", "simulate-patrols", "--minutes", "0", settings=live_settings)
    assert done.returncode == 0, done.stderr
    assert "recorded 102 positions" in done.stderr + done.stdout
