"""Province-wide coverage on Dask, district by district (``geoservice.coverage.partitioned``),
against the single-process evaluation of the same version, grid by grid, on a three-district
scaled demo (three copies of Huicheng side by side, their roads joined at the borders)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from geoservice.bands import DEFAULT_BANDS, Bands
from geoservice.coverage import CoverageModel, OriginKind
from geoservice.coverage.partitioned import (
    DistrictTask,
    district_coverage,
    response_by_district,
)
from geoservice.db import create_engine
from geoservice.settings import Settings
from tests.cli import run_cli

DISTRICTS = 3


@pytest.fixture(scope="module")
def province(make_database, tmp_path_factory) -> Settings:
    """A database holding the three-district demo, and a state directory of its own."""
    from etl.commands import run_loads
    from geoservice.demo import demo_steps
    from geoservice.synthetic.scale import write_scaled_demo

    files = write_scaled_demo(tmp_path_factory.mktemp("province"), DISTRICTS, seed=2020)
    settings = make_database()
    engine = create_engine(settings, "writer")
    run_loads(
        engine, demo_steps(files, allow_outside=True), dry_run=False, note="3", with_diff=False
    )
    engine.dispose()
    return settings.model_copy(update={"state_dir": tmp_path_factory.mktemp("state")})


@pytest.fixture(scope="module")
def single(province):
    """The single-process coverage model of the current version."""
    engine = create_engine(province, "reader")
    yield CoverageModel.load(engine)
    engine.dispose()


def _same(partitioned, whole) -> None:
    """Grid by grid: the same grids, minutes to reach (inf beyond the horizon) and nearest
    origin; and the same bands and uncovered grids."""
    assert list(partitioned.grids.codes) == list(whole.grids.codes)
    assert np.array_equal(partitioned.minutes_to_reach, whole.minutes_to_reach)
    assert partitioned.nearest_origin == whole.nearest_origin
    assert partitioned.bands() == whole.bands()


@pytest.mark.parametrize(
    ("minutes", "origins"),
    [(DEFAULT_BANDS, OriginKind.ALL), (Bands((2, 4)), OriginKind.STATIONS)],
)
def test_district_by_district_on_a_local_cluster_equals_one_process(
    province, single, minutes, origins
) -> None:
    partitioned = response_by_district(province, minutes, origins, n_workers=2)
    # at the same horizon (the largest band), grid by grid
    _same(partitioned, single.response(minutes, origins, horizon_minutes=minutes[-1]))
    # and the bands of the default 60-minute horizon: they compare minutes with the bands only
    whole = single.response(minutes, origins)
    assert partitioned.bands() == whole.bands()
    reached = np.isfinite(partitioned.minutes_to_reach)
    assert np.array_equal(partitioned.minutes_to_reach[reached], whole.minutes_to_reach[reached])
    assert reached.sum() > 0.1 * len(reached)  # a real answer, not everything unreached
    assert partitioned.dataset_version == single.version


def test_a_district_task_searches_only_the_origins_of_its_halo(province, single) -> None:
    """Each task runs from a strict subset of the origins (the halo), not the province's."""
    everyone = len(single.origins(OriginKind.ALL).codes)
    districts = sorted({g.hierarchy["district"]["code"] for g in single.index.grids})
    assert len(districts) == DISTRICTS
    for district in districts:
        task = DistrictTask(province, single.version, district, DEFAULT_BANDS, OriginKind.ALL)
        answer = district_coverage(task)
        assert 0 < answer.origins_used < everyone, district
        assert len(answer.codes) == sum(
            g.hierarchy["district"]["code"] == district for g in single.index.grids
        )


def test_the_horizon_may_not_fall_short_of_the_largest_band(single) -> None:
    with pytest.raises(ValueError, match=r"horizon 4\.0 min must be at least the largest band"):
        single.response(DEFAULT_BANDS, OriginKind.ALL, horizon_minutes=4.0)


def test_the_command_line_evaluates_by_district(province, single) -> None:
    """``geoservice coverage response --by-district`` answers the single-process bands."""
    state = {"GEOSERVICE_STATE_DIR": str(province.state_dir)}
    done = run_cli(
        "coverage", "response", "--by-district", "--workers", "1", "--json",
        settings=province, env=state,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["bands"] == single.response(DEFAULT_BANDS).bands()
    refused = run_cli(
        "coverage", "response", "--by-district", "--weight", "events",
        settings=province, env=state,
    )  # fmt: skip
    assert refused.returncode == 2
    assert "--by-district weighs grids by residents only, not --weight 'events'" in refused.stderr
