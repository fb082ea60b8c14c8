"""Where patrol points should stand: maximal covering and set covering, solved exactly
with HiGHS (MILP, sparse matrices built directly), beside a greedy heuristic.

- **Candidates**: road junctions in the planning area (by default the central city: the
  first-class patrol segments' area, 1 km around them), at least ``spacing_m`` apart.
- **Demand**: the coverage demand points (``geoservice.coverage``) in the area, one per
  grid and ``demand_cell_m`` square carrying the residents of all of them; points no
  candidate can reach in time are left out and counted.
- **Coverage**: candidate ``j`` covers demand point ``i`` when the road time from ``j`` to
  ``i`` is at most the limit (Church & ReVelle's ``a_ij``). Demand points with the same
  set of covering candidates are merged (weights added): an exact reduction.
- **Maximal covering** (Church & ReVelle 1974): choose ``k`` candidates maximising the
  residents covered. **Set covering** (Toregas et al. 1971): the fewest candidates covering
  every coverable demand point.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import highspy
import numpy as np
import shapely
from numpy.typing import NDArray
from scipy.sparse import csr_matrix, hstack, identity
from scipy.sparse.csgraph import dijkstra
from sqlalchemy.engine import Engine

from geoservice.coverage import CoverageModel
from geoservice.crs import from_metric
from geoservice.errors import InvalidInput
from geoservice.network import Network
from geoservice.store import VersionReader

DEFAULT_SPACING_M = 200.0
DEFAULT_DEMAND_CELL_M = 200.0
AREA_MARGIN_M = 1_000.0
CHUNK = 64
"""Candidates searched per Dijkstra call (rows of the distance matrix kept at once)."""


@dataclass(frozen=True)
class Instance:
    """A covering problem: ``cover[i, j]`` when candidate j reaches demand row i."""

    cover: csr_matrix  # demand rows x candidates, boolean
    weight: NDArray[np.float64]  # residents per demand row
    candidate_nodes: NDArray[np.int64]  # network node index per candidate
    candidate_lonlat: NDArray[np.float64]
    seconds: float
    demand_points: int  # before merging identical rows
    uncoverable_points: int
    uncoverable_weight: float


@dataclass(frozen=True)
class Solution:
    method: str  # "milp" or "greedy"
    chosen: NDArray[np.int64]  # candidate indices
    objective: float  # residents covered (maximal) or facilities (set covering)
    covered_weight: float
    gap: float  # relative optimality gap (0 when proven optimal; greedy: unknown = nan)
    seconds: float
    status: str


def central_area(
    engine: Engine, margin_m: float = AREA_MARGIN_M, *, version: int | None = None
) -> shapely.Geometry:
    """The patrol segments' area: their convex hull, ``margin_m`` around (WGS84).

    Parameters
    ----------
    engine
        Where the dataset versions are.
    margin_m
        Metres around the hull.
    version
        The dataset version whose patrol segments are read; None: the current one.

    Raises
    ------
    InvalidInput
        When that version has no patrol segments.
    """
    with VersionReader.open(engine, version) as reader:
        wkb = reader.scalar(
            "SELECT ST_AsBinary(ST_Buffer(ST_ConvexHull(ST_Collect(geom))::geography, :m)"
            "::geometry) FROM {patrol_segment} p",
            m=margin_m,
        )
    if wkb is None:
        which = "the current dataset" if version is None else f"dataset version {version}"
        msg = f"no patrol segments in {which}: pass a planning area"
        raise InvalidInput(msg)
    return shapely.from_wkb(bytes(wkb))


def candidates_in(network: Network, area: shapely.Geometry, spacing_m: float) -> NDArray[np.int64]:
    """Road junctions (nodes with three or more edges) in ``area``, thinned so that at
    most one stands in each ``spacing_m`` square."""
    degree = np.bincount(
        np.concatenate([network.source, network.target]), minlength=network.n_nodes
    )
    lon, lat = network.node_lonlat.T
    inside = shapely.contains_xy(area, lon, lat) & (degree >= 3)
    nodes = np.flatnonzero(inside)
    cells = np.floor(network.node_xy_metric[nodes] / spacing_m).astype(np.int64)
    _, first = np.unique(cells, axis=0, return_index=True)
    return np.sort(nodes[first])


def build_instance(
    model: CoverageModel,
    minutes: float,
    *,
    area: shapely.Geometry | None = None,
    spacing_m: float = DEFAULT_SPACING_M,
    demand_cell_m: float = DEFAULT_DEMAND_CELL_M,
    candidate_nodes: NDArray[np.int64] | None = None,
) -> Instance:
    """The covering problem for ``minutes`` over the model's network and demand."""
    if not 0 < minutes <= 60:
        msg = f"minutes {minutes!r} is out of range; expected (0, 60]"
        raise InvalidInput(msg)
    net, demand = model.network, model.demand
    if area is None:
        area = central_area(model.engine, version=model.version)
    if candidate_nodes is None:
        candidate_nodes = candidates_in(net, area, spacing_m)
    if len(candidate_nodes) == 0:
        msg = "no candidate road junction in the planning area"
        raise InvalidInput(msg)
    xy = net.points_along_edges(demand.edge, demand.fraction)
    lon, lat = from_metric(xy[:, 0], xy[:, 1])
    mine = np.flatnonzero(shapely.contains_xy(area, lon, lat) & (demand.weight > 0))
    # one demand point per grid and demand_cell_m square: the first, carrying them all
    cell = np.floor(xy[mine] / demand_cell_m).astype(np.int64)
    keys = np.column_stack([demand.grid[mine], cell])
    _, first, group = np.unique(keys, axis=0, return_index=True, return_inverse=True)
    pick = mine[first]
    edge, fraction = demand.edge[pick], demand.fraction[pick]
    weight = np.bincount(group.ravel(), weights=demand.weight[mine], minlength=len(first))
    seconds = minutes * 60.0
    u, v = net.source[edge], net.target[edge]
    with np.errstate(invalid="ignore"):
        to_u = np.where(fraction > 0, fraction * net.forward_s[edge], 0.0)
        to_v = np.where(fraction < 1, (1 - fraction) * net.backward_s[edge], 0.0)
    rows, cols = [], []
    for start in range(0, len(candidate_nodes), CHUNK):
        block = candidate_nodes[start : start + CHUNK]
        dist = dijkstra(net.matrix, directed=True, indices=block, limit=seconds)
        reach = np.minimum(dist[:, u] + to_u, dist[:, v] + to_v) <= seconds
        j, i = np.nonzero(reach)
        rows.append(i)
        cols.append(j + start)
    i, j = np.concatenate(rows), np.concatenate(cols)
    cover = csr_matrix(
        (np.ones(len(i), dtype=bool), (i, j)), shape=(len(edge), len(candidate_nodes))
    )
    coverable = np.diff(cover.indptr) > 0
    merged, merged_weight = _merge_rows(cover[coverable], weight[coverable])
    lonlat = net.node_lonlat[candidate_nodes]
    return Instance(
        cover=merged,
        weight=merged_weight,
        candidate_nodes=candidate_nodes,
        candidate_lonlat=lonlat,
        seconds=seconds,
        demand_points=len(pick),
        uncoverable_points=int((~coverable).sum()),
        uncoverable_weight=float(weight[~coverable].sum()),
    )


