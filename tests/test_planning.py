"""Patrol point planning: the MILP against brute force and greedy."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.sparse import csr_matrix

from geoservice import planning
from geoservice.coverage import CoverageModel
from geoservice.db import create_engine
from geoservice.errors import InvalidInput
from tests.cli import run_cli


def _instance(cover: np.ndarray, weight: np.ndarray) -> planning.Instance:
    n = cover.shape[1]
    return planning.Instance(
        cover=csr_matrix(cover),
        weight=weight,
        candidate_nodes=np.arange(n),
        candidate_lonlat=np.zeros((n, 2)),
        seconds=180.0,
        demand_points=len(weight),
        uncoverable_points=0,
        uncoverable_weight=0.0,
    )


@st.composite
def tiny(draw):
    rows, cols = draw(st.integers(2, 9)), draw(st.integers(2, 7))
    cover = np.array([[draw(st.booleans()) for _ in range(cols)] for _ in range(rows)], dtype=bool)
    cover[np.arange(rows), [draw(st.integers(0, cols - 1)) for _ in range(rows)]] = True
    weight = np.array([draw(st.integers(1, 50)) for _ in range(rows)], dtype=float)
    k = draw(st.integers(1, cols))
    return cover, weight, k


@settings(max_examples=60, deadline=None)
@given(tiny())
def test_milp_matches_brute_force_and_beats_greedy(case) -> None:
    cover, weight, k = case
    instance = _instance(cover, weight)
    cols = cover.shape[1]
    best = max(
        weight[cover[:, list(pick)].any(axis=1)].sum()
        for pick in itertools.combinations(range(cols), k)
    )
    milp = planning.maximal_covering(instance, k)
    greedy = planning.greedy_maximal(instance, k)
    assert milp.status == "Optimal" and len(milp.chosen) == k
    assert milp.objective == pytest.approx(best)
    assert greedy.objective <= milp.objective + 1e-9
    fewest = min(
        size
        for size in range(1, cols + 1)
        for pick in itertools.combinations(range(cols), size)
        if cover[:, list(pick)].any(axis=1).all()
    )
    exact = planning.set_covering(instance)
    assert exact.objective == fewest and cover[:, exact.chosen].any(axis=1).all()
    assert planning.greedy_set_cover(instance).objective >= fewest


@pytest.fixture(scope="module")
def model(demo_readonly) -> Iterator[CoverageModel]:
    engine = create_engine(demo_readonly)
    yield CoverageModel.load(engine)
    engine.dispose()


def test_central_city_instance(model) -> None:
    area = shapely.Point(114.41, 23.10).buffer(0.02)
    instance = planning.build_instance(model, 3, area=area, spacing_m=300)
    n_rows, n_cand = instance.cover.shape
    assert n_cand > 20 and n_rows > 50 and instance.demand_points >= n_rows
    milp = planning.maximal_covering(instance, 3)
    greedy = planning.greedy_maximal(instance, 3)
    assert milp.status == "Optimal" and milp.gap <= 1e-9
    assert milp.objective >= greedy.objective
    # the coverage matrix agrees with the network: each candidate reaches its rows in time
    reach = model.network.reach(
        model.network.snap_points(*instance.candidate_lonlat[milp.chosen].T), 180.0
    )
    assert np.isfinite(reach.node_time).sum() > 0


@pytest.mark.parametrize("k", [0, -1, 10_000])
def test_k_out_of_range(k) -> None:
    instance = _instance(np.eye(3, dtype=bool), np.ones(3))
    with pytest.raises(InvalidInput, match=r"k = .*expected a whole number in \[1, 3\]"):
        planning.maximal_covering(instance, k)


def test_cli_plan(demo_readonly) -> None:
    bad = run_cli("coverage", "plan", "--k", "0", settings=demo_readonly)
    assert bad.returncode == 2 and "k = 0" in bad.stderr
    both = run_cli("coverage", "plan", settings=demo_readonly)
    assert both.returncode == 2 and "--k N" in both.stderr
    minutes = run_cli("coverage", "plan", "--k", "2", "--minutes", "0", settings=demo_readonly)
    assert minutes.returncode == 2 and "minutes 0.0" in minutes.stderr


def test_planning_reads_the_models_version(demo_settings, demo_files, tmp_path) -> None:
    """A model of version N plans over version N's patrol area, whatever is current since."""
    import geopandas as gpd

    engine = create_engine(demo_settings)
    try:
        model = CoverageModel.load(engine)
        before = planning.central_area(engine)
        patrols = gpd.read_file(demo_files.patrols)
        path = tmp_path / "patrols.geojson"
        patrols.iloc[:2].to_file(path, driver="GeoJSON")
        published = run_cli("etl", "patrols", str(path), settings=demo_settings)
        assert published.returncode == 0, published.stderr
        now = planning.central_area(engine)
        assert now.area < before.area * 0.9  # the current version's area is another one
        instance = planning.build_instance(model, 3, spacing_m=400)
        expected = planning.candidates_in(model.network, before, 400)
        assert np.array_equal(instance.candidate_nodes, expected)
        assert planning.central_area(engine, version=model.version).equals(before)
    finally:
        engine.dispose()
