"""Grid design: proposals nest in their large grid, cover it exactly, are contiguous, keep
the grids already in the band bit for bit, and either fit the band or say why.

Random large grids (hypothesis): a lattice of rectangular grids with uneven row and column
widths, households placed at random, and random straight roads and a river through it that
cut it into blocks; every property is checked against GEOS (coverage validity, union,
areas, no vertex added to the large grid's edge). On the demo: the whole district, loaded
back as a draft, and one town read alone as it is read with the district.
"""

from __future__ import annotations

import json

import numpy as np
import orjson
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import LineString, MultiPolygon, Polygon, box

from geoservice.grid_design import Band, Grid
from geoservice.grid_design.blocks import SLIVER_M2, SLIVER_WIDTH_M, Cuts, blocks_of
from geoservice.grid_design.design import plan_large_grid
from geoservice.grid_design.measure import Roads, Sizes, metric
from geoservice.grid_design.partition import group_blocks
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
    # roads: straight lines across the lattice (some ending inside), and one winding river
    x0, x1, y0, y1 = xs[0], xs[-1], ys[0], ys[-1]
    roads = []
    for _ in range(draw(st.integers(0, 12))):
        ax, bx = rng.uniform(x0 - 1e-3, x1 + 1e-3, 2)
        ay, by = rng.uniform(y0 - 1e-3, y1 + 1e-3, 2)
        if draw(st.booleans()):  # mostly along the lattice's axes, as streets run
            by = ay if draw(st.booleans()) else by
            bx = ax if by != ay else bx
        roads.append(LineString([(ax, ay), (bx, by)]))
    if draw(st.booleans()):
        t = np.linspace(0, 1, 9)
        river_y = y0 + (y1 - y0) * (0.3 + 0.4 * t + 0.1 * np.sin(7 * t + seed % 5))
        roads.append(LineString(np.column_stack([x0 - 1e-3 + (x1 - x0 + 2e-3) * t, river_y])))
    return cells, points, households, Band("households", low, high), roads


def _plan(cells, points, households, band, keep_fitting, roads=()):
    sizes = Sizes(points, households, households * 3, np.empty((0, 2)))
    members = [
        Grid(f"{PARENT}{i + 1:02d}", f"测试-{i + 1}网格", PARENT, MultiPolygon([c]),
             sizes.of(c)[0], sizes.of(c)[1])
        for i, c in enumerate(cells)
    ]  # fmt: skip
    cuts = Cuts(list(roads))
    return members, plan_large_grid(
        PARENT, members, band, keep_fitting, sizes, Roads(list(roads)), cuts
    )


@settings(max_examples=60, deadline=None)
@given(large_grids(), st.booleans())
def test_proposals_nest_cover_exactly_are_contiguous_and_fit_or_say_why(case, keep_fitting):
    cells, points, households, band, roads = case
    members, plan = _plan(cells, points, households, band, keep_fitting, roads)
    after = [g.geometry for g in plan.after]
    whole = shapely.union_all(cells)
    # no vertex on the large grid's edge that it lacked: the grids outside still match
    edge_vertices = {tuple(p) for p in shapely.get_coordinates(cells)}
    coords = shapely.get_coordinates(after)
    on_edge = shapely.dwithin(shapely.points(coords), whole.boundary, 1e-9)
    assert {tuple(p) for p in coords[on_edge]} <= edge_vertices
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


@settings(max_examples=40, deadline=None)
@given(large_grids())
def test_blocks_cover_their_area_exactly_and_follow_the_roads(case):
    cells, _points, _households, _band, roads = case
    area = shapely.coverage_union_all(cells)
    blocks = blocks_of(area, Cuts(roads))
    assert blocks is not None
    assert shapely.coverage_is_valid(np.array(blocks, dtype=object))
    assert sum(b.area for b in blocks) == pytest.approx(area.area, rel=1e-9)
    assert shapely.symmetric_difference(shapely.union_all(blocks), area).area < 1e-12
    edge_vertices = {tuple(p) for p in shapely.get_coordinates(area)}
    for block in blocks:
        assert isinstance(block, Polygon) and block.is_valid
        coords = shapely.get_coordinates(block)
        on_edge = shapely.dwithin(shapely.points(coords), area.boundary, 1e-9)
        assert {tuple(p) for p in coords[on_edge]} <= edge_vertices
        metres = metric(block)
        if len(blocks) > 1:  # slivers merged away
            assert metres.area >= SLIVER_M2 or 2 * metres.area / metres.length >= SLIVER_WIDTH_M