def _merge_rows(cover: csr_matrix, weight: NDArray) -> tuple[csr_matrix, NDArray]:
    """Rows with the same candidate set merged, weights added."""
    cover.sort_indices()
    keys = [
        cover.indices[a:b].tobytes()
        for a, b in zip(cover.indptr[:-1], cover.indptr[1:], strict=True)
    ]
    unique: dict[bytes, int] = {}
    group = np.array([unique.setdefault(k, len(unique)) for k in keys], dtype=np.int64)
    first = np.zeros(len(unique), dtype=np.int64)
    first[group[::-1]] = np.arange(len(group))[::-1]
    return cover[first], np.bincount(group, weights=weight, minlength=len(unique))


def maximal_covering(instance: Instance, k: int, *, time_limit_s: float = 60.0) -> Solution:
    """Exact: max sum(w_i y_i) s.t. y_i <= sum_{j covers i} x_j, sum(x) = k, x binary."""
    n_rows, n_cand = instance.cover.shape
    _check_k(k, n_cand)
    started = time.perf_counter()
    h = _highs(time_limit_s)
    inf = highspy.kHighsInf
    # columns: x_0..x_{n-1} (binary), then y_0..y_{m-1} in [0, 1] (integral at optimum)
    h.addVars(n_cand + n_rows, np.zeros(n_cand + n_rows), np.ones(n_cand + n_rows))
    h.changeColsIntegrality(
        n_cand, np.arange(n_cand, dtype=np.int32), np.full(n_cand, highspy.HighsVarType.kInteger)
    )
    h.changeColsCost(
        n_rows, np.arange(n_cand, n_cand + n_rows, dtype=np.int32), instance.weight.astype(float)
    )
    h.changeObjectiveSense(highspy.ObjSense.kMaximize)
    # y_i - sum_j a_ij x_j <= 0
    rows = hstack([-instance.cover.astype(float), identity(n_rows, format="csr")], format="csr")
    h.addRows(
        n_rows,
        np.full(n_rows, -inf),
        np.zeros(n_rows),
        rows.nnz,
        rows.indptr[:-1].astype(np.int32),
        rows.indices.astype(np.int32),
        rows.data,
    )
    h.addRow(k, k, n_cand, np.arange(n_cand, dtype=np.int32), np.ones(n_cand))
    h.run()
    x = np.asarray(h.getSolution().col_value[:n_cand])
    chosen = np.flatnonzero(x > 0.5)
    covered = covered_weight(instance, chosen)
    return Solution(
        "milp", chosen, covered, covered, _gap(h), time.perf_counter() - started, _status(h)
    )


