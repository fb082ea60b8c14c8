"""Officer coverage, response coverage (against a brute force), what-if scenarios, and
their HTTP and CLI faces."""

from __future__ import annotations

import json
from collections.abc import Iterator

import numpy as np
import pytest
import shapely
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from geoservice.bands import DEFAULT_BANDS, Bands
from geoservice.coverage import (
    CoverageModel,
    Demand,
    Grids,
    OriginKind,
    Origins,
    Scenario,
    evaluate,
    officer_coverage,
)
from geoservice.datasets import Source, publish
from geoservice.db import create_engine
from geoservice.errors import InvalidInput
from tests.cli import run_cli
from tests.test_network import _go, _oracle, _snaps, _toy


@pytest.fixture(scope="module")
def model(demo_readonly) -> Iterator[CoverageModel]:
    engine = create_engine(demo_readonly)
    yield CoverageModel.load(engine)
    engine.dispose()


# --- officers ----------------------------------------------------------------------------


def test_every_unit_has_its_officers_in_the_demo(client) -> None:
    body = client.get("/v1/coverage/officers").json()
    assert body["ok"] is True
    assert (body["units_total"], body["units_covered"]) == (216, 216)
    assert (body["officers_total"], body["officers_assigned"]) == (570, 570)
    assert body["uncovered_units"] == body["unassigned_officers"] == []
    assert body["unknown_unit_assignments"] == []
    assert len(body["by_town"]) == 16
    assert sum(t["units"] for t in body["by_town"]) == 216
    assert {"code", "name", "units", "officers"} <= set(body["by_town"][0])
    assert (
        body["heaviest_units"][0]["residents_per_officer"]
        >= body["heaviest_units"][-1]["residents_per_officer"]
    )
    towns = {t["code"]: t["name"] for t in body["by_town"]}
    for unit in body["heaviest_units"]:
        assert unit["town"] == {"code": unit["town"]["code"], "name": towns[unit["town"]["code"]]}
        assert unit["code"].startswith(unit["town"]["code"])
    assert "phone" not in json.dumps(body)


def test_cli_exit_codes_follow_the_check(demo_readonly, broken, demo_settings) -> None:
    ok = run_cli("coverage", "officers", settings=demo_readonly)
    assert ok.returncode == 0, ok.stderr
    assert "216/216 units covered, 570/570 officers assigned" in ok.stdout
    # a valid officers file that leaves one unit without police: loads, then the check fails
    load = run_cli(
        "etl", "officers", str(broken["officers_uncovered_unit"]), settings=demo_settings
    )
    assert load.returncode == 0, load.stderr
    result = run_cli("coverage", "officers", settings=demo_settings)
    assert result.returncode == 1
    assert "uncovered unit: 441302001001" in result.stderr
    as_json = run_cli("coverage", "officers", "--json", settings=demo_settings)
    body = json.loads(as_json.stdout)
    assert as_json.returncode == 1 and body["ok"] is False
    assert [u["code"] for u in body["uncovered_units"]] == ["441302001001"]
    assert body["units_covered"] == 215


def test_an_assignment_to_an_unknown_unit_is_reported(demo_settings, demo_engine) -> None:
    """The officers loader refuses unknown units, but a later boundary change can orphan
    assignments; publish such a version directly and check the report."""

    def officers(conn: sa.Connection, snapshot_id: int) -> int:
        conn.execute(
            sa.text(
                "INSERT INTO geoservice.officer (snapshot_id, code, name, rank, phone, "
                "station_code) SELECT :s, code, name, rank, phone, station_code "
                "FROM geoservice.current_officer"
            ),
            {"s": snapshot_id},
        )
        conn.execute(
            sa.text(
                "INSERT INTO geoservice.officer_unit (snapshot_id, officer_code, unit_code) "
                "SELECT :s, officer_code, unit_code FROM geoservice.current_officer_unit "
                "UNION ALL SELECT :s, min(code), '441302999999' FROM geoservice.current_officer"
            ),
            {"s": snapshot_id},
        )
        return 570

    publish(demo_engine, {"officers": officers}, sources=[Source("officers", "test", "-")])
    report = officer_coverage(demo_engine)
    assert report["ok"] is False and report["units_covered"] == 216
    assert [a["unit_code"] for a in report["unknown_unit_assignments"]] == ["441302999999"]
    result = run_cli("coverage", "officers", settings=demo_settings)
    assert result.returncode == 1 and "unknown unit 441302999999" in result.stderr


# --- response coverage -------------------------------------------------------------------


