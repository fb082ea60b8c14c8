"""What a lookup finds: the grids an index answers, where one point is, where many are."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

INSIDE, BOUNDARY, OUTSIDE = 0, 1, 2
"""A point's status: covered by one grid, by several (a shared edge or vertex: the grid of
the smallest code), by none (the nearest grid)."""
STATUS_NAMES = ("inside", "boundary", "outside")


@dataclass(frozen=True)
class Grid:
    """One base grid: its code and its hierarchy (grid, large grid, unit, town, district as
    ``{code, name}``, the unit's officers, the town's station, the unit's post)."""

    code: str
    hierarchy: dict[str, Any]

    @classmethod
    def of(cls, hierarchy: dict[str, Any]) -> Grid:
        return cls(hierarchy["grid"]["code"], hierarchy)


Found = tuple[int, int, float | None]
"""Where one point is: a grid (an index into the index's grids), its status, and the
distance in metres to that grid (outside only; a plain tuple, made per request)."""


@dataclass(frozen=True)
class Batch:
    """Where many points are, as arrays (index into ``LocateIndex.grids``; -1 none)."""

    lon: NDArray[np.float64]
    lat: NDArray[np.float64]
    grid: NDArray[np.int64]
    status: NDArray[np.int8]  # INSIDE, BOUNDARY, OUTSIDE
    nearest_m: NDArray[np.float64]  # NaN unless outside
