"""Synthetic households: buildings inside each grid whose residents sum to the grid's.

Each grid of ``population`` residents gets about one building per ``RESIDENTS_PER_BUILDING``
(at least one when anyone lives there), placed uniformly inside the grid — the grids'
populations already follow the demo's density, so the buildings do too. Residents are
split among the buildings by largest remainder (they sum to the grid's exactly), and each
building's households are its residents over ``RESIDENTS_PER_HOUSEHOLD``, at least one.
"""

from __future__ import annotations

import numpy as np
import shapely

from geoservice.synthetic.boundaries import Feature, largest_remainder

RESIDENTS_PER_BUILDING = 60
RESIDENTS_PER_HOUSEHOLD = 2.8


def buildings(
    grids: list[Feature], rng: np.random.Generator
) -> tuple[list[str], list[int], list[int], list[shapely.Point]]:
    """Codes, residents, households and points of the buildings of every grid."""
    codes: list[str] = []
    residents: list[int] = []
    households: list[int] = []
    points: list[shapely.Point] = []
    for grid in grids:
        if grid.population <= 0:
            continue
        count = max(1, round(grid.population / RESIDENTS_PER_BUILDING))
        shares = largest_remainder(rng.uniform(0.5, 1.5, count), grid.population, minimum=0)
        for i, (people, point) in enumerate(zip(shares, _inside(grid, count, rng), strict=True)):
            codes.append(f"{grid.code}-{i + 1:03d}")
            residents.append(int(people))
            households.append(max(1, round(people / RESIDENTS_PER_HOUSEHOLD)) if people else 0)
            points.append(point)
    return codes, residents, households, points


def _inside(grid: Feature, count: int, rng: np.random.Generator) -> list[shapely.Point]:
    shapely.prepare(grid.geom)
    minx, miny, maxx, maxy = grid.geom.bounds
    found: list[shapely.Point] = []
    while len(found) < count:
        x = rng.uniform(minx, maxx, 4 * count)
        y = rng.uniform(miny, maxy, 4 * count)
        inside = shapely.contains_xy(grid.geom, x, y)
        found.extend(shapely.points(x[inside], y[inside]))
    return found[:count]