def test_response_per_contract_and_the_same_everywhere(client, model, demo_readonly) -> None:
    body = client.get("/v1/coverage/response", params={"minutes": "1,3,5"}).json()
    assert body["minutes"] == [1, 3, 5] and body["origins"] == "all"
    bands = body["bands"]
    assert [b["minutes"] for b in bands] == [1, 3, 5]
    assert all(b["grids_total"] == 2556 for b in bands)
    covered = [b["grids_covered"] for b in bands]
    assert 0 < covered[0] < covered[1] < covered[2] < 2556
    for b in bands:
        assert 0 <= b["area_share"] <= 1 and 0 <= b["population_share"] <= 1
        assert b["grid_share"] == pytest.approx(b["grids_covered"] / 2556, abs=1e-6)
    assert len(body["uncovered_grids"]) == 2556 - covered[2]
    assert {"code", "name", "minutes_to_reach"} == set(body["uncovered_grids"][0])
    assert body == model.response(DEFAULT_BANDS).to_json()
    cli = run_cli("coverage", "response", "--json", settings=demo_readonly)
    assert cli.returncode == 0 and json.loads(cli.stdout) == body
    text = run_cli("coverage", "response", settings=demo_readonly)
    assert text.returncode == 0 and "population share" in text.stdout


def test_per_grid_table_as_csv_and_geojson(demo_readonly, tmp_path) -> None:
    import geopandas as gpd
    import pandas as pd

    csv, geojson = tmp_path / "grids.csv", tmp_path / "grids.geojson"
    result = run_cli(
        "coverage",
        "response",
        "--origins",
        "stations",
        "--csv",
        str(csv),
        "--geojson",
        str(geojson),
        settings=demo_readonly,
    )
    assert result.returncode == 0, result.stderr
    table = pd.read_csv(csv, dtype={"code": str})
    assert len(table) == 2556 and {"minutes_to_reach", "covered_5min", "population"} <= set(table)
    frame = gpd.read_file(geojson)
    assert len(frame) == 2556 and frame.geometry.is_valid.all()


def test_origin_kinds_nest(model) -> None:
    shares = {
        kind: model.response(Bands((5,)), kind).bands()[0]["grids_covered"] for kind in OriginKind
    }
    assert shares["all"] >= max(shares["stations"], shares["posts"], shares["patrols"])
    assert shares["stations"] > 0 and shares["patrols"] > 0


