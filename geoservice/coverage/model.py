"""Coverage for planners: officers per unit ("一村(居)一警") and 1/3/5-minute response.

**When a grid counts as covered** (the one definition, used by the API, the CLI, the
notebooks and the what-if scenarios): a grid's residents are spread evenly over its
*demand points* — points every ``DEMAND_STEP_M`` along the roads inside it (a grid with no
road inside gets one point: the road point nearest to it). The grid's
``minutes_to_reach`` is the time by which at least half of its demand points are reached
from the nearest origin (the population-weighted median); the grid is covered within
``T`` minutes when ``minutes_to_reach <= T``.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import shapely
import sqlalchemy as sa
from numpy.typing import NDArray
from sqlalchemy.engine import Engine

from geoservice.crs import from_metric, parse_crs
from geoservice.datasets import resolve_version
from geoservice.errors import InvalidInput, shown
from geoservice.isochrones import parse_minutes, plain_number
from geoservice.locate import LocateIndex, build_index
from geoservice.network import Network, Snaps, load_network
from geoservice.points import to_wgs84_points

DEMAND_STEP_M = 50.0
HORIZON_MINUTES = 60.0
"""Grids not reached within this are reported with ``minutes_to_reach: null``."""
ORIGIN_KINDS = ("stations", "posts", "patrols", "all")
DEFAULT_ORIGINS = "all"
WEIGHTS = ("residents", "events")
"""What a grid weighs: its residents, or the grid events that happened in it."""


# --- officers ----------------------------------------------------------------------------


def officer_coverage(engine: Engine, version: int | None = None) -> dict[str, Any]:
    """Every unit has at least one assigned officer? Per town, the heaviest units, and
    every assignment that does not fit (answer of ``GET /v1/coverage/officers``); of one
    dataset version (default: the current one)."""
    with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn:
        version = resolve_version(conn, version)
        units = _frame(conn, version, "boundary", "unit", "code, name, parent_code, population")
        towns = _frame(conn, version, "boundary", "town", "code, name")
        officers = _frame(conn, version, "officer", "officers", "code, name")
        links = _frame(conn, version, "officer_unit", "officers", "officer_code, unit_code")
    known = links["unit_code"].isin(units["code"])
    unknown = links[~known].sort_values(["unit_code", "officer_code"])
    links = links[known]
    per_unit = links.groupby("unit_code")["officer_code"].nunique()
    units = units.assign(officers=units["code"].map(per_unit).fillna(0).astype(int))
    uncovered = units[units["officers"] == 0].sort_values("code")
    unassigned = officers[~officers["code"].isin(links["officer_code"])].sort_values("code")
    town_of = dict(zip(units["code"], units["parent_code"], strict=True))
    links = links.assign(town=links["unit_code"].map(town_of))
    by_town = []
    for town in towns.sort_values("code").itertuples():
        mine = units[units["parent_code"] == town.code]
        staff = int(links.loc[links["town"] == town.code, "officer_code"].nunique())
        residents = int(mine["population"].fillna(0).sum())
        by_town.append(
            {
                "code": town.code,
                "name": town.name,
                "units": len(mine),
                "units_covered": int((mine["officers"] > 0).sum()),
                "officers": staff,
                "residents": residents,
                "residents_per_officer": round(residents / staff, 1) if staff else None,
            }
        )
    load = units[units["officers"] > 0].assign(
        residents_per_officer=lambda f: f["population"].fillna(0) / f["officers"]
    )
    heaviest = load.sort_values(["residents_per_officer", "code"], ascending=[False, True])
    return {
        "ok": uncovered.empty and unknown.empty,
        "units_total": len(units),
        "units_covered": int((units["officers"] > 0).sum()),
        "uncovered_units": _records(uncovered, ["code", "name"]),
        "officers_total": len(officers),
        "officers_assigned": int(officers["code"].isin(links["officer_code"]).sum()),
        "unassigned_officers": _records(unassigned, ["code", "name"]),
        "unknown_unit_assignments": _records(unknown, ["officer_code", "unit_code"]),
        "by_town": by_town,
        "heaviest_units": [
            {
                "code": u.code,
                "name": u.name,
                "town_code": u.parent_code,
                "officers": int(u.officers),
                "residents": int(u.population or 0),
                "residents_per_officer": round(float(u.residents_per_officer), 1),
            }
            for u in heaviest.head(10).itertuples()
        ],
        "dataset_version": version,
    }


def _frame(conn: sa.Connection, version: int, table: str, layer: str, columns: str) -> pd.DataFrame:
    """``columns`` of one layer's rows in a dataset version."""
    result = conn.execute(
        sa.text(
            f"SELECT {columns} FROM geoservice.{table} "
            f"WHERE snapshot_id = geoservice.snapshot_of(:v, '{layer}')"
        ),
        {"v": version},
    )
    return pd.DataFrame(result.all(), columns=list(result.keys()))


