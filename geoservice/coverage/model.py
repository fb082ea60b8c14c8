"""Coverage for planners: officers per unit ("一村(居)一警") and 1/3/5-minute response.

**When a grid counts as covered** (the one definition, used by the API, the CLI, the
notebooks and the what-if scenarios): a grid's residents are spread evenly over its
*demand points* — points every ``DEMAND_STEP_M`` along the roads inside it (a grid with no
road inside gets one point: the road point nearest to it). The grid's
``minutes_to_reach`` is the time by which at least half of its demand points are reached
from the nearest origin (the population-weighted median); the grid is covered within
``T`` minutes when ``minutes_to_reach <= T``. Its ``nearest_origin`` is the origin that
reached the nearer end of that median point's edge first (the edge's source on equal times;
between origins reaching that end at the same time, the first in the origins' order:
``network.search.first_origins``).
"""

from __future__ import annotations

import copy
from dataclasses import replace
from datetime import datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy.engine import Engine

from geoservice.bands import DEFAULT_BANDS, Bands
from geoservice.coverage.demand import Demand, Grids, demand_points, load_grids
from geoservice.coverage.kinds import OriginKind, Weight
from geoservice.coverage.origins import Origins, load_origins
from geoservice.coverage.parts import demand_from_part, demand_part
from geoservice.coverage.result import Coverage, changed_grids, difference
from geoservice.coverage.scenario import Scenario
from geoservice.locate import LocateIndex, build_index
from geoservice.network import Network, load_network
from geoservice.network.search import first_origins
from geoservice.state_files import MappedPart, Part

HORIZON_MINUTES = 60.0
"""Grids not reached within this are reported with ``minutes_to_reach: null``."""


