"""What coverage weighs: a version's grids and the demand points on the roads inside them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from numpy.typing import NDArray
from sqlalchemy.engine import Engine

from geoservice.crs import METRIC_EPSG, from_metric
from geoservice.errors import InvalidInput
from geoservice.locate import LocateIndex
from geoservice.network import Network
from geoservice.store import VersionReader

DEMAND_STEP_M = 50.0


@dataclass(frozen=True)
class Grids:
    """A version's base grids with what coverage weighs them by."""

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


def load_grids(engine: Engine, version: int) -> Grids:
    """A dataset version's grids in code order (the order of ``LocateIndex.codes``)."""
    with VersionReader.open(engine, version) as reader:
        rows = reader.all(
            "SELECT code, name, parent_code, population, "
            f"ST_Area(ST_Transform(geom, {METRIC_EPSG})) / 1e6 AS area_km2, "
            "ST_AsBinary(geom) AS wkb FROM {grid} g"
        )
        town_of: dict[str, str] = {
            row.code: row.town_code
            for row in reader.all(
                "SELECT lg.code, u.parent_code AS town_code FROM {large_grid} lg "
                "JOIN {unit} u ON u.code = lg.parent_code"
            )
        }
    rows = sorted(rows, key=lambda r: r.code)  # Python's order, as LocateIndex.codes
    return Grids(
        codes=np.array([r.code for r in rows]),
        names=np.array([r.name for r in rows], dtype=np.object_),
        towns=np.array([town_of.get(r.parent_code) for r in rows], dtype=np.object_),
        population=np.array([float(r.population or 0) for r in rows]),
        area_km2=np.array([float(r.area_km2) for r in rows]),
        polygons=shapely.from_wkb([bytes(r.wkb) for r in rows]),
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