def _records(frame: pd.DataFrame, columns: list[str]) -> list[dict[str, Any]]:
    return [dict(zip(columns, row, strict=True)) for row in frame[columns].itertuples(index=False)]


# --- response coverage -------------------------------------------------------------------


@dataclass(frozen=True)
class Grids:
    """The current base grids with what coverage weighs them by."""

    codes: NDArray[np.str_]
    names: NDArray[np.object_]
    towns: NDArray[np.object_]
    population: NDArray[np.float64]
    area_km2: NDArray[np.float64]
    polygons: NDArray[np.object_]  # WGS84


@dataclass(frozen=True)
class Demand:
    """Demand points on the network, each in one grid, carrying population."""

    grid: NDArray[np.int64]  # index into Grids
    edge: NDArray[np.int64]
    fraction: NDArray[np.float64]
    weight: NDArray[np.float64]  # residents


@dataclass(frozen=True)
class Origins:
    """Response origins placed on the network, with what they are."""

    snaps: Snaps
    codes: list[str]
    kinds: list[str]  # station, post, patrol, added


@dataclass
class Coverage:
    """The evaluation of one set of origins over one network."""

    minutes: tuple[float, ...]
    origins: str
    grids: Grids
    minutes_to_reach: NDArray[np.float64]  # per grid; inf beyond the horizon
    nearest_origin: list[str | None]
    dataset_version: int
    weight: str = "residents"
    extra: dict[str, Any] = field(default_factory=dict)

    def bands(self) -> list[dict[str, Any]]:
        total_pop = float(self.grids.population.sum()) or 1.0
        total_area = float(self.grids.area_km2.sum()) or 1.0
        out = []
        for m in self.minutes:
            covered = self.minutes_to_reach <= m
            out.append(
                {
                    "minutes": plain_number(m),
                    "grids_total": len(covered),
                    "grids_covered": int(covered.sum()),
                    "grid_share": round(float(covered.mean()), 6),
                    "area_share": round(float(self.grids.area_km2[covered].sum()) / total_area, 6),
                    "population_share": round(
                        float(self.grids.population[covered].sum()) / total_pop, 6
                    ),
                }
            )
        return out

    def table(self) -> pd.DataFrame:
        """One row per grid, for planners (CSV, GeoJSON, maps)."""
        reach = np.where(np.isfinite(self.minutes_to_reach), self.minutes_to_reach, np.nan)
        frame = pd.DataFrame(
            {
                "code": self.grids.codes,
                "name": self.grids.names,
                "town_code": self.grids.towns,
                "population" if self.weight == "residents" else "events": self.grids.population,
                "area_km2": self.grids.area_km2,
                "minutes_to_reach": round_up(reach, 3),
                "nearest_origin": self.nearest_origin,
            }
        )
        for m in self.minutes:
            frame[f"covered_{plain_number(m)}min"] = self.minutes_to_reach <= m
        return frame

    def grid_minutes(self) -> dict[str, Any]:
        """Every grid's minutes to reach (rounded up; null beyond the horizon), as two
        parallel lists in code order (``GET /v1/coverage/grids``)."""
        return {
            "minutes": [plain_number(m) for m in self.minutes],
            "origins": self.origins,
            "codes": [str(code) for code in self.grids.codes],
            "minutes_to_reach": [_shown(m) for m in self.minutes_to_reach],
            "weight": self.weight,
            "dataset_version": self.dataset_version,
        }

    def geodataframe(self) -> Any:
        import geopandas as gpd

        return gpd.GeoDataFrame(self.table(), geometry=list(self.grids.polygons), crs=4326)

    def plot(self, basemap: Any = None, **options: Any) -> Any:
        """A map of this coverage in its minute classes (``geoservice.plots.coverage_map``),
        or, for a scenario's answer, of the grids it gains and loses
        (``plots.scenario_map``); a matplotlib Figure."""
        from geoservice import plots

        if "changed_grids" in self.extra:
            return plots.scenario_map(self, basemap, **options)
        return plots.coverage_map(self, basemap, **options)

    def to_json(self) -> dict[str, Any]:
        """The answer of ``GET /v1/coverage/response``."""
        largest = self.minutes[-1]
        order = np.argsort(
            -np.where(np.isfinite(self.minutes_to_reach), self.minutes_to_reach, 1e9)
        )
        uncovered = [
            {
                "code": str(self.grids.codes[i]),
                "name": self.grids.names[i],
                "minutes_to_reach": _shown(self.minutes_to_reach[i]),
            }
            for i in order.tolist()
            if not self.minutes_to_reach[i] <= largest
        ]
        return {
            "minutes": [plain_number(m) for m in self.minutes],
            "origins": self.origins,
            "bands": self.bands(),
            "uncovered_grids": uncovered,
            "weight": self.weight,
            **self.extra,
            "dataset_version": self.dataset_version,
        }


