"""The grid event register: the demo's year, loading and recording, stats, overdue,
incident-weighted coverage."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from etl.commands import run_loads
from geoservice.db import create_engine
from geoservice.demo import demo_steps
from geoservice.events import routing
from geoservice.server.app import create_app
from tests.cli import run_cli
from tests.conftest import auth
from tests.test_dispatch_grade import strict_json

REPORT = {"stability": 1_669, "city": 7_753, "service": 1_043}


def test_the_demo_year_has_the_reports_figures(demo_client) -> None:
    by_category = strict_json(
        demo_client.get("/v1/events/stats", params={"by": "category"}).content
    )
    counts = {g["code"]: g["events"] for g in by_category["groups"]}
    assert {k: counts[k] for k in REPORT} == REPORT
    assert by_category["events"] == 11_029
    assert (by_category["closed"], by_category["open"]) == (10_312, 717)
    assert by_category["closure_rate"] == round(10_312 / 11_029, 4)
    names = {g["code"]: g["name"] for g in by_category["groups"]}
    assert names["stability"] == "综治维稳" and names["city"] == "城市管理"
    months = demo_client.get("/v1/events/stats", params={"by": "month"}).json()
    assert [g["code"] for g in months["groups"]] == [f"2020-{m:02d}" for m in range(1, 13)]
    towns = demo_client.get("/v1/events/stats", params={"by": "town"}).json()
    assert len(towns["groups"]) == 16 and sum(g["events"] for g in towns["groups"]) == 11_029
    assert all(g["name"] and g["median_handling_hours"] > 0 for g in towns["groups"])
    spring = demo_client.get(
        "/v1/events/stats", params={"by": "category", "from": "2020-03-01", "to": "2020-06-01"}
    ).json()
    assert 0 < spring["events"] < 11_029 / 3


def test_stats_agree_with_the_csv(demo_client, demo_files) -> None:
    rows = pd.read_csv(demo_files.events, dtype=str, keep_default_na=False)
    closed = rows[rows.status == "closed"]
    hours = (
        pd.to_datetime(closed.closed_at) - pd.to_datetime(closed.time)
    ).dt.total_seconds() / 3600
    by_category = demo_client.get("/v1/events/stats", params={"by": "category"}).json()
    for group in by_category["groups"]:
        mine = hours[closed.category == group["code"]]
        assert group["median_handling_hours"] == pytest.approx(round(mine.median(), 2), abs=0.01)


def test_overdue_lists_open_events_past_their_deadline(demo_client, demo_files) -> None:
    as_of = datetime(2021, 1, 10, tzinfo=UTC)
    answer = demo_client.get("/v1/events/overdue", params={"as_of": as_of.isoformat()}).json()
    rows = pd.read_csv(demo_files.events, dtype=str, keep_default_na=False)
    rules = routing()
    expected = {
        r.id
        for r in rows.itertuples()
        if r.status == "open"
        and datetime.fromisoformat(r.time) + timedelta(days=rules[r.category]["deadline_days"])
        < as_of
    }
    assert answer["overdue"] == len(expected) > 0
    assert {e["id"] for e in answer["events"]} == expected
    first = answer["events"][0]
    assert first["days_overdue"] >= answer["events"][-1]["days_overdue"]
    stability = next(e for e in answer["events"] if e["category"] == "stability")
    assert stability["route"] == "lead_department" and stability["helpers"]
    other = next(e for e in answer["events"] if e["category"] == "other")
    assert other["route"] == "town" and other["handler"] == other["town"]["code"]
    # grid, unit and town named as a locate answer of the current version names them
    assert answer["dataset_version"] == demo_client.get("/health").json()["dataset_version"]
    event = rows.set_index("id").loc[first["id"]]
    located = demo_client.get("/v1/locate", params={"lon": event.lon, "lat": event.lat}).json()
    assert first["grid"] == located["grid"]
    assert first["unit"] == {k: located["unit"][k] for k in ("code", "name")}
    assert first["town"] == located["town"]


def test_a_bad_events_file_is_refused_whole_with_every_problem(demo_settings, tmp_path) -> None:
    path = tmp_path / "events.csv"
    header = ["id", "time", "category", "status", "lon", "lat", "closed_at"]
    rows = [
        ["A1", "2021-03-01T10:00:00+08:00", "city", "open", "114.41", "23.10", ""],
        ["A2", "not a time", "city", "open", "114.41", "23.10", ""],
        ["A3", "2021-03-01T10:00:00", "weather", "open", "114.41", "23.10", ""],
        ["A4", "2021-03-01T10:00:00", "city", "done", "114.41", "23.10", ""],
        ["A1", "2021-03-01T10:00:00", "city", "open", "east", "23.10", ""],
        ["A6", "2021-03-01T10:00:00", "city", "open", "114.41", "", ""],
    ]
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([header, *rows])
    engine = create_engine(demo_settings, "owner")
    with engine.connect() as conn:
        before = conn.execute(sa.text("SELECT count(*) FROM geoservice.event")).scalar()
    # --tolerance-m is taken as by every ETL command (events are points: nothing to snap)
    done = run_cli("etl", "events", str(path), "--tolerance-m", "0.01", settings=demo_settings)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    for named in (
        "not a time",
        "'weather'",
        "status 'done'",
        "repeats row 1",
        "'east'",
        "row 6: lat missing",
    ):
        assert named in done.stderr, named
    outside = tmp_path / "outside.csv"
    outside.write_text(
        "id,time,category,status,lon,lat\nB1,2021-03-01T10:00:00,city,open,114.9,23.5\n"
    )
    done = run_cli("etl", "events", str(outside), settings=demo_settings)
    assert done.returncode == 2 and "B1" in done.stderr and "outside the district" in done.stderr
    outside.write_text(
        "id,time,category,status,lon,lat\n"
        "C1,2021-03-01T10:00:00,city,open,114.41,23.1\n"
        "C2,2021-03-01T10:00:00,city,open,114.41,95\n"
    )
    done = run_cli("etl", "events", str(outside), settings=demo_settings)
    assert done.returncode == 2 and "row 2" in done.stderr and "95" in done.stderr
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM geoservice.event")).scalar() == before
    engine.dispose()


def test_a_file_with_the_contracts_columns_and_the_reports_names_loads(
    demo_settings, tmp_path
) -> None:
    path = tmp_path / "events.csv"
    path.write_text(
        "id,time,category,status,lon,lat,description\n"
        "K1,2021-03-01 10:00:00,城市管理,办结,114.41,23.10,井盖缺失\n"
        "K2,2021-03-02T11:00:00+08:00,综治维稳,在办,114.42,23.11,\n"
        "K3,2021-03-03T12:00:00Z,service,closed,114.40,23.09,\n",
        encoding="utf-8",
    )
    done = run_cli("etl", "events", str(path), settings=demo_settings)
    assert done.returncode == 0, done.stderr
    engine = create_engine(demo_settings, "owner")
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT id, category, status, closed_at, description FROM geoservice.event "
                "WHERE id LIKE 'K%' ORDER BY id"
            )
        ).all()
    engine.dispose()
    assert [tuple(r) for r in rows] == [
        ("K1", "city", "closed", None, "井盖缺失"),
        ("K2", "stability", "open", None, None),
        ("K3", "service", "closed", None, None),
    ]


def test_events_are_located_in_the_version_current_at_their_time(demo_settings, demo_files) -> None:
    writer = create_engine(demo_settings, "writer")
    with writer.connect() as conn:
        first_since = conn.execute(
            sa.text("SELECT max(since) FROM geoservice.current_history")
        ).scalar()
    run_loads(writer, demo_steps(demo_files), dry_run=False, note="again", with_diff=False)
    writer.dispose()
    between = first_since + timedelta(milliseconds=1)
    events = {
        "events": [
            {
                "id": "E-before",
                "time": between.isoformat(),
                "category": "city",
                "status": "open",
                "lon": 114.41,
                "lat": 23.1,
            },
            {
                "id": "E-now",
                "time": datetime.now(UTC).isoformat(),
                "category": "stability",
                "status": "closed",
                "closed_at": datetime.now(UTC).isoformat(),
                "lon": 114.41,
                "lat": 23.1,
                "description": "邻里纠纷",
            },
        ]
    }
    with TestClient(create_app(demo_settings), headers=auth("dispatch")) as client:
        answer = strict_json(client.post("/v1/events", json=events).content)
        assert [e["dataset_version"] for e in answer["events"]] == [1, 2]
        assert answer["events"][0]["grid"]["code"] == answer["events"][1]["grid"]["code"]
        located = client.get("/v1/locate", params={"lon": 114.41, "lat": 23.1}).json()
        assert answer["events"][1]["grid"] == located["grid"]
        assert answer["events"][1]["town"] == located["town"]
        assert answer["events"][1]["route"] == "lead_department"
        again = client.post("/v1/events", json=events)
        assert again.status_code == 409 and "E-before" in again.json()["detail"]
        bad = {"events": [{**events["events"][0], "id": "E-x", "category": "weather"}]}
        refused = client.post("/v1/events", json=bad)
        assert refused.status_code == 422 and "weather" in str(refused.json())
        assert client.get("/v1/events/stats", headers=auth("dispatch")).status_code == 403
    engine = create_engine(demo_settings, "owner")
    with engine.connect() as conn:
        stored = conn.execute(
            sa.text("SELECT recorded_by FROM geoservice.event WHERE id = 'E-now'")
        ).scalar()
    engine.dispose()
    assert stored == "api:test-dispatch"


def test_incident_weighted_coverage_agrees_with_postgis(demo_client, demo_readonly) -> None:
    planner = auth("planner")
    grids = demo_client.get(
        "/v1/coverage/grids", params={"weight": "events"}, headers=planner
    ).json()
    answer = demo_client.get(
        "/v1/coverage/response", params={"weight": "events"}, headers=planner
    ).json()
    assert answer["weight"] == "events"
    engine = create_engine(demo_readonly)
    with engine.connect() as conn:  # the exact oracle: which grid covers each event
        per_grid = dict(
            conn.execute(
                sa.text(
                    "SELECT code, count(*) FROM (SELECT DISTINCT ON (e.id) g.code "
                    "FROM geoservice.event e JOIN geoservice.current_grid g "
                    "ON ST_Covers(g.geom, e.geom) ORDER BY e.id, g.code) x GROUP BY code"
                )
            ).all()
        )
    engine.dispose()
    events = np.array([per_grid.get(code, 0) for code in grids["codes"]], float)
    minutes = np.array([np.inf if m is None else m for m in grids["minutes_to_reach"]])
    for band in answer["bands"]:
        covered = minutes <= band["minutes"]
        assert band["population_share"] == pytest.approx(
            events[covered].sum() / events.sum(), abs=2e-4
        )
    residents = demo_client.get("/v1/coverage/response", headers=planner).json()
    assert residents["weight"] == "residents"
    assert residents["bands"][1]["population_share"] != answer["bands"][1]["population_share"]
