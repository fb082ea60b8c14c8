"""Synthetic police: stations, unit posts, 570 officers, 17 patrol segments (340 people)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra
from shapely.geometry import LineString, Point

from geoservice.synthetic.boundaries import Boundaries, largest_remainder, to_metric
from geoservice.synthetic.roads import RoadNetwork

OFFICERS = 570
PATROL_SEGMENTS = 17
PATROL_TEAM = 340
RANKS = ("一级警长", "二级警长", "三级警长", "四级警长", "一级警员", "二级警员")
SURNAMES = "陈李张黄林刘叶吴王杨钟何罗郑梁谢赖曾邓徐"
GIVEN = "伟强军明华志勇杰俊峰斌涛辉鹏浩宇晨文龙海东平建新国"


@dataclass(frozen=True)
class Station:
    code: str
    name: str
    kind: str  # station | post
    area_code: str  # the town (station) or unit (post) it answers for
    geom: Point


@dataclass(frozen=True)
class Officer:
    code: str
    name: str
    rank: str
    phone: str
    station_code: str
    unit_codes: tuple[str, ...]


@dataclass(frozen=True)
class PatrolSegment:
    code: str
    name: str
    level: int
    team: str
    team_size: int
    geom: LineString


def stations(boundaries: Boundaries) -> list[Station]:
    """One police station per town, one post (警务室) per unit, each in its most populous grid."""
    grids_by_parent: dict[str, list] = {}
    for grid in boundaries.grids:
        grids_by_parent.setdefault(str(grid.parent_code), []).append(grid)
    large_by_unit: dict[str, list] = {}
    for large in boundaries.large_grids:
        large_by_unit.setdefault(str(large.parent_code), []).append(large)
    unit_town = {unit.code: unit.parent_code for unit in boundaries.units}

    def busiest_grid(unit_code: str):
        grids = [g for lg in large_by_unit[unit_code] for g in grids_by_parent[lg.code]]
        return max(grids, key=lambda g: (g.population, g.code))

    result = []
    for town in boundaries.towns:
        units = [u for u in boundaries.units if unit_town[u.code] == town.code]
        busiest = max(units, key=lambda u: (u.population, u.code))
        place = shapely.point_on_surface(busiest_grid(busiest.code).geom)
        name = town.name.removesuffix("街道").removesuffix("镇")
        result.append(Station(f"PS{town.code}", f"{name}派出所", "station", town.code, place))
    for unit in boundaries.units:
        grid = busiest_grid(unit.code)
        # Not on the station's spot: the grid's centroid when inside it, else a surface point.
        place = shapely.centroid(grid.geom)
        if not grid.geom.contains(place) or any(s.geom.equals(place) for s in result):
            place = shapely.point_on_surface(grid.geom)
        name = unit.name.removesuffix("居委会").removesuffix("委会")
        result.append(Station(f"PP{unit.code}", f"{name}警务室", "post", unit.code, place))
    return result


def officers(boundaries: Boundaries, rng: np.random.Generator) -> list[Officer]:
    """570 officers, at least one per unit, the rest by population; ~5% also cover a neighbour."""
    units = boundaries.units
    per_unit = largest_remainder(np.array([u.population for u in units], float), OFFICERS)
    result = []
    number = 0
    for unit, count in zip(units, per_unit, strict=True):
        for _ in range(count):
            number += 1
            name = rng.choice(list(SURNAMES)) + "".join(rng.choice(list(GIVEN), rng.integers(1, 3)))
            phone = f"139{rng.integers(0, 10**8):08d}"
            result.append(
                Officer(
                    f"JY{number:04d}",
                    name,
                    str(rng.choice(RANKS)),
                    phone,
                    f"PS{unit.parent_code}",
                    (unit.code,),
                )
            )
    # Some officers also cover the next unit of the same town.
    by_town: dict[str, list[str]] = {}
    for unit in units:
        by_town.setdefault(str(unit.parent_code), []).append(unit.code)
    for i in rng.choice(len(result), size=OFFICERS // 20, replace=False):
        officer = result[i]
        siblings = by_town[f"{officer.station_code[2:]}"]
        extra = siblings[(siblings.index(officer.unit_codes[0]) + 1) % len(siblings)]
        if extra not in officer.unit_codes:
            result[i] = Officer(
                officer.code,
                officer.name,
                officer.rank,
                officer.phone,
                officer.station_code,
                (*officer.unit_codes, extra),
            )
    return result


def patrol_segments(network: RoadNetwork, rng: np.random.Generator) -> list[PatrolSegment]:
    """17 first-class segments of 1.5–3 km along central roads; 340 officers in 17 teams."""
    x, y = to_metric(network.lon, network.lat)
    n = len(x)
    length = np.hypot(x[network.u] - x[network.v], y[network.u] - y[network.v])
    drivable = network.highway != "footway"
    graph = coo_matrix(
        (length[drivable], (network.u[drivable], network.v[drivable])), shape=(n, n)
    ).tocsr()
    graph = graph.maximum(graph.T)
    cx, cy = to_metric(114.41, 23.11)
    central = np.flatnonzero(np.hypot(x - cx, y - cy) < 3_500)
    teams = largest_remainder(np.ones(PATROL_SEGMENTS), PATROL_TEAM)
    result: list[PatrolSegment] = []
    while len(result) < PATROL_SEGMENTS:
        start = int(rng.choice(central))
        dist, pred = dijkstra(graph, indices=start, return_predecessors=True, limit=3_000)
        candidates = np.flatnonzero((dist > 1_500) & (dist < 3_000))
        candidates = np.intersect1d(candidates, central)
        if len(candidates) == 0:
            continue
        node = int(rng.choice(candidates))
        path = [node]
        while pred[node] >= 0:
            node = int(pred[node])
            path.append(node)
        line = LineString(np.column_stack([network.lon[path[::-1]], network.lat[path[::-1]]]))
        k = len(result) + 1
        result.append(
            PatrolSegment(
                f"XD{k:02d}", f"一级巡段{k:02d}", 1, f"特巡队第{k}组", int(teams[k - 1]), line
            )
        )
    return result