def round_up(minutes: Any, decimals: int) -> Any:
    """Minutes rounded *up* to ``decimals``: a displayed figure is never below the true one,
    so a grid not covered within T never shows T or less (5.004 is shown as 5.01)."""
    scale = 10.0**decimals
    shown = np.ceil(np.asarray(minutes, dtype=float) * scale) / scale
    # the product can round down in floating point; one more step then
    return np.where(shown < minutes, shown + 1 / scale, shown)


def load_grids(engine: Engine, version: int) -> Grids:
    """A dataset version's grids in code order (the order of ``LocateIndex.codes``)."""
    with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn:
        rows = conn.execute(
            sa.text(
                "SELECT code, name, parent_code, population, "
                "ST_Area(ST_Transform(geom, 4547)) / 1e6, ST_AsBinary(geom) "
                "FROM geoservice.boundary WHERE snapshot_id = geoservice.snapshot_of(:v, 'grid')"
            ),
            {"v": version},
        ).all()
        town_of: dict[str, str] = dict(
            conn.execute(
                sa.text(
                    "SELECT lg.code, u.parent_code FROM geoservice.boundary lg "
                    "JOIN geoservice.boundary u ON u.snapshot_id = "
                    "geoservice.snapshot_of(:v, 'unit') AND u.code = lg.parent_code "
                    "WHERE lg.snapshot_id = geoservice.snapshot_of(:v, 'large_grid')"
                ),
                {"v": version},
            ).all()
        )
    rows = sorted(rows, key=lambda r: r[0])  # Python's order, as LocateIndex.codes
    return Grids(
        codes=np.array([r[0] for r in rows]),
        names=np.array([r[1] for r in rows], dtype=np.object_),
        towns=np.array([town_of.get(r[2]) for r in rows], dtype=np.object_),
        population=np.array([float(r[3] or 0) for r in rows]),
        area_km2=np.array([float(r[4]) for r in rows]),
        polygons=shapely.from_wkb([bytes(r[5]) for r in rows]),
    )


def demand_points(network: Network, grids: Grids, index: LocateIndex) -> Demand:
    """Points every ``DEMAND_STEP_M`` along every usable edge, assigned to the grid they
    lie in; grids without one get the road point nearest to them."""
    if not np.array_equal(index.codes, grids.codes):
        msg = "the locate index and the grids come from different dataset versions"
        raise InvalidInput(msg)
    length = network.length_m
    count = np.maximum(np.floor(length / DEMAND_STEP_M).astype(np.int64), 1)
    edge = np.repeat(np.arange(network.n_edges), count)
    k = np.arange(len(edge)) - np.repeat(np.cumsum(count) - count, count)
    fraction = (k + 0.5) / count[edge]  # midpoints of equal steps
    xy = network.points_along_edges(edge, fraction)
    lon, lat = from_metric(xy[:, 0], xy[:, 1])
    located = index.locate_many(np.asarray(lon), np.asarray(lat), nearest=False)
    inside = located.status != 2
    grid = located.grid[inside]
    edge, fraction = edge[inside], fraction[inside]
    lonely = np.setdiff1d(np.arange(len(grids.codes)), grid)
    if len(lonely):
        reps = shapely.point_on_surface(grids.polygons[lonely])
        rx, ry = shapely.get_coordinates(reps).T
        snaps = network.snap_points(rx, ry, max_distance_m=50_000.0, strict=False)
        grid = np.concatenate([grid, lonely[snaps.origin]])
        edge = np.concatenate([edge, snaps.edge])
        fraction = np.concatenate([fraction, snaps.fraction])
    per_grid = np.bincount(grid, minlength=len(grids.codes))
    weight = grids.population[grid] / per_grid[grid]
    order = np.argsort(grid, kind="stable")
    return Demand(grid[order], edge[order], fraction[order], weight[order])


