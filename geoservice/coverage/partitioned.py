"""Province-wide response coverage on a Dask cluster, one task per district.

A task evaluates only its district's grids, from only the origins within its *halo*: the
largest band times the network's top speed (plus a metre), around the district's demand
points and the ends of their edges. Nothing travels farther than the top speed allows, so
an origin outside the halo reaches none of those points or ends within the largest band
(``network/search.py`` relies on the same bound), and the district's answer — each grid's
``minutes_to_reach`` and ``nearest_origin`` — is the single-process one at the same horizon
(``coverage.evaluate(..., horizon_minutes=largest band)``), grid by grid; the bands are the
single-process answer's bands, since they compare minutes with the band limits only. The
origins keep their order in the subset, so ties go to the same origin
(``network.search.first_origins``).

A task carries only the database settings, the version, the district's code, the bands and
the origin kind: each worker process opens that version's state from its state directory
(``VersionState.build(..., store=)``, kept per process), so the workers of one host map one
copy of the network and the demand, and a worker on another host builds them there once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray
from scipy.spatial import KDTree

from geoservice.bands import Bands
from geoservice.coverage.demand import Demand, Grids, load_grids
from geoservice.coverage.kinds import OriginKind
from geoservice.coverage.model import CoverageModel, evaluate
from geoservice.coverage.origins import Origins
from geoservice.coverage.result import Coverage
from geoservice.settings import Settings
from geoservice.store import VersionReader

HALO_SLACK_M = 1.0
"""Added to the halo's radius, as ``network/search.py`` adds it to its own."""


@dataclass(frozen=True)
class DistrictTask:
    """What one task is sent: where to read, and which district to evaluate."""

    settings: Settings
    version: int
    district: str
    minutes: Bands
    origins: OriginKind


@dataclass(frozen=True)
class DistrictAnswer:
    """One district's grids (codes), their minutes to reach and nearest origins."""

    district: str
    codes: list[str]
    minutes_to_reach: NDArray[np.float64]
    nearest_origin: list[str | None]
    origins_used: int


def response_by_district(
    settings: Settings,
    minutes: Bands,
    origins: OriginKind = OriginKind.ALL,
    *,
    version: int | None = None,
    n_workers: int | None = None,
) -> Coverage:
    """Response coverage of ``version`` (default: the current one) from ``origins`` within
    ``minutes``, evaluated district by district on the Dask cluster of ``settings``
    (``GEOSERVICE_DASK_SCHEDULER``, else a local cluster of ``n_workers`` processes); the
    same answer as ``CoverageModel.response(minutes, origins)``."""
    from geoservice.analysis_cluster import analysis_client
    from geoservice.db import open_engine

    minutes = Bands(minutes)
    engine = open_engine(settings)
    try:
        with VersionReader.open(engine, version) as reader:
            version = reader.version
            districts = [row.code for row in reader.all("SELECT code FROM {district} d")]
        grids = load_grids(engine, version)
    finally:
        engine.dispose()
    tasks = [DistrictTask(settings, version, d, minutes, origins) for d in sorted(districts)]
    with analysis_client(settings, n_workers=n_workers) as client:
        answers = client.gather(client.map(district_coverage, tasks, pure=False))
    return gathered(answers, grids, minutes, origins, version)


def gathered(
    answers: Sequence[DistrictAnswer],
    grids: Grids,
    minutes: Bands,
    origins: OriginKind,
    version: int,
) -> Coverage:
    """The districts' answers as one ``Coverage`` over ``grids``, in grid code order."""
    reach = np.full(len(grids.codes), np.inf)
    nearest: list[str | None] = [None] * len(grids.codes)
    seen = np.zeros(len(grids.codes), dtype=bool)
    for answer in answers:
        at = np.searchsorted(grids.codes, answer.codes)
        reach[at] = answer.minutes_to_reach
        seen[at] = True
        for i, code in zip(at.tolist(), answer.nearest_origin, strict=True):
            nearest[i] = code
    if not seen.all():
        msg = f"grids in no district: {', '.join(grids.codes[~seen][:5])}"
        raise ValueError(msg)
    return Coverage(minutes, origins, grids, reach, nearest, version)


def district_coverage(task: DistrictTask) -> DistrictAnswer:
    """One district's coverage, in a worker process (the version's state opened there)."""
    model = _model(task.settings, task.version)
    mine = np.flatnonzero(
        np.array([g.hierarchy["district"]["code"] == task.district for g in model.index.grids])
    )
    grids, demand = district_demand(model.grids, model.demand, mine)
    horizon = task.minutes[-1]
    near = halo_origins(model, demand, model.origins(task.origins), horizon)
    codes = [str(c) for c in grids.codes]
    if not near.codes:
        return DistrictAnswer(
            task.district, codes, np.full(len(codes), np.inf), [None] * len(codes), 0
        )
    found = evaluate(
        model.network,
        grids,
        demand,
        near,
        task.minutes,
        label=task.origins,
        horizon_minutes=horizon,
    )
    return DistrictAnswer(
        task.district, codes, found.minutes_to_reach, found.nearest_origin, len(near.codes)
    )


def district_demand(grids: Grids, demand: Demand, mine: NDArray[np.int64]) -> tuple[Grids, Demand]:
    """The grids numbered ``mine`` (ascending) and their demand points, renumbered, in the
    order they have in ``grids`` and ``demand``."""
    number = np.full(len(grids.codes), -1)
    number[mine] = np.arange(len(mine))
    rows = np.flatnonzero(number[demand.grid] >= 0)
    sub_grids = Grids(
        grids.codes[mine],
        grids.names[mine],
        grids.towns[mine],
        grids.population[mine],
        grids.area_km2[mine],
        grids.polygons[mine],
    )
    sub_demand = replace(
        demand,
        grid=number[demand.grid[rows]],
        edge=demand.edge[rows],
        fraction=demand.fraction[rows],
        weight=demand.weight[rows],
    )
    return sub_grids, sub_demand


def halo_origins(
    model: CoverageModel, demand: Demand, origins: Origins, horizon_minutes: float
) -> Origins:
    """The origins with a snapped point within the halo of ``demand`` (the horizon at the
    network's top speed, around the demand points and the ends of their edges), in their
    order; all of them when the top speed is unbounded."""
    network = model.network
    radius = network.top_speed_mps * horizon_minutes * 60.0 + HALO_SLACK_M
    if not np.isfinite(radius):
        return origins
    if len(demand.edge) == 0:
        return origins.only([])
    ends = np.unique(np.concatenate([network.source[demand.edge], network.target[demand.edge]]))
    points = np.concatenate(
        [
            network.points_along_edges(demand.edge, demand.fraction),
            network.node_xy_metric[ends],
        ]
    )
    snaps = origins.snaps
    placed = network.points_along_edges(snaps.edge, snaps.fraction)
    distance, _ = KDTree(points).query(placed, distance_upper_bound=radius)
    keep = np.unique(snaps.origin[distance <= radius])
    return origins.only(keep.tolist())


@lru_cache(maxsize=2)
def _model(settings: Settings, version: int) -> CoverageModel:
    """The coverage model of ``version`` in this worker process, from the state directory
    (the worker's own ``GEOSERVICE_STATE_DIR`` when set, else the one ``settings`` names)."""
    from geoservice.db import open_engine
    from geoservice.state import VersionState
    from geoservice.state_files import StateStore

    here = Settings().state_dir
    store = StateStore(here if here is not None else settings.resolved_state_dir)
    state = VersionState.build(open_engine(settings), version, full=False, store=store)
    return state.coverage()
