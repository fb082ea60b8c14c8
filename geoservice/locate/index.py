"""``LocateIndex``: the immutable lookup structure of one dataset version, WGS84 points in,
grids out.

Grids are closed polygons: a point covered by exactly one grid is inside it; covered by
several (on a shared edge or vertex), on their boundary, with the grid of the smallest
code; covered by none, outside, with the nearest grid and the distance in EPSG:4547 metres.
The cell table (``cells.py``) answers most points at once; points in boundary cells are
tested exactly (GEOS, prepared polygons) against the cell's few grids; the nearest grid of
an outside point comes from ``OuterEdges`` (``geoservice/outside.py``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import orjson
import pyproj
import shapely
from numpy.typing import NDArray

from geoservice.crs import METRIC_EPSG
from geoservice.errors import GeoserviceError
from geoservice.locate.answers import Answers
from geoservice.locate.cells import CELL_DEG, OUTSIDE_CELL, CellTable
from geoservice.locate.results import BOUNDARY, INSIDE, OUTSIDE, Batch, Found, Grid
from geoservice.outside import OuterEdges
from geoservice.state_files import MappedPart, Part

NEAR_EDGE_M = 1.0
"""Outside points this close to a grid are tested against the metric polygons too."""


class IndexBuildError(GeoserviceError):
    """The published data cannot make a consistent index (the previous index stays)."""

    title = "Index build failed"


class LocateIndex:
    """Immutable lookup structure for one dataset version."""

    def __init__(
        self,
        version: int,
        grids: list[Grid],
        polygons: NDArray[np.object_],
        district: dict[str, str],
        *,
        built: MappedPart | None = None,
    ) -> None:
        """``grids`` and their WGS84 ``polygons`` in ascending code order. ``built``: the
        tables of these polygons as ``geometry_part`` wrote them (mapped from the state
        directory), instead of building them here."""
        self.version = version
        self.grids = grids
        self.codes = np.array([g.code for g in grids])
        if not (self.codes[:-1] < self.codes[1:]).all():
            msg = "grids must be given in ascending, unique code order"
            raise IndexBuildError(msg)
        self.polygons = polygons
        shapely.prepare(self.polygons)
        self.district = district
        to_metric = pyproj.Transformer.from_crs(4326, METRIC_EPSG, always_xy=True)
        self._to_metric = to_metric
        if built is None:
            self._metric = shapely.transform(
                polygons, lambda xy: np.column_stack(to_metric.transform(xy[:, 0], xy[:, 1]))
            )
            self._outer = OuterEdges(self._metric)
            self.table = CellTable.build(self.polygons)
        else:
            self._metric = shapely.from_wkb(_blobs(built["metric_wkb"], built["metric_at"]))
            self._outer = OuterEdges.from_arrays(
                {k.removeprefix("outer_"): v for k, v in built.arrays.items() if k[:6] == "outer_"}
            )
            self.table = CellTable.from_arrays(built.arrays, built.meta)
        self._built = built  # keeps the mapping (and its shared lock) as long as the index
        self._metric_tree = shapely.STRtree(self._metric)
        self.answers = Answers(version, grids)

    # --- as files (the state directory) -------------------------------------------------------

    def geometry_part(self) -> Part:
        """The tables of this index that depend on the grids' polygons only — the cell table,
        the outer edges, the polygons in both CRSs — for the state directory, where every
        version on the same grid snapshot shares them; ``from_parts`` reads them back."""
        wkb, at = _joined_blobs(shapely.to_wkb(self.polygons))
        metric_wkb, metric_at = _joined_blobs(shapely.to_wkb(self._metric))
        table, table_meta = self.table.to_arrays()
        arrays = {
            **table,
            "codes": self.codes.astype(str),
            "wkb": wkb,
            "wkb_at": at,
            "metric_wkb": metric_wkb,
            "metric_at": metric_at,
            **{f"outer_{k}": v for k, v in self._outer.to_arrays().items()},
        }
        return Part(arrays, table_meta)

    @classmethod
    def from_parts(cls, geometry: MappedPart, labels: MappedPart) -> LocateIndex:
        """The index of ``labels``' version on the tables of ``geometry`` (mapped rather
        than copied), which must be of the same grids."""
        grids = [Grid.of(h) for h in orjson.loads(labels["hierarchies"].tobytes())]
        if not np.array_equal(geometry["codes"], [g.code for g in grids]):
            msg = f"state parts {geometry.name} and {labels.name} are not of the same grids"
            raise IndexBuildError(msg)
        polygons = shapely.from_wkb(_blobs(geometry["wkb"], geometry["wkb_at"]))
        meta = labels.meta
        return cls(int(meta["version"]), grids, polygons, meta["district"], built=geometry)

    @property
    def memory_bytes(self) -> int:
        """Bytes held by the lookup arrays (geometry excluded)."""
        return self.table.memory_bytes

    # --- lookups ------------------------------------------------------------------------------

    def locate_many(
        self, lon: NDArray[np.float64], lat: NDArray[np.float64], *, nearest: bool = True
    ) -> Batch:
        """Where WGS84 points are (arrays, degrees), vectorised; without ``nearest``, outside
        points get no grid (-1) and no distance."""
        lon = np.asarray(lon, dtype=np.float64)
        lat = np.asarray(lat, dtype=np.float64)
        table = self.table
        n = len(lon)
        grid = np.full(n, -1, dtype=np.int64)
        status = np.full(n, OUTSIDE, dtype=np.int8)
        cx = np.floor((lon - table.x0) / CELL_DEG)
        cy = np.floor((lat - table.y0) / CELL_DEG)
        in_box = (cx >= 0) & (cx < table.nx) & (cy >= 0) & (cy < table.ny)  # NaN: False
        value = np.full(n, OUTSIDE_CELL, dtype=np.int64)
        value[in_box] = table.values(cx[in_box].astype(np.int32), cy[in_box].astype(np.int32))
        direct = value >= 0
        grid[direct] = value[direct]
        status[direct] = INSIDE
        exact = np.flatnonzero(value <= -3)
        if len(exact):
            self._exact(exact, -3 - value[exact], lon, lat, grid, status)
        nearest_m = np.full(n, np.nan)
        if nearest:
            out = np.flatnonzero(status == OUTSIDE)
            if len(out):
                grid[out], nearest_m[out] = self._nearest(lon[out], lat[out])
        return Batch(lon, lat, grid, status, nearest_m)

    def _exact(self, points, cell_k, lon, lat, grid, status) -> None:
        """Points in boundary cells against their cells' grids (GEOS)."""
        starts = self.table.starts[cell_k]
        counts = self.table.starts[cell_k + 1] - starts
        owner = np.repeat(np.arange(len(points)), counts)
        offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        candidate = self.table.candidates[np.repeat(starts, counts) + offsets]
        pid = points[owner]
        hit = shapely.intersects_xy(self.polygons[candidate], lon[pid], lat[pid])
        owner, candidate = owner[hit], candidate[hit]
        covering = np.bincount(owner, minlength=len(points))
        # grids are in code order, so the smallest index is the smallest code
        best = np.full(len(points), np.iinfo(np.int64).max)
        np.minimum.at(best, owner, candidate)
        found = covering > 0
        grid[points[found]] = best[found]
        status[points[found]] = np.where(covering[found] > 1, BOUNDARY, INSIDE)

    def _nearest(self, lon, lat) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        """Nearest grid (ties: the smallest code) and distance in EPSG:4547 metres.

        A point a hair outside a grid in degrees can be inside it in metres (edges are
        straight in each CRS, and the projection bends them by millimetres): its distance is
        then 0, as GEOS measures it, and it goes to the smallest such grid."""
        x, y = self._to_metric.transform(lon, lat)
        grid, distance = self._outer.nearest(x, y)
        near = np.flatnonzero(distance < NEAR_EDGE_M)
        if len(near):
            point, hit = self._metric_tree.query(shapely.points(x[near], y[near]), "intersects")
            if len(point):
                smallest = np.full(len(near), np.iinfo(np.int64).max)
                np.minimum.at(smallest, point, hit)
                inside = np.unique(point)
                grid[near[inside]], distance[near[inside]] = smallest[inside], 0.0
        return grid, distance

    def find(self, lon: float, lat: float) -> Found:
        """Where one WGS84 point is (degrees): the fast path of ``locate_many``."""
        table = self.table
        cx = math.floor((lon - table.x0) / CELL_DEG)
        cy = math.floor((lat - table.y0) / CELL_DEG)
        if 0 <= cx < table.nx and 0 <= cy < table.ny:
            value = table.value(cx, cy)
            if value >= 0:
                return value, INSIDE, None
            if value <= -3:  # a boundary cell: exact tests on its few candidates
                k = -3 - value
                candidates = table.candidates[table.starts[k] : table.starts[k + 1]]
                covering = candidates[shapely.intersects_xy(self.polygons[candidates], lon, lat)]
                if len(covering):  # candidates are in code order: the first is the smallest
                    return int(covering[0]), BOUNDARY if len(covering) > 1 else INSIDE, None
        batch = self.locate_many(np.array([lon]), np.array([lat]))
        status = int(batch.status[0])
        distance = float(batch.nearest_m[0]) if status == OUTSIDE else None
        return int(batch.grid[0]), status, distance

    def locate(self, lon: float, lat: float) -> dict[str, Any]:
        """One WGS84 point's answer (degrees), shaped as the API's (``answers.py``)."""
        grid, status, distance_m = self.find(lon, lat)  # unpacked: faster than *
        return self.answers.one(lon, lat, grid, status, distance_m)


def labels_part(version: int, grids: list[Grid], district: dict[str, str]) -> Part:
    """What a version says of its grids (in code order: their hierarchies, officers,
    stations and posts) and its district, as a state part; ``from_parts`` reads it."""
    hierarchies = orjson.dumps([g.hierarchy for g in grids])
    arrays = {"hierarchies": np.frombuffer(hierarchies, dtype=np.uint8)}
    return Part(arrays, {"version": version, "district": district})


def _joined_blobs(blobs: NDArray[np.object_]) -> tuple[NDArray[np.uint8], NDArray[np.int64]]:
    """Byte strings as one array of bytes and the offsets where each starts (and the end)."""
    at = np.concatenate([[0], np.cumsum([len(b) for b in blobs])]).astype(np.int64)
    return np.frombuffer(b"".join(blobs), dtype=np.uint8), at


def _blobs(joined: NDArray[np.uint8], at: NDArray[np.int64]) -> list[bytes]:
    data = joined.tobytes()
    return [data[at[k] : at[k + 1]] for k in range(len(at) - 1)]