def load_origins(engine: Engine, network: Network, kind: str) -> Origins:
    """Stations, unit posts, patrol segments (each whole segment one origin) or all, of the
    network's dataset version."""
    if kind not in ORIGIN_KINDS:
        msg = f"origins {shown(kind)} is unknown; expected one of {', '.join(ORIGIN_KINDS)}"
        raise InvalidInput(msg)
    parts: list[Origins] = []
    with engine.connect() as conn:
        for station_kind, label in (("station", "stations"), ("post", "posts")):
            if kind not in (label, "all"):
                continue
            rows = conn.execute(
                sa.text(
                    "SELECT code, ST_X(geom), ST_Y(geom) FROM geoservice.station "
                    "WHERE snapshot_id = geoservice.snapshot_of(:v, 'stations') AND kind = :k "
                    "ORDER BY code"
                ),
                {"k": station_kind, "v": network.version},
            ).all()
            snaps = network.snap_points([r[1] for r in rows], [r[2] for r in rows], strict=False)
            parts.append(Origins(snaps, [r[0] for r in rows], [station_kind] * len(rows)))
        if kind in ("patrols", "all"):
            rows = conn.execute(
                sa.text(
                    "SELECT code, ST_AsBinary(geom) FROM geoservice.patrol_segment "
                    "WHERE snapshot_id = geoservice.snapshot_of(:v, 'patrols') ORDER BY code"
                ),
                {"v": network.version},
            ).all()
            if rows:
                lines = shapely.from_wkb([bytes(r[1]) for r in rows])
                snaps = network.snap_lines(list(lines), names=[r[0] for r in rows])
                parts.append(Origins(snaps, [r[0] for r in rows], ["patrol"] * len(rows)))
    return combine(parts)


def combine(parts: Sequence[Origins]) -> Origins:
    """Several origin sets as one (origin numbers shifted)."""
    snaps, codes, kinds, offset = [], [], [], 0
    for part in parts:
        s = part.snaps
        snaps.append(Snaps(s.origin + offset, s.edge, s.fraction, s.lon, s.lat, s.distance_m))
        codes += part.codes
        kinds += part.kinds
        offset += len(part.codes)
    if not snaps:
        msg = "no response origin in the current dataset (stations, posts or patrol segments)"
        raise InvalidInput(msg)
    fields = [np.concatenate([getattr(s, f) for s in snaps]) for f in Snaps.__dataclass_fields__]
    return Origins(Snaps(*fields), codes, kinds)


def evaluate(
    network: Network,
    grids: Grids,
    demand: Demand,
    origins: Origins,
    minutes: str | Sequence[float] | None,
    *,
    label: str = DEFAULT_ORIGINS,
    weight: str = "residents",
) -> Coverage:
    """Response coverage of ``grids`` from ``origins`` (see the module docstring)."""
    bands = parse_minutes(minutes)
    reach = network.reach(origins.snaps, HORIZON_MINUTES * 60.0)
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
    return Coverage(bands, label, grids, median, nearest, network.version, weight)


def _origin_at(reach: Any, network: Network, demand: Demand) -> NDArray[np.int64]:
    """The origin that reaches each demand point's nearer end first (-1 if none)."""
    u, v = network.source[demand.edge], network.target[demand.edge]
    t_u, t_v = reach.node_time[u], reach.node_time[v]
    return np.where(t_u <= t_v, reach.node_origin[u], reach.node_origin[v])


# --- what-if -----------------------------------------------------------------------------

MAX_SCENARIO_ITEMS = 10_000