@settings(max_examples=80, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_response_equals_a_brute_force_on_small_networks(seed) -> None:
    rng = np.random.default_rng(seed)
    n, m = 8, 14
    edges = [(int(a), int(b)) for a, b in rng.integers(0, n, (m, 2))]
    edges = [(u, v) if u != v else (u, (v + 1) % n) for u, v in edges]
    forward = rng.uniform(5, 120, m)
    backward = np.where(rng.random(m) < 0.3, np.inf, forward * rng.uniform(0.8, 1.2, m))
    net = _toy(n, edges, forward, backward)
    k = 3  # grids
    points = 20
    demand = Demand(
        grid=np.sort(rng.integers(0, k, points)),
        edge=rng.integers(0, m, points),
        fraction=rng.uniform(0, 1, points),
        weight=np.ones(points),
    )
    grids = Grids(
        codes=np.array(["A", "B", "C"]),
        names=np.array(["a", "b", "c"], dtype=object),
        towns=np.array(["t"] * 3, dtype=object),
        population=np.array([10.0, 20.0, 30.0]),
        area_km2=np.array([1.0, 2.0, 3.0]),
        polygons=np.array([shapely.box(0, 0, 1, 1)] * 3, dtype=object),
    )
    origin_edges = rng.integers(0, m, 2)
    origin_fractions = rng.uniform(0, 1, 2)
    snaps = _snaps(origin_edges, origin_fractions)
    origins = Origins(snaps, ["o"], ["added"])
    result = evaluate(net, grids, demand, origins, Bands((1, 3)), label="test")
    # brute force
    node_time = _oracle(
        net, list(zip(origin_edges.tolist(), origin_fractions.tolist(), strict=True)), 3600
    )
    times = []
    for e, x in zip(demand.edge.tolist(), demand.fraction.tolist(), strict=True):
        best = min(
            node_time[net.source[e]] + _go(x, net.forward_s[e]),
            node_time[net.target[e]] + _go(1 - x, net.backward_s[e]),
        )
        for oe, f in zip(origin_edges.tolist(), origin_fractions.tolist(), strict=True):
            if oe == e:
                along = _go(x - f, net.forward_s[e]) if x >= f else _go(f - x, net.backward_s[e])
                best = min(best, along)
        times.append(best)
    times = np.array(times)
    for g in range(k):
        mine = np.sort(times[demand.grid == g])
        expected = mine[(len(mine) + 1) // 2 - 1] / 60 if len(mine) else np.inf
        expected = expected if expected <= 60 else np.inf
        assert result.minutes_to_reach[g] == pytest.approx(expected, abs=1e-9, rel=1e-12) or (
            np.isinf(expected) and np.isinf(result.minutes_to_reach[g])
        )
    for band in result.bands():
        covered = result.minutes_to_reach <= band["minutes"]
        assert band["grids_covered"] == covered.sum()
        assert band["population_share"] == pytest.approx(
            grids.population[covered].sum() / 60, abs=1e-6
        )


# --- what-if -----------------------------------------------------------------------------


def test_an_empty_scenario_changes_nothing(model) -> None:
    result = model.scenario(Scenario(), DEFAULT_BANDS).to_json()
    assert all(d["grids_covered"] == 0 for d in result["difference"])
    assert result["bands"] == result["baseline"]


@settings(max_examples=8, deadline=None)
@given(st.floats(114.36, 114.46), st.floats(23.06, 23.13))
def test_adding_a_patrol_point_never_lowers_coverage(model, lon, lat) -> None:
    before = model.response(DEFAULT_BANDS, OriginKind.STATIONS)
    try:
        after = model.scenario(
            Scenario(add_points=((lon, lat),)), DEFAULT_BANDS, OriginKind.STATIONS
        )
    except InvalidInput:
        return  # no road within 500 m: refused, nothing to compare
    assert np.all(after.minutes_to_reach <= before.minutes_to_reach + 1e-9)
    assert all(d["grids_covered"] >= 0 for d in after.extra["difference"])


def test_closing_the_bridges_never_raises_coverage(model) -> None:
    bridges = tuple(f"东江{i}号桥" for i in range(1, 8))
    after = model.scenario(Scenario(close_roads=bridges), Bands((5,)), OriginKind.STATIONS)
    assert after.extra["difference"][0]["grids_covered"] < 0
    assert model.network.matrix.nnz > 0  # the published network is untouched
    again = model.response(Bands((5,)), OriginKind.STATIONS).bands()
    assert again == after.extra["baseline"]


def test_post_scenario_adds_a_point_and_reports_the_difference(client) -> None:
    body = {"origins": "stations", "minutes": [3, 5], "add_points": [[114.43, 23.09]]}
    response = client.post("/v1/coverage/scenario", json=body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["minutes"] == [3, 5] and len(answer["difference"]) == 2
    assert answer["difference"][0]["grids_covered"] > 0
    assert set(answer) >= {"bands", "uncovered_grids", "baseline", "difference", "dataset_version"}


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ({"close_roads": ["不存在桥"]}, 422, "no road named '不存在桥'"),
        ({"close_edges": [987654321]}, 422, "no road edge with id [987654321]"),
        ({"close_edges": ["x"]}, 422, "close_edges must be road edge ids"),
        ({"remove_origins": ["XD99"]}, 422, "no origin with code ['XD99']"),
        ({"speeds_kmh": {"primary": 0}}, 422, "speeds_kmh['primary'] = 0"),
        ({"speeds_kmh": {"hovercraft": 30}}, 422, "no road of class ['hovercraft']"),
        ({"origins": "drones"}, 422, "origins 'drones' is unknown"),
        ({"minutes": [0, 3]}, 422, "minutes '0'"),
        ({"add_points": [[114.0, 23.3]]}, 422, "more than 500 m from any road"),
        ({"add_points": [[23.1, 114.4]]}, 422, "lat, lon"),
        ({"surprise": 1}, 422, "unknown scenario field(s) ['surprise']"),
        ([1, 2], 422, "must be a JSON object"),
    ],
)
def test_bad_scenarios_are_refused_by_name(client, body, status, fragment) -> None:
    response = client.post("/v1/coverage/scenario", json=body)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert fragment in response.json()["detail"]


def test_oversize_scenario_and_bad_json(client) -> None:
    json_type = {"content-type": "application/json"}
    big = client.post(
        "/v1/coverage/scenario", content=b"[" + b"1," * 600_000 + b"1]", headers=json_type
    )
    assert big.status_code == 413
    bad = client.post("/v1/coverage/scenario", content=b"{nope", headers=json_type)
    assert bad.status_code == 422 and "not valid JSON" in bad.json()["detail"]


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"origins": "bogus"}, "origins 'bogus'"),
        ({"minutes": "0"}, "minutes '0'"),
        ({"minutes": "61"}, "minutes '61'"),
    ],
)
def test_bad_response_queries(client, params, fragment) -> None:
    response = client.get("/v1/coverage/response", params=params)
    assert response.status_code == 422 and fragment in response.json()["detail"]


def test_cli_bad_origins_exit_2(demo_readonly) -> None:
    result = run_cli("coverage", "response", "--origins", "x", settings=demo_readonly)
    assert result.returncode == 2 and "origins 'x' is unknown" in result.stderr