def test_a_road_and_a_river_cut_blocks_and_a_road_far_from_any_vertex_does_not():
    # a 1 km x 0.5 km large grid with vertices every 100 m along its long sides
    xs = np.linspace(114.4, 114.41, 11)
    ring = [(x, 23.0) for x in xs] + [(x, 23.005) for x in xs[::-1]]
    area = Polygon(ring)
    road = LineString([(114.4031, 22.999), (114.4029, 23.006)])  # 10-20 m from vertices
    river = LineString([(114.4071, 22.999), (114.4069, 23.006)])
    far = LineString([(114.399, 23.0025), (114.411, 23.0025)])  # meets the short sides only
    blocks = blocks_of(area, Cuts([road, river, far]))
    assert len(blocks) == 3
    assert sorted(round(b.bounds[0], 4) for b in blocks) == [114.4, 114.403, 114.407]
    assert shapely.coverage_is_valid(np.array(blocks, dtype=object))


def test_grouping_keeps_regions_contiguous_and_in_the_band():
    # a 12 x 12 lattice of blocks of 10 households: 1,440 households into 300-500
    side = 12
    sizes = np.full(side * side, 10)
    xy = np.array([(100.0 * (i % side), 100.0 * (i // side)) for i in range(side * side)])
    neighbours = [
        [j for j in (i - 1, i + 1, i - side, i + side)
         if 0 <= j < side * side and (abs(j - i) == side or j // side == i // side)]
        for i in range(side * side)
    ]  # fmt: skip
    regions = group_blocks(sizes, xy, neighbours, Band("households", 300, 500))
    assert sorted(i for r in regions for i in r) == list(range(side * side))
    assert len(regions) == 4 and all(300 <= sizes[r].sum() <= 500 for r in regions)
    for region in regions:
        inside = set(region)
        reached, todo = {region[0]}, [region[0]]
        while todo:
            for j in neighbours[todo.pop()]:
                if j in inside and j not in reached:
                    reached.add(j)
                    todo.append(j)
        assert reached == inside


def test_a_block_over_the_ceiling_that_no_chord_divides_says_so():
    triangle = Polygon([(114.4, 23.0), (114.402, 23.0), (114.401, 23.002)])
    points = np.array([[114.401, 23.0005]])
    _members, plan = _plan(
        [triangle], points, np.array([900]), Band("households", 300, 500), True, [
            LineString([(114.39, 23.01), (114.391, 23.011)])]
    )  # fmt: skip
    assert len(plan.after) == 1 and plan.after[0].size == 900
    assert plan.outside[0].reason.startswith("one block of 900 households, larger than the ceiling")


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


def _demo_rivers(path):
    """The demo's Dongjiang and Xizhijiang (synthetic courses) as a GeoJSON file."""
    from geoservice.synthetic.roads import DONGJIANG, XIZHIJIANG

    features = [
        {"type": "Feature", "properties": {"waterway": "river"},
         "geometry": {"type": "LineString", "coordinates": [list(p) for p in course]}}
        for course in (DONGJIANG, XIZHIJIANG)
    ]  # fmt: skip
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


def test_the_district_in_300_to_500_households_loads_as_a_draft(demo, tmp_path):
    out = tmp_path / "proposal"
    rivers = _demo_rivers(tmp_path / "rivers.geojson")
    made = run_cli(
        "grids", "propose", "--all", "--households", "300-500", "--out", str(out), "--json",
        "--rivers", str(rivers), settings=demo, timeout=900,
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
    # most grids in the band; those outside say why (blocks, floor, ceiling)
    assert report["in_band"] >= 0.8 * report["grids_after"]


def test_a_scope_reads_only_its_own_and_plans_as_the_wider_scope_does(demo):
    from geoservice.datasets import current_version_id
    from geoservice.db import create_engine
    from geoservice.grid_design import Scope, propose

    band = Band("households", 300, 500)
    engine = create_engine(demo)
    try:
        with engine.connect() as conn:
            version = current_version_id(conn)
            town = propose(conn, version, Scope(towns=("441302003",)), band)
            unit = town.plans[0].code[:12]
            alone = propose(conn, version, Scope(units=(unit,)), band)
    finally:
        engine.dispose()
    assert {g.parent_code for g in town.grids} == {p.code for p in town.plans}
    assert alone.plans and all(p.code.startswith(unit) for p in alone.plans)
    wider = {p.code: p for p in town.plans}
    for plan in alone.plans:  # the same plan whatever else was read
        same = wider[plan.code]
        assert plan.to_json() == same.to_json()
        for a, b in zip(plan.after, same.after, strict=True):
            assert a.code == b.code and shapely.equals_exact(a.geometry, b.geometry, 0)


def test_the_api_answers_the_report_and_the_proposal(demo):
    from fastapi.testclient import TestClient

    from geoservice.server.app import create_app

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


def _chords_across_redrawn(proposal, count=3):
    """Lines between two vertices of the area a large grid redraws, inside it: rivers that
    cut its blocks (a cut must end on the edge's own vertices)."""
    chords = []
    for plan in proposal.plans:
        kept = set(plan.kept)
        redrawn = [g.geometry for g in plan.before if g.code not in kept]
        area = shapely.coverage_union_all(redrawn) if len(redrawn) >= 3 else None
        if area is None or area.geom_type != "Polygon":
            continue
        corners = np.array(area.exterior.coords)[:-1]
        lines = [
            LineString([corners[i], corners[j]])
            for i in range(len(corners)) for j in range(i + 1, len(corners))
        ]  # fmt: skip
        inside = [
            line for line in lines
            if shapely.covered_by(line, area) and not shapely.covered_by(line, area.boundary)
            and len(shapely.get_coordinates(shapely.intersection(line, area.boundary))) == 2
        ]  # fmt: skip
        if inside:
            chords.append(max(inside, key=lambda line: line.length))
        if len(chords) == count:
            break
    return chords


def test_the_api_takes_rivers_as_the_core_does(demo):
    """``rivers`` in the body (a GeoJSON FeatureCollection, as ``--rivers FILE`` reads)
    cut blocks as the core's ``rivers`` do: the same proposal, and not the one without."""
    from fastapi.testclient import TestClient

    from geoservice.datasets import current_version_id
    from geoservice.db import create_engine
    from geoservice.grid_design import Scope, propose
    from geoservice.server.app import create_app

    scope, band = Scope(towns=("441302001",)), Band.parse("households", "300-500")
    engine = create_engine(demo, "owner")
    try:
        with engine.connect() as conn:
            version = current_version_id(conn)
            without = propose(conn, version, scope, band)
            rivers = _chords_across_redrawn(without)
            core = propose(conn, version, scope, band, rivers=rivers)
    finally:
        engine.dispose()
    assert len(rivers) == 3
    assert core.geojson() != without.geojson()  # the rivers cut
    collection = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "id": k, "properties": {"waterway": "river"},
             "geometry": shapely.geometry.mapping(line)}
            for k, line in enumerate(rivers)
        ],
    }  # fmt: skip
    headers = {**auth("gis"), "Content-Type": "application/json"}
    body = {"towns": ["441302001"], "households": "300-500"}
    with TestClient(create_app(demo)) as client:
        answer = client.post(
            "/v1/grids/propose",
            content=orjson.dumps({**body, "rivers": collection}),
            headers=headers,
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["proposal"] == orjson.loads(orjson.dumps(core.geojson()))
        assert answer.json()["report"] == orjson.loads(orjson.dumps(core.report()))
        bad = {
            "a point": {"type": "Point", "coordinates": [114.4, 23.1]},
            "degrees out of range": {"type": "LineString", "coordinates": [[0, 0], [500, 2]]},
            "one position": {"type": "LineString", "coordinates": [[114.4, 23.1]]},
            "not numbers": {"type": "LineString", "coordinates": [["a", "b"], [1, 2]]},
        }
        for kind, geometry in bad.items():
            posted = {**body, "rivers": {"type": "FeatureCollection",
                      "features": [{"type": "Feature", "geometry": geometry}]}}  # fmt: skip
            refused = client.post(
                "/v1/grids/propose", content=orjson.dumps(posted), headers=headers
            )
            assert refused.status_code == 422, (kind, refused.text)
            assert "rivers" in refused.json()["detail"], (kind, refused.json())
