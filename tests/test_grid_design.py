"""Grid design: proposals nest in their large grid, cover it exactly, are contiguous, keep
the grids already in the band bit for bit, and either fit the band or say why.

Random large grids (hypothesis): a lattice of rectangular grids with uneven row and column
widths and households placed at random; every property is checked against GEOS
(coverage validity, union, areas). On the demo: the whole district, loaded back as a draft.
"""

from __future__ import annotations

import json

import numpy as np
import orjson
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import MultiPolygon, box

from geoservice.grid_design import Band, Grid, Roads, Sizes, plan_large_grid
from tests.cli import run_cli
from tests.conftest import auth

PARENT = "44130200100101"


@st.composite
def large_grids(draw):
    """A lattice of grids (uneven widths), households at random places, a band."""
    columns = draw(st.lists(st.integers(1, 5), min_size=1, max_size=5))
    rows = draw(st.lists(st.integers(1, 5), min_size=1, max_size=4))
    xs = np.concatenate([[0], np.cumsum(columns)]) * 1e-3 + 114.4
    ys = np.concatenate([[0], np.cumsum(rows)]) * 1e-3 + 23.0
    cells = [
        box(xs[i], ys[j], xs[i + 1], ys[j + 1])
        for j in range(len(rows))
        for i in range(len(columns))
    ]
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    count = draw(st.integers(0, 400))
    points = np.column_stack([rng.uniform(xs[0], xs[-1], count), rng.uniform(ys[0], ys[-1], count)])
    households = rng.integers(1, 30, count)
    low = draw(st.integers(20, 300))
    high = low + draw(st.integers(0, 300))
    return cells, points, households, Band("households", low, high)


def _plan(cells, points, households, band, keep_fitting):
    sizes = Sizes(points, households, households * 3, np.empty((0, 2)))
    members = [
        Grid(f"{PARENT}{i + 1:02d}", f"测试-{i + 1}网格", PARENT, MultiPolygon([c]),
             sizes.of(c)[0], sizes.of(c)[1])
        for i, c in enumerate(cells)
    ]  # fmt: skip
    return members, plan_large_grid(PARENT, members, band, keep_fitting, sizes, Roads([]))


@settings(max_examples=60, deadline=None)
@given(large_grids(), st.booleans())
def test_proposals_nest_cover_exactly_are_contiguous_and_fit_or_say_why(case, keep_fitting):
    cells, points, households, band = case
    members, plan = _plan(cells, points, households, band, keep_fitting)
    after = [g.geometry for g in plan.after]
    whole = shapely.union_all(cells)
    # an exact coverage of the large grid: no gap, no overlap, shared edges identical
    assert shapely.coverage_is_valid(np.array(after, dtype=object))
    assert shapely.symmetric_difference(shapely.union_all(after), whole).area < 1e-12
    assert sum(g.area for g in after) == pytest.approx(whole.area, rel=1e-9)
    # contiguous: one polygon each
    assert all(len(g.geoms) == 1 for g in after)
    # sizes add up, and each is the places inside it
    assert sum(g.size for g in plan.after) == sum(g.size for g in members)
    # in the band, or listed with a reason
    listed = {o.code: o for o in plan.outside}
    for grid in plan.after:
        if band.low <= grid.size <= band.high:
            assert grid.code not in listed
        else:
            assert listed[grid.code].reason and listed[grid.code].size == grid.size
    # codes unique, from the large grid's scheme
    codes = [g.code for g in plan.after]
    assert len(set(codes)) == len(codes) and all(c.startswith(PARENT) for c in codes)
    # kept bit for bit
    old = {g.code: g for g in members}
    fitting = [g.code for g in members if band.low <= g.size <= band.high]
    if keep_fitting:
        assert plan.kept == sorted(fitting)
        by_code = {g.code: g for g in plan.after}
        for code in fitting:
            assert shapely.equals_exact(by_code[code].geometry, old[code].geometry, 0)
            assert by_code[code].name == old[code].name
    else:
        assert plan.kept == []


def test_a_large_grid_under_the_floor_says_so():
    cells = [box(114.4, 23.0, 114.401, 23.001), box(114.401, 23.0, 114.402, 23.001)]
    points = np.array([[114.4005, 23.0005], [114.4015, 23.0005]])
    _members, plan = _plan(cells, points, np.array([10, 10]), Band("households", 300, 500), True)
    assert len(plan.after) == 1 and plan.after[0].size == 20
    assert "whole large grid holds 20 households, under the floor" in plan.outside[0].reason