@dataclass(frozen=True)
class Scenario:
    """Hypothetical changes, evaluated without touching the published dataset."""

    add_points: tuple[tuple[float, float], ...] = ()  # new patrol points, WGS84
    remove_origins: tuple[str, ...] = ()  # station, post or patrol segment codes
    close_edges: tuple[int, ...] = ()  # road edge ids (road_edges.id)
    close_roads: tuple[str, ...] = ()  # road names, e.g. a bridge: "东江2号桥"
    speeds_kmh: dict[str, float] = field(default_factory=dict)  # highway class -> km/h

    @classmethod
    def from_json(cls, body: Any) -> Scenario:
        """From a request body, every value checked (a bad one is named)."""
        if not isinstance(body, dict):
            msg = "scenario body must be a JSON object"
            raise InvalidInput(msg)
        known = {"minutes", "origins", "crs", "weight", *cls.__dataclass_fields__}
        unknown = sorted(set(body) - known)
        if unknown:
            msg = f"unknown scenario field(s) {unknown}; expected some of {sorted(known)}"
            raise InvalidInput(msg)

        points: tuple[tuple[float, float], ...] = ()
        if body.get("add_points"):
            lon, lat = to_wgs84_points(_items(body, "add_points"), parse_crs(body.get("crs")))
            points = tuple(zip(lon.tolist(), lat.tolist(), strict=True))
        speeds = body.get("speeds_kmh") or {}
        if not isinstance(speeds, dict):
            msg = 'speeds_kmh must be an object {"primary": 30, ...}'
            raise InvalidInput(msg)
        for highway, speed in speeds.items():
            if (
                not isinstance(speed, int | float)
                or isinstance(speed, bool)
                or not 0 < speed <= 200
            ):
                msg = (
                    f"speeds_kmh[{shown(highway)}] = {shown(speed)}; "
                    "expected a number in (0, 200] km/h"
                )
                raise InvalidInput(msg)
        edges = _items(body, "close_edges")
        if not all(isinstance(e, int) and not isinstance(e, bool) for e in edges):
            msg = f"close_edges must be road edge ids (integers), got {shown(edges[:5])}"
            raise InvalidInput(msg)
        texts = {}
        for name in ("remove_origins", "close_roads"):
            values = _items(body, name)
            if not all(isinstance(v, str) for v in values):
                msg = f"{name} must be a list of strings, got {shown(values[:5])}"
                raise InvalidInput(msg)
            texts[name] = tuple(values)
        return cls(
            add_points=points,
            remove_origins=texts["remove_origins"],
            close_edges=tuple(edges),
            close_roads=texts["close_roads"],
            speeds_kmh={str(k): float(v) for k, v in speeds.items()},
        )

    def apply(self, network: Network, origins: Origins) -> tuple[Network, Origins]:
        """The changed network and origins; unknown edges, roads, classes or origin codes
        are refused by name."""
        missing = sorted(set(self.remove_origins) - set(origins.codes))
        if missing:
            msg = (
                f"remove_origins: no origin with code {missing[:5]} "
                f"among the {len(origins.codes)} in use"
            )
            raise InvalidInput(msg)
        position = {int(e): i for i, e in enumerate(network.edge_ids)}
        unknown_edges = [e for e in self.close_edges if e not in position]
        if unknown_edges:
            msg = (
                f"close_edges: no road edge with id {unknown_edges[:5]} "
                f"in the {network.profile} network"
            )
            raise InvalidInput(msg)
        closed = [position[e] for e in self.close_edges]
        for name in self.close_roads:
            hit = np.flatnonzero(network.names == name)
            if not len(hit):
                msg = f"close_roads: no road named {shown(name)} in the {network.profile} network"
                raise InvalidInput(msg)
            closed += hit.tolist()
        classes = set(network.highway.tolist())
        unknown_classes = sorted(set(self.speeds_kmh) - classes)
        if unknown_classes:
            msg = f"speeds_kmh: no road of class {unknown_classes} (classes: {sorted(classes)})"
            raise InvalidInput(msg)
        changed = network
        if closed or self.speeds_kmh:
            changed = network.with_changes(np.array(closed, dtype=np.int64), self.speeds_kmh)
        removed = set(self.remove_origins)
        keep = [i for i, code in enumerate(origins.codes) if code not in removed]
        parts = [_subset(origins, keep)]
        if self.add_points:
            lon, lat = zip(*self.add_points, strict=True)
            snaps = changed.snap_points(lon, lat)
            names = [f"added-{i + 1}" for i in range(len(lon))]
            parts.append(Origins(snaps, names, ["added"] * len(names)))
        return changed, combine(parts)


