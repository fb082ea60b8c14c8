"""Synthetic nested coverages of the real district: towns, units, large grids, grids.

Geometry (in local equirectangular metres, converted to WGS84 at the end):

1. 2,556 grid seeds are drawn inside the real district boundary with a density
   that follows the population (dense around the city centre), then relaxed by a
   few Lloyd steps. Grid polygons are their Voronoi cells cut by the district,
   made by polygonizing one noded set of lines, so neighbours share identical edges.
2. Seeds go to the nearest town centre (weighted so the central streets stay
   small); within a town, recursive coordinate bisection splits them into that
   town's units, and each unit into its large grids. Counts are exact by construction.
3. Every upper polygon is the coverage union of the grids below it, so each layer
   is an exact, valid coverage of its parent.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from numpy.typing import NDArray
from shapely.geometry import MultiPolygon, Polygon

from geoservice.synthetic.divisions import CENTRAL_STREETS, TOWN_CENTRES, Town, Unit

TOWN_STRETCH = {
    **dict.fromkeys(CENTRAL_STREETS, 1.9),
    "441302401": 2.2,  # the two industrial parks and the forest farm are small
    "441302402": 2.2,
    "441302450": 1.6,
}

ORIGIN = (114.45, 23.15)
M_PER_DEG_LAT = 110_574.0
M_PER_DEG_LON = 111_320.0 * float(np.cos(np.radians(ORIGIN[1])))


def to_metric(lon, lat) -> tuple[NDArray, NDArray]:
    """Local equirectangular metres. Affine, so straight lines stay straight both ways and
    polygons cut from the real boundary keep its edges exactly."""
    lon, lat = np.asarray(lon, float), np.asarray(lat, float)
    return (lon - ORIGIN[0]) * M_PER_DEG_LON, (lat - ORIGIN[1]) * M_PER_DEG_LAT


def from_metric(x, y) -> tuple[NDArray, NDArray]:
    x, y = np.asarray(x, float), np.asarray(y, float)
    return x / M_PER_DEG_LON + ORIGIN[0], y / M_PER_DEG_LAT + ORIGIN[1]


GRIDS = 2556
LARGE_GRIDS = 527
POPULATION = 1_200_000
CITY_CENTRE = (114.41, 23.11)


@dataclass(frozen=True)
class Feature:
    code: str
    name: str
    parent_code: str | None
    geom: MultiPolygon  # WGS84
    population: int
    kind: str | None = None


@dataclass(frozen=True)
class Boundaries:
    district: list[Feature]
    towns: list[Feature]
    units: list[Feature]
    large_grids: list[Feature]
    grids: list[Feature]


def density(x: NDArray, y: NDArray) -> NDArray:
    """Residents per km² at metric points: a dense city centre, town cores, rural base."""
    cx, cy = to_metric(*CITY_CENTRE)
    d2 = (x - cx) ** 2 + (y - cy) ** 2
    value = 250.0 + 22_000.0 * np.exp(-d2 / (2 * 3_500.0**2)) + 4_000 * np.exp(-d2 / (2 * 9e3**2))
    for code, (lon, lat) in TOWN_CENTRES.items():
        if code in CENTRAL_STREETS:
            continue
        tx, ty = to_metric(lon, lat)
        value += 2_500.0 * np.exp(-((x - tx) ** 2 + (y - ty) ** 2) / (2 * 1_500.0**2))
    return value


def _sample(district: Polygon, n: int, rng: np.random.Generator) -> NDArray:
    """n points inside ``district`` with probability ∝ density^0.6."""
    minx, miny, maxx, maxy = district.bounds
    shapely.prepare(district)
    peak = density(*to_metric(*CITY_CENTRE)) ** 0.6
    points: list[NDArray] = []
    count = 0
    while count < n:
        x = rng.uniform(minx, maxx, 20_000)
        y = rng.uniform(miny, maxy, 20_000)
        keep = rng.uniform(0, peak, x.size) < density(x, y) ** 0.6
        x, y = x[keep], y[keep]
        inside = shapely.contains_xy(district, x, y)
        batch = np.column_stack([x[inside], y[inside]])
        points.append(batch)
        count += len(batch)
    return np.concatenate(points)[:n]


def _cells(district: Polygon, seeds: NDArray) -> list[Polygon | MultiPolygon]:
    """Voronoi cells of ``seeds`` cut by ``district``, sharing identical edges, in seed order."""
    envelope = shapely.box(*district.buffer(5_000).bounds)
    voronoi = shapely.voronoi_polygons(shapely.multipoints(seeds), extend_to=envelope)
    lines = [shapely.boundary(cell) for cell in voronoi.geoms] + [district.boundary]
    noded = shapely.union_all(lines)
    faces = np.array(list(shapely.polygonize(list(shapely.get_parts(noded))).geoms))
    faces = faces[
        shapely.contains_xy(district, *shapely.get_coordinates(shapely.point_on_surface(faces)).T)
    ]
    tree = shapely.STRtree(shapely.points(seeds))
    owner = tree.query_nearest(shapely.point_on_surface(faces), all_matches=False)[1]
    cells: list[list[Polygon]] = [[] for _ in range(len(seeds))]
    for face, seed in zip(faces, owner, strict=True):
        cells[seed].append(face)
    return [parts[0] if len(parts) == 1 else shapely.coverage_union_all(parts) for parts in cells]


def _lloyd(district: Polygon, seeds: NDArray, steps: int) -> NDArray:
    for _ in range(steps):
        cells = _cells(district, seeds)
        seeds = shapely.get_coordinates(
            shapely.point_on_surface(
                [shapely.centroid(c) if c.contains(shapely.centroid(c)) else c for c in cells]
            )
        )
    return seeds


def bisect(points: NDArray, k: int) -> NDArray:
    """Split points into k compact groups of near-equal size (recursive coordinate bisection)."""
    labels = np.zeros(len(points), dtype=np.int64)

    def split(index: NDArray, first: int, parts: int) -> None:
        if parts == 1:
            labels[index] = first
            return
        left_parts = parts // 2
        sub = points[index]
        axis = int(np.ptp(sub[:, 0]) < np.ptp(sub[:, 1]))
        order = index[np.argsort(sub[:, axis], kind="stable")]
        cut = round(len(index) * left_parts / parts)
        split(order[:cut], first, left_parts)
        split(order[cut:], first + left_parts, parts - left_parts)

    split(np.arange(len(points)), 0, k)
    return labels


def largest_remainder(weights: NDArray, total: int, minimum: int = 1) -> NDArray:
    """Integers >= minimum, summing to total, proportional to weights."""
    base = np.full(len(weights), minimum)
    share = weights / weights.sum() * (total - base.sum())
    counts = base + np.floor(share).astype(int)
    remainder = share - np.floor(share)
    for i in np.argsort(-remainder, kind="stable")[: total - counts.sum()]:
        counts[i] += 1
    return counts


def _to_wgs84(geom: Polygon | MultiPolygon) -> MultiPolygon:
    geom = shapely.transform(geom, lambda xy: np.column_stack(from_metric(xy[:, 0], xy[:, 1])))
    return geom if isinstance(geom, MultiPolygon) else MultiPolygon([geom])


def generate(
    district_wgs84: MultiPolygon, towns: list[Town], units: list[Unit], rng: np.random.Generator
) -> Boundaries:
    """Every boundary layer of the demo (see the module docstring)."""
    district = shapely.transform(
        district_wgs84, lambda xy: np.column_stack(to_metric(xy[:, 0], xy[:, 1]))
    ).geoms[0]
    seeds = _lloyd(district, _sample(district, GRIDS, rng), steps=3)
    cells = _cells(district, seeds)

    # Towns: nearest centre, distances to central streets stretched so they stay compact.
    town_codes = [town.code for town in towns]
    centres = np.array([to_metric(*TOWN_CENTRES[code]) for code in town_codes])
    stretch = np.array([TOWN_STRETCH.get(code, 1.0) for code in town_codes])
    distance = np.hypot(*(seeds[:, None, :] - centres[None, :, :]).transpose(2, 0, 1)) * stretch
    town_of_grid = np.argmin(distance, axis=1)

    units_by_town = {code: [u for u in units if u.town_code == code] for code in town_codes}
    unit_of_grid = np.empty(GRIDS, dtype=np.int64)
    unit_index = {unit.code: i for i, unit in enumerate(units)}
    for t, code in enumerate(town_codes):
        members = np.flatnonzero(town_of_grid == t)
        its_units = units_by_town[code]
        if len(members) < 2 * len(its_units):
            msg = f"town {code} got {len(members)} grids for {len(its_units)} units"
            raise RuntimeError(msg)
        labels = bisect(seeds[members], len(its_units))
        unit_of_grid[members] = [unit_index[its_units[label].code] for label in labels]

    grids_per_unit = np.bincount(unit_of_grid, minlength=len(units))
    large_per_unit = largest_remainder(grids_per_unit.astype(float), LARGE_GRIDS)
    large_of_grid = np.empty(GRIDS, dtype=np.int64)
    large_owner: list[int] = []
    for u in range(len(units)):
        members = np.flatnonzero(unit_of_grid == u)
        labels = bisect(seeds[members], int(large_per_unit[u]))
        large_of_grid[members] = len(large_owner) + labels
        large_owner += [u] * int(large_per_unit[u])

    areas_km2 = shapely.area(cells) / 1e6
    centroids = shapely.get_coordinates(shapely.centroid(cells))
    weight = density(centroids[:, 0], centroids[:, 1]) * areas_km2
    population = largest_remainder(weight, POPULATION, minimum=0)

    def union(members: NDArray) -> Polygon | MultiPolygon:
        return shapely.coverage_union_all([cells[i] for i in members])

    grids: list[Feature] = []
    large_grids: list[Feature] = []
    counters: dict[int, int] = {}
    for lg, u in enumerate(large_owner):
        unit = units[u]
        counters[u] = counters.get(u, 0) + 1
        lg_code = f"{unit.code}{counters[u]:02d}"
        members = np.flatnonzero(large_of_grid == lg)
        large_grids.append(
            Feature(
                lg_code,
                f"{unit.name}第{counters[u]}大网格",
                unit.code,
                _to_wgs84(union(members)),
                int(population[members].sum()),
            )
        )
        for n, g in enumerate(members[np.lexsort((seeds[members, 0], -seeds[members, 1]))], 1):
            grids.append(
                Feature(
                    f"{lg_code}{n:02d}",
                    f"{unit.name}{counters[u]}-{n}网格",
                    lg_code,
                    _to_wgs84(cells[g]),
                    int(population[g]),
                )
            )
    unit_features = [
        Feature(
            unit.code,
            unit.name,
            unit.town_code,
            _to_wgs84(union(np.flatnonzero(unit_of_grid == u))),
            int(population[unit_of_grid == u].sum()),
            unit.kind,
        )
        for u, unit in enumerate(units)
    ]
    town_features = [
        Feature(
            town.code,
            town.name,
            "441302",
            _to_wgs84(union(np.flatnonzero(town_of_grid == t))),
            int(population[town_of_grid == t].sum()),
        )
        for t, town in enumerate(towns)
    ]
    district_feature = Feature("441302", "惠城区", None, district_wgs84, POPULATION)
    return Boundaries([district_feature], town_features, unit_features, large_grids, grids)
