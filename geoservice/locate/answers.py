"""Locate results as the API answers them: one point as a dict, a batch as JSON bytes.

Both carry the same members (``status``, ``point``, the hierarchy, ``nearest``,
``dataset_version``), as the ``LocateResult`` model documents them; distances are rounded
to the centimetre by one rule (``round_m``).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import Any

import numpy as np
import orjson
from numpy.typing import NDArray

from geoservice.locate.results import OUTSIDE, STATUS_NAMES, Batch, Grid

_LAT = b',"lat":'
_OUTSIDE_MIDDLE = (
    b'},"grid":null,"large_grid":null,"unit":null,"town":null,"district":null,"officers":[],'
    b'"station":null,"post":null,"nearest":{"grid_code":'
)
_HEADS = np.array(
    [b'{"status":"%s","point":{"lon":' % s.encode() for s in STATUS_NAMES], dtype=object
)
_COMMA_HEADS = np.array([b"," + head for head in _HEADS], dtype=object)


def round_m(metres: NDArray[np.float64] | float) -> Any:
    """Distances as answered: to the centimetre (one rule for single and batch answers)."""
    return np.round(metres, 2)


class Answers:
    """The answers of one index: its ``version`` and ``grids`` (in index order)."""

    def __init__(self, version: int, grids: Sequence[Grid]) -> None:
        self.version = version
        self.grids = grids
        self._version_bytes = str(version).encode()

    def one(
        self, lon: float, lat: float, grid: int, status: int, distance_m: float | None
    ) -> dict[str, Any]:
        """The answer for the point ``lon``, ``lat`` where ``find`` found it: ``grid`` (an
        index of ``grids``), ``status``, ``distance_m`` (outside only)."""
        point = {"lon": lon, "lat": lat}
        if status == OUTSIDE:
            assert distance_m is not None
            return {
                "status": "outside",
                "point": point,
                "grid": None,
                "large_grid": None,
                "unit": None,
                "town": None,
                "district": None,
                "officers": [],
                "station": None,
                "post": None,
                "nearest": {
                    "grid_code": self.grids[grid].code,
                    "distance_m": float(round_m(distance_m)),
                },
                "dataset_version": self.version,
            }
        return {
            "status": STATUS_NAMES[status],
            "point": point,
            **self.grids[grid].hierarchy,
            "nearest": None,
            "dataset_version": self.version,
        }

    def results(self, batch: Batch) -> list[dict[str, Any]]:
        """A batch's answers (dicts), in input order."""
        return [
            self.one(float(x), float(y), int(g), int(s), None if s != OUTSIDE else float(d))
            for x, y, g, s, d in zip(
                batch.lon, batch.lat, batch.grid, batch.status, batch.nearest_m, strict=True
            )
        ]

    def batch_json(self, batch: Batch) -> bytes:
        """``{"dataset_version": N, "results": [...]}`` as JSON bytes.

        No per-item objects: each grid's hierarchy is serialised once per index, numbers
        are formatted by one ``orjson`` call per column, and the answer is one
        ``bytes.join`` over columns of pieces (outside items take the empty pieces of the
        hierarchy and fill those of ``nearest``).
        """
        n = len(batch.grid)
        outside = batch.status == OUTSIDE
        grid = np.where(batch.grid >= 0, batch.grid, 0)
        empty = np.full(n, b"", dtype=object)
        head = np.where(np.arange(n) == 0, _HEADS[batch.status], _COMMA_HEADS[batch.status])
        rest = np.where(outside, _OUTSIDE_MIDDLE, self._rests[grid])
        code = np.where(outside, self._nearest_codes[grid], empty)
        distance = empty.copy()
        distance[outside] = _numbers(round_m(batch.nearest_m[outside]))
        end = np.where(outside, self._outside_ends, empty)
        columns = (
            head,
            _numbers(batch.lon),
            _LAT,
            _numbers(batch.lat),
            rest,
            code,
            distance,
            end,
        )
        pieces = np.empty(len(columns) * n + 2, dtype=object)
        pieces[0] = b'{"dataset_version":' + self._version_bytes + b',"results":['
        for k, column in enumerate(columns):
            pieces[1 + k : 1 + len(columns) * n : len(columns)] = column
        pieces[-1] = b"]}"
        return b"".join(pieces.tolist())

    @cached_property
    def _rests(self) -> NDArray[np.object_]:
        """After a grid's point: its hierarchy as JSON members, ``nearest`` and the version."""
        tail = b',"nearest":null,"dataset_version":' + self._version_bytes + b"}"
        return np.array(
            [b"}," + orjson.dumps(grid.hierarchy)[1:-1] + tail for grid in self.grids],
            dtype=object,
        )

    @cached_property
    def _nearest_codes(self) -> NDArray[np.object_]:
        return np.array(
            [orjson.dumps(grid.code) + b',"distance_m":' for grid in self.grids], dtype=object
        )

    @cached_property
    def _outside_ends(self) -> bytes:
        return b'},"dataset_version":' + self._version_bytes + b"}"


def _numbers(values: NDArray[np.float64]) -> NDArray[np.object_]:
    """Each number as JSON text (``orjson``'s shortest form), as an object array of bytes."""
    if len(values) == 0:
        return np.array([], dtype=object)
    return np.array(orjson.dumps(values.tolist())[1:-1].split(b","), dtype=object)