def test_a_grid_over_the_ceiling_is_cut_between_its_own_vertices():
    cell = shapely.Polygon(
        [(114.4, 23.0), (114.402, 23.0), (114.404, 23.0), (114.404, 23.001), (114.402, 23.001),
         (114.4, 23.001)]
    )  # fmt: skip
    rng = np.random.default_rng(5)
    points = np.column_stack([rng.uniform(114.4, 114.404, 200), rng.uniform(23.0, 23.001, 200)])
    _members, plan = _plan([cell], points, np.full(200, 5), Band("households", 300, 700), True)
    assert [g.size for g in plan.after] and all(300 <= g.size <= 700 for g in plan.after)
    vertices = {tuple(p) for p in shapely.get_coordinates(cell)}
    for grid in plan.after:  # no vertex a neighbour would lack
        assert {tuple(p) for p in shapely.get_coordinates(grid.geometry)} <= vertices


@pytest.fixture(scope="module")
def demo(make_database, demo_template):
    return make_database(template=demo_template)


def test_the_district_in_300_to_500_households_loads_as_a_draft(demo, tmp_path):
    out = tmp_path / "proposal"
    made = run_cli(
        "grids", "propose", "--all", "--households", "300-500", "--out", str(out), "--json",
        settings=demo, timeout=900,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    report = json.loads(made.stdout)
    assert sorted(p.name for p in out.iterdir()) == ["grid.gpkg", "population.gpkg", "report.json"]
    assert json.loads((out / "report.json").read_text(encoding="utf-8")) == report
    assert report["large_grids"] == 527 and report["grids_before"] == 2556
    assert report["grids_after"] < report["grids_before"]
    for plan in report["per_large_grid"]:
        for outside in plan["outside_band"]:
            assert outside["reason"] and not 300 <= outside["size"] <= 500
    assert (
        report["in_band"] + sum(len(p["outside_band"]) for p in report["per_large_grid"])
        == (report["grids_after"])
    )
    loaded = run_cli("etl", "bundle", str(out), "--draft", settings=demo, timeout=900)
    assert loaded.returncode == 0, loaded.stderr
    assert "merged into" in loaded.stderr and "population: no change" in loaded.stderr
    assert "draft dataset version 2" in loaded.stderr
    diff = json.loads(run_cli("diff", "1", "2", "--json", settings=demo).stdout)
    changed = diff["layers"]["grid"]
    assert set(diff["layers"]) == {"grid"} and changed["removed"]
    # every grid in the band before is unchanged after (kept bit for bit)
    untouched = set(changed["removed"]) | set(changed["geometry"]) | set(changed["attributes"])
    kept = report["kept"]
    assert kept == 258 and len(untouched) <= report["grids_before"] - kept


def test_the_api_answers_the_report_and_the_proposal(demo):
    from fastapi.testclient import TestClient

    from geoservice.api.app import create_app

    with TestClient(create_app(demo)) as client:
        body = {"towns": ["441302001"], "households": "300-500"}
        answer = client.post(
            "/v1/grids/propose", content=orjson.dumps(body),
            headers={**auth("gis"), "Content-Type": "application/json"},
        )  # fmt: skip
        assert answer.status_code == 200, answer.text
        document = answer.json()
        plans = document["report"]["per_large_grid"]
        assert plans and all(p["large_grid"].startswith("441302001") for p in plans)
        features = document["proposal"]["features"]
        assert len(features) == document["report"]["grids_after"]
        bad = client.post(
            "/v1/grids/propose", content=orjson.dumps({"towns": ["nope"]}),
            headers={**auth("gis"), "Content-Type": "application/json"},
        )  # fmt: skip
        assert bad.status_code == 422 and "no town nope" in bad.json()["detail"]
        band = client.post(
            "/v1/grids/propose", content=orjson.dumps({"all": True, "households": "500-300"}),
            headers={**auth("gis"), "Content-Type": "application/json"},
        )  # fmt: skip
        assert band.status_code == 422 and "LOW-HIGH" in band.json()["detail"]
        planner = client.post(
            "/v1/grids/propose", content=orjson.dumps(body),
            headers={**auth("planner"), "Content-Type": "application/json"},
        )  # fmt: skip
        assert planner.status_code == 403