def _items(body: dict[str, Any], name: str) -> list[Any]:
    value = body.get(name) or []
    if not isinstance(value, list):
        msg = f"{name} must be a list"
        raise InvalidInput(msg)
    if len(value) > MAX_SCENARIO_ITEMS:
        msg = f"{name} has {len(value):,} items; at most {MAX_SCENARIO_ITEMS:,}"
        raise InvalidInput(msg)
    return value


def _subset(origins: Origins, keep: list[int]) -> Origins:
    """Only the origins ``keep`` (renumbered)."""
    s = origins.snaps
    new_number = np.full(len(origins.codes), -1)
    new_number[keep] = np.arange(len(keep))
    rows = np.isin(s.origin, keep)
    snaps = Snaps(
        new_number[s.origin[rows]],
        s.edge[rows],
        s.fraction[rows],
        s.lon[rows],
        s.lat[rows],
        s.distance_m[rows],
    )
    return Origins(snaps, [origins.codes[i] for i in keep], [origins.kinds[i] for i in keep])


def difference(after: Coverage, before: Coverage) -> list[dict[str, Any]]:
    """Per band, the scenario's figures minus the current dataset's."""
    out = []
    for a, b in zip(after.bands(), before.bands(), strict=True):
        out.append(
            {
                "minutes": a["minutes"],
                **{
                    key: round(a[key] - b[key], 6)
                    for key in ("grids_covered", "grid_share", "area_share", "population_share")
                },
            }
        )
    return out


def changed_grids(after: Coverage, before: Coverage) -> list[dict[str, Any]]:
    """The grids whose coverage changes in some band: minutes before and after (rounded up,
    ``null`` beyond the horizon), so a map can show what is gained and what is lost."""
    limits = np.array(after.minutes)
    was = before.minutes_to_reach[:, None] <= limits
    now = after.minutes_to_reach[:, None] <= limits
    return [
        {
            "code": str(after.grids.codes[i]),
            "before": _shown(before.minutes_to_reach[i]),
            "after": _shown(after.minutes_to_reach[i]),
        }
        for i in np.flatnonzero((was != now).any(axis=1)).tolist()
    ]


def _shown(minutes: float) -> float | None:
    return float(round_up(minutes, 2)) if np.isfinite(minutes) else None


# --- one place for the API, the CLI and notebooks ------------------------------------------


class CoverageModel:
    """Grids, demand points and origins of one dataset version over one network."""

    def __init__(self, engine: Engine, network: Network, index: LocateIndex) -> None:
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
        self.weight = "residents"
        self.grids = load_grids(engine, index.version)
        self.demand = demand_points(network, self.grids, index)
        self._origins: dict[str, Origins] = {}

    @classmethod
    def load(
        cls, engine: Engine, profile: str = "car", version: int | None = None
    ) -> CoverageModel:
        """Everything from one dataset version, by default the current one (for the CLI
        and notebooks)."""
        index = build_index(engine, version)
        return cls(engine, load_network(engine, profile, index.version), index)

    def weighted(
        self, weight: str, start: datetime | None = None, end: datetime | None = None
    ) -> CoverageModel:
        """This model with each grid weighing its ``weight``: residents (as loaded), or
        the register's events (between ``start`` and ``end``) placed in this version's
        grids — shares in the answer are then shares of events. Origins are shared."""
        if weight not in WEIGHTS:
            msg = f"weight {shown(weight)} is unknown; expected one of {', '.join(WEIGHTS)}"
            raise InvalidInput(msg)
        if weight == "residents":
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

    def origins(self, kind: str = DEFAULT_ORIGINS) -> Origins:
        if kind not in self._origins:
            self._origins[kind] = load_origins(self.engine, self.network, kind)
        return self._origins[kind]

    def response(
        self, minutes: str | Sequence[float] | None = None, origins: str = DEFAULT_ORIGINS
    ) -> Coverage:
        """Coverage from the current origins of one kind."""
        return self.evaluate(self.origins(origins), minutes, label=origins)

    def evaluate(
        self,
        origins: Origins,
        minutes: str | Sequence[float] | None = None,
        *,
        label: str = DEFAULT_ORIGINS,
        network: Network | None = None,
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
        )

    def scenario(
        self,
        scenario: Scenario,
        minutes: str | Sequence[float] | None = None,
        origins: str = DEFAULT_ORIGINS,
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