def set_covering(instance: Instance, *, time_limit_s: float = 60.0) -> Solution:
    """Exact: min sum(x) s.t. sum_{j covers i} x_j >= 1 for every coverable demand row."""
    n_rows, n_cand = instance.cover.shape
    started = time.perf_counter()
    h = _highs(time_limit_s)
    h.addVars(n_cand, np.zeros(n_cand), np.ones(n_cand))
    h.changeColsIntegrality(
        n_cand, np.arange(n_cand, dtype=np.int32), np.full(n_cand, highspy.HighsVarType.kInteger)
    )
    h.changeColsCost(n_cand, np.arange(n_cand, dtype=np.int32), np.ones(n_cand))
    cover = instance.cover.tocsr()
    h.addRows(
        n_rows,
        np.ones(n_rows),
        np.full(n_rows, highspy.kHighsInf),
        cover.nnz,
        cover.indptr[:-1].astype(np.int32),
        cover.indices.astype(np.int32),
        np.ones(cover.nnz),
    )
    h.run()
    x = np.asarray(h.getSolution().col_value)
    chosen = np.flatnonzero(x > 0.5)
    return Solution(
        "milp",
        chosen,
        float(len(chosen)),
        covered_weight(instance, chosen),
        _gap(h),
        time.perf_counter() - started,
        _status(h),
    )


def greedy_maximal(instance: Instance, k: int) -> Solution:
    """Add, k times, the candidate that covers the most residents not yet covered."""
    _check_k(k, instance.cover.shape[1])
    started = time.perf_counter()
    by_candidate = instance.cover.tocsc()
    left = instance.weight.astype(float).copy()
    chosen: list[int] = []
    for _ in range(k):
        gain = by_candidate.T @ left
        gain[chosen] = -1.0
        best = int(np.argmax(gain))
        chosen.append(best)
        left[by_candidate.indices[by_candidate.indptr[best] : by_candidate.indptr[best + 1]]] = 0
    picked = np.array(sorted(chosen), dtype=np.int64)
    covered = covered_weight(instance, picked)
    return Solution(
        "greedy", picked, covered, covered, float("nan"), time.perf_counter() - started, "heuristic"
    )


def greedy_set_cover(instance: Instance) -> Solution:
    """Add the candidate covering the most uncovered demand rows until all are covered."""
    started = time.perf_counter()
    by_candidate = instance.cover.tocsc()
    left = np.ones(instance.cover.shape[0])
    chosen: list[int] = []
    while left.any():
        gain = by_candidate.T @ left
        best = int(np.argmax(gain))
        chosen.append(best)
        left[by_candidate.indices[by_candidate.indptr[best] : by_candidate.indptr[best + 1]]] = 0
    picked = np.array(sorted(chosen), dtype=np.int64)
    return Solution(
        "greedy",
        picked,
        float(len(picked)),
        covered_weight(instance, picked),
        float("nan"),
        time.perf_counter() - started,
        "heuristic",
    )


def covered_weight(instance: Instance, chosen: NDArray[np.int64]) -> float:
    hit = np.asarray(instance.cover[:, chosen].sum(axis=1)).ravel() > 0
    return float(instance.weight[hit].sum())


def _check_k(k: int, n_candidates: int) -> None:
    if not isinstance(k, int | np.integer) or not 0 < k <= n_candidates:
        msg = f"k = {k!r}: expected a whole number in [1, {n_candidates}] (the candidates)"
        raise InvalidInput(msg)


def _highs(time_limit_s: float) -> highspy.Highs:
    with _stdout_silenced():  # HiGHS 1.16 prints a banner from its constructor
        h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("time_limit", float(time_limit_s))
    h.setOptionValue("mip_rel_gap", 0.0)
    h.setOptionValue("threads", 1)
    return h


@contextmanager
def _stdout_silenced() -> Iterator[None]:
    """File descriptor 1 to /dev/null for a moment (C++ output bypasses sys.stdout)."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def _gap(h: highspy.Highs) -> float:
    return float(h.getInfo().mip_gap)


def _status(h: highspy.Highs) -> str:
    return h.modelStatusToString(h.getModelStatus())