def evaluate(
    network: Network,
    grids: Grids,
    demand: Demand,
    origins: Origins,
    minutes: Bands,
    *,
    label: str = OriginKind.ALL,
    weight: Weight = Weight.RESIDENTS,
    horizon_minutes: float = HORIZON_MINUTES,
) -> Coverage:
    """Response coverage of ``grids`` from ``origins`` within each of ``minutes`` (see the
    module docstring; a plain tuple is checked into ``Bands``); ``label`` names the
    origins in the answer. Grids not reached within ``horizon_minutes`` (at least the
    largest band) have ``minutes_to_reach`` inf."""
    minutes = Bands(minutes)
    if not horizon_minutes >= minutes[-1]:
        msg = f"horizon {horizon_minutes!r} min must be at least the largest band"
        raise ValueError(msg)
    reach = network.reach(origins.snaps, horizon_minutes * 60.0)
    seconds = reach.time_at(demand.edge, demand.fraction)
    reached_by = _origin_at(reach, network, demand)
    # per grid, the time by which half of its demand points are reached
    order = np.lexsort((seconds, demand.grid))
    grid_sorted = demand.grid[order]
    first = np.searchsorted(grid_sorted, np.arange(len(grids.codes)))
    count = np.bincount(demand.grid, minlength=len(grids.codes))
    pick = order[np.minimum(first + (count + 1) // 2 - 1, len(order) - 1)]
    median = np.where(count > 0, seconds[pick] / 60.0, np.inf)
    nearest = [
        origins.codes[o] if count[g] and o >= 0 else None
        for g, o in enumerate(reached_by[pick].tolist())
    ]
    return Coverage(minutes, label, grids, median, nearest, network.version, weight)


def _origin_at(reach: Any, network: Network, demand: Demand) -> NDArray[np.int64]:
    """The origin that reaches each demand point's nearer end first (-1 if none)."""
    u, v = network.source[demand.edge], network.target[demand.edge]
    t_u, t_v = reach.times_of(u), reach.times_of(v)
    first = np.full(network.n_nodes, -1, dtype=np.int64)
    first[reach.nodes] = first_origins(reach)
    return np.where(t_u <= t_v, first[u], first[v])


class CoverageModel:
    """Grids, demand points and origins of one dataset version over one network."""

    def __init__(
        self,
        engine: Engine,
        network: Network,
        index: LocateIndex,
        *,
        built: MappedPart | None = None,
    ) -> None:
        """``built``: the grids and demand points as ``to_part`` wrote them (mapped from the
        state directory), instead of reading the grids and locating the points here."""
        if network.version != index.version:
            msg = (
                f"the network (dataset version {network.version}) and the locate index "
                f"(version {index.version}) must come from the same dataset version"
            )
            raise ValueError(msg)
        self.engine = engine
        self.network = network
        self.index = index
        self.version = index.version
        self.weight = Weight.RESIDENTS
        if built is None:
            self.grids = load_grids(engine, index.version)
            self.demand = demand_points(network, self.grids, index)
        else:
            self.grids, self.demand = demand_from_part(built, index)
        self._built = built  # keeps the mapping (and its shared lock) as long as the model
        self._origins: dict[OriginKind, Origins] = {}

    @classmethod
    def load(
        cls, engine: Engine, profile: str = "car", version: int | None = None
    ) -> CoverageModel:
        """Everything from one dataset version, by default the current one (for the CLI
        and notebooks)."""
        index = build_index(engine, version)
        return cls(engine, load_network(engine, profile, index.version), index)

    def to_part(self) -> Part:
        """The grids and demand points as a part of the state directory."""
        return demand_part(self.grids, self.demand)

    def weighted(
        self, weight: Weight, start: datetime | None = None, end: datetime | None = None
    ) -> CoverageModel:
        """This model with each grid weighing its ``weight``: residents (as loaded), or
        the register's events (between ``start`` and ``end``) placed in this version's
        grids — shares in the answer are then shares of events. Origins are shared."""
        if weight == Weight.RESIDENTS:
            return self
        from geoservice.events import events_per_grid

        counts = events_per_grid(self.engine, self.index, start, end)
        per_grid = np.bincount(self.demand.grid, minlength=len(counts))
        clone = copy.copy(self)
        clone.weight = weight
        clone.grids = replace(self.grids, population=counts)
        clone.demand = replace(
            self.demand,
            weight=counts[self.demand.grid] / np.maximum(per_grid, 1)[self.demand.grid],
        )
        return clone

    def origins(self, kind: OriginKind = OriginKind.ALL) -> Origins:
        """The current origins of one kind (loaded once)."""
        if kind not in self._origins:
            self._origins[kind] = load_origins(self.engine, self.network, kind)
        return self._origins[kind]

    def response(
        self,
        minutes: Bands = DEFAULT_BANDS,
        origins: OriginKind = OriginKind.ALL,
        *,
        horizon_minutes: float = HORIZON_MINUTES,
    ) -> Coverage:
        """Coverage from the current origins of one kind."""
        return self.evaluate(
            self.origins(origins), minutes, label=origins, horizon_minutes=horizon_minutes
        )

    def evaluate(
        self,
        origins: Origins,
        minutes: Bands = DEFAULT_BANDS,
        *,
        label: str = OriginKind.ALL,
        network: Network | None = None,
        horizon_minutes: float = HORIZON_MINUTES,
    ) -> Coverage:
        """Coverage from any origins (placed on this model's network, or ``network``)."""
        return evaluate(
            network or self.network,
            self.grids,
            self.demand,
            origins,
            minutes,
            label=label,
            weight=self.weight,
            horizon_minutes=horizon_minutes,
        )

    def scenario(
        self,
        scenario: Scenario,
        minutes: Bands = DEFAULT_BANDS,
        origins: OriginKind = OriginKind.ALL,
    ) -> Coverage:
        """Coverage with ``scenario`` applied, plus its difference from the current data."""
        before = self.response(minutes, origins)
        network, changed = scenario.apply(self.network, self.origins(origins))
        after = self.evaluate(changed, minutes, label=origins, network=network)
        after.extra = {
            "baseline": before.bands(),
            "difference": difference(after, before),
            "changed_grids": changed_grids(after, before),
        }
        return after
