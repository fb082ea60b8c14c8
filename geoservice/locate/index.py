"""Point -> base grid -> whole hierarchy, from an immutable in-memory index per dataset version.

Semantics (the same in every code path: single, batch, HTTP, CLI, Python):

- grids are closed polygons; a point *covered* by exactly one grid is ``inside``;
- a point covered by several grids (on a shared edge or vertex) is ``boundary`` and gets
  the covering grid with the **smallest code** (a stable, documented rule);
- a point covered by none is ``outside``; it gets the nearest grid and the distance in
  metres, measured in EPSG:4547 (CGCS2000 / 3-degree Gauss-Kruger CM 114E).

Speed comes from a cell table: the grids' bounding box is cut into square cells of
``CELL_DEG`` (about 28 m). A cell whose box (slightly enlarged) lies in the interior of one
grid answers directly; a cell that touches no grid answers ``outside``; only points in
cells that touch a grid boundary are tested exactly (GEOS, prepared polygons) against the
few grids listed for that cell. The table is built by a quadtree descent that tests
blocks of cells against an STRtree of the grids, so only blocks near boundaries are split.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import orjson
import pyproj
import shapely
import sqlalchemy as sa
from numpy.typing import NDArray
from sqlalchemy.engine import Engine

from geoservice.crs import METRIC_EPSG, InputCRS, parse_crs
from geoservice.datasets import resolve_version
from geoservice.errors import GeoserviceError, InvalidCoordinates, PayloadTooLarge, shown
from geoservice.outside import OuterEdges
from geoservice.state_files import MappedPart, Part

CELL_DEG = 0.00025
"""Cell size of the lookup table, in degrees (about 28 m by 26 m at 23°N)."""
CELL_MARGIN_DEG = 1e-9
"""Cells are classified with boxes enlarged by this, so rounding in the cell arithmetic
can never hand a point to a neighbouring cell that would answer differently."""
MAX_BATCH = 100_000
FILL_CHUNK = 1 << 22
"""Cells set at once while building the table."""
BLOCK_CHUNK = 1 << 18
"""Blocks classified at once while building the table."""
NEAR_EDGE_M = 1.0
"""Outside points this close to a grid are tested against the metric polygons too."""

OUTSIDE = -2
BOUNDARY_CELL = -1
STATUS_NAMES = ("inside", "boundary", "outside")


def _joined(parts: list[NDArray]) -> NDArray[np.int64]:
    """The parts one after another (an empty int64 array for none)."""
    return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, dtype=np.int64)


class IndexBuildError(GeoserviceError):
    """The published data cannot make a consistent index (the previous index stays)."""

    title = "Index build failed"


@dataclass(frozen=True)
class Grid:
    """One base grid's answer, everything but the point-specific fields."""

    code: str
    hierarchy: dict[str, Any]
    fragment: bytes  # the hierarchy as JSON members, without braces

    @classmethod
    def of(cls, hierarchy: dict[str, Any]) -> Grid:
        """The answer of the grid ``hierarchy`` names, its JSON fragment made once."""
        return cls(hierarchy["grid"]["code"], hierarchy, orjson.dumps(hierarchy)[1:-1])


@dataclass(frozen=True)
class Batch:
    """Results for many points, as arrays (index into ``LocateIndex.grids``; -1 none)."""

    lon: NDArray[np.float64]
    lat: NDArray[np.float64]
    grid: NDArray[np.int64]
    status: NDArray[np.int8]  # 0 inside, 1 boundary, 2 outside
    nearest_m: NDArray[np.float64]  # NaN unless outside


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
        """``built``: the tables of this index as ``to_part`` wrote them (mapped from the state
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
            self._build_cells()
        else:
            self._metric = shapely.from_wkb(_blobs(built["metric_wkb"], built["metric_at"]))
            self._outer = OuterEdges.from_arrays(
                {k.removeprefix("outer_"): v for k, v in built.arrays.items() if k[:6] == "outer_"}
            )
            self.x0, self.y0 = float(built.meta["x0"]), float(built.meta["y0"])
            self.nx, self.ny = int(built.meta["nx"]), int(built.meta["ny"])
            self.boundary_cell_share = float(built.meta["boundary_cell_share"])
            self.cells, self._cand = built["cells"], built["cand"]
            self._cand_start = built["cand_start"]
        self._built = built  # keeps the mapping (and its shared lock) as long as the index
        self._metric_tree = shapely.STRtree(self._metric)
        self._version_bytes = str(version).encode()

    # --- as files (the state directory) -------------------------------------------------------

    def to_part(self) -> Part:
        """This index as arrays and metadata, for the state directory; ``from_part`` reads
        them back into an equal index without building anything."""
        wkb, at = _joined_blobs(shapely.to_wkb(self.polygons))
        metric_wkb, metric_at = _joined_blobs(shapely.to_wkb(self._metric))
        hierarchies = orjson.dumps([g.hierarchy for g in self.grids])
        arrays = {
            "cells": self.cells,
            "cand": self._cand,
            "cand_start": self._cand_start,
            "wkb": wkb,
            "wkb_at": at,
            "metric_wkb": metric_wkb,
            "metric_at": metric_at,
            "hierarchies": np.frombuffer(hierarchies, dtype=np.uint8),
            **{f"outer_{k}": v for k, v in self._outer.to_arrays().items()},
        }
        meta = {
            "version": self.version,
            "district": self.district,
            "x0": self.x0,
            "y0": self.y0,
            "nx": self.nx,
            "ny": self.ny,
            "boundary_cell_share": self.boundary_cell_share,
        }
        return Part(arrays, meta)

    @classmethod
    def from_part(cls, built: MappedPart) -> LocateIndex:
        """The index ``to_part`` wrote, its tables mapped rather than copied."""
        hierarchies = orjson.loads(built["hierarchies"].tobytes())
        grids = [Grid.of(h) for h in hierarchies]
        polygons = shapely.from_wkb(_blobs(built["wkb"], built["wkb_at"]))
        return cls(int(built.meta["version"]), grids, polygons, built.meta["district"], built=built)

    # --- building ---------------------------------------------------------------------------

    def _build_cells(self) -> None:
        tree = shapely.STRtree(self.polygons)
        minx, miny, maxx, maxy = shapely.total_bounds(self.polygons)
        self.x0 = minx - CELL_DEG
        self.y0 = miny - CELL_DEG
        self.nx = math.ceil((maxx - self.x0) / CELL_DEG) + 2
        self.ny = math.ceil((maxy - self.y0) / CELL_DEG) + 2
        cells = np.full((self.ny, self.nx), OUTSIDE, dtype=np.int32)
        flat_cells = np.array([], dtype=np.int64)

        size = 1 << max(0, math.ceil(math.log2(max(self.nx, self.ny))) - 4)
        ix, iy = np.meshgrid(np.arange(0, self.nx, size), np.arange(0, self.ny, size))
        blocks = np.column_stack([ix.ravel(), iy.ravel()])
        while len(blocks):
            children, flat_parts, cand_parts, count_parts = [], [], [], []
            for k in range(0, len(blocks), BLOCK_CHUNK):  # bounded scratch on large tables
                part = blocks[k : k + BLOCK_CHUNK]
                boxes = shapely.box(
                    self.x0 + part[:, 0] * CELL_DEG - CELL_MARGIN_DEG,
                    self.y0 + part[:, 1] * CELL_DEG - CELL_MARGIN_DEG,
                    self.x0 + (part[:, 0] + size) * CELL_DEG + CELL_MARGIN_DEG,
                    self.y0 + (part[:, 1] + size) * CELL_DEG + CELL_MARGIN_DEG,
                )
                box_i, grid_i = tree.query(boxes, predicate="intersects")
                hits = np.bincount(box_i, minlength=len(part))
                first = np.full(len(part), -1)
                first[box_i[::-1]] = grid_i[::-1]
                inside = np.zeros(len(part), dtype=bool)
                single = np.flatnonzero(hits == 1)
                inside[single] = shapely.contains_properly(
                    self.polygons[first[single]], boxes[single]
                )
                self._fill(cells, part[inside], first[inside], size)
                ambiguous = (hits > 0) & ~inside
                if size == 1:
                    # each boundary cell keeps its candidate grids, in code (= index) order
                    keep = ambiguous[box_i]
                    order = np.lexsort((grid_i[keep], box_i[keep]))
                    cand_parts.append(grid_i[keep][order])
                    rank = np.cumsum(ambiguous) - 1  # box -> its candidate list
                    count_parts.append(
                        np.bincount(rank[box_i[keep][order]], minlength=int(ambiguous.sum()))
                    )
                    flat_parts.append(part[ambiguous, 1] * self.nx + part[ambiguous, 0])
                else:
                    half = size // 2
                    children += [
                        part[ambiguous] + np.array([dx, dy]) * half
                        for dx in (0, 1)
                        for dy in (0, 1)
                    ]
            if size == 1:
                self._cand = _joined(cand_parts)
                self._cand_start = np.concatenate([[0], np.cumsum(_joined(count_parts))])
                flat_cells = _joined(flat_parts)
                break
            size //= 2
            blocks = _joined(children).reshape(-1, 2)
            blocks = blocks[(blocks[:, 0] < self.nx) & (blocks[:, 1] < self.ny)]

        # A boundary cell stores -3 - k, where k indexes its candidate list.
        cells.ravel()[flat_cells] = -3 - np.arange(len(flat_cells))
        self.cells = cells
        self.boundary_cell_share = len(flat_cells) / max(1, int((cells != OUTSIDE).sum()))

    def _fill(self, cells: NDArray, blocks: NDArray, grids: NDArray, size: int) -> None:
        """Set every cell of each (size x size) block to its grid, clipped to the table
        (in chunks of about ``FILL_CHUNK`` cells, so large tables need no large scratch)."""
        dx, dy = np.meshgrid(np.arange(size), np.arange(size))
        step = max(1, FILL_CHUNK // (size * size))
        for k in range(0, len(blocks), step):
            part = blocks[k : k + step]
            x = (part[:, :1] + dx.ravel()).ravel()
            y = (part[:, 1:] + dy.ravel()).ravel()
            value = np.repeat(grids[k : k + step], size * size)
            ok = (x < self.nx) & (y < self.ny)
            cells[y[ok], x[ok]] = value[ok]

    @property
    def memory_bytes(self) -> int:
        """Bytes held by the lookup arrays (geometry excluded)."""
        return int(self.cells.nbytes + self._cand.nbytes + self._cand_start.nbytes)

    # --- lookups ------------------------------------------------------------------------------

    def locate_many(
        self, lon: NDArray[np.float64], lat: NDArray[np.float64], *, nearest: bool = True
    ) -> Batch:
        """Locate WGS84 points (arrays); vectorised."""
        lon = np.asarray(lon, dtype=np.float64)
        lat = np.asarray(lat, dtype=np.float64)
        n = len(lon)
        grid = np.full(n, -1, dtype=np.int64)
        status = np.full(n, 2, dtype=np.int8)
        cx = np.floor((lon - self.x0) / CELL_DEG).astype(np.int64)
        cy = np.floor((lat - self.y0) / CELL_DEG).astype(np.int64)
        in_box = (cx >= 0) & (cx < self.nx) & (cy >= 0) & (cy < self.ny)
        value = np.full(n, OUTSIDE, dtype=np.int64)
        value[in_box] = self.cells[cy[in_box], cx[in_box]]
        direct = value >= 0
        grid[direct] = value[direct]
        status[direct] = 0
        exact = np.flatnonzero(value <= -3)
        if len(exact):
            self._exact(exact, -3 - value[exact], lon, lat, grid, status)
        nearest_m = np.full(n, np.nan)
        if nearest:
            out = np.flatnonzero(status == 2)
            if len(out):
                grid[out], nearest_m[out] = self._nearest(lon[out], lat[out])
        return Batch(lon, lat, grid, status, nearest_m)

    def _exact(self, points, cell_k, lon, lat, grid, status) -> None:
        starts = self._cand_start[cell_k]
        counts = self._cand_start[cell_k + 1] - starts
        owner = np.repeat(np.arange(len(points)), counts)
        offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        candidate = self._cand[np.repeat(starts, counts) + offsets]
        pid = points[owner]
        hit = shapely.intersects_xy(self.polygons[candidate], lon[pid], lat[pid])
        owner, candidate = owner[hit], candidate[hit]
        covering = np.bincount(owner, minlength=len(points))
        # grids are in code order, so the smallest index is the smallest code
        best = np.full(len(points), np.iinfo(np.int64).max)
        np.minimum.at(best, owner, candidate)
        found = covering > 0
        grid[points[found]] = best[found]
        status[points[found]] = np.where(covering[found] > 1, 1, 0)

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

    def locate(self, lon: float, lat: float) -> dict[str, Any]:
        """One WGS84 point -> the locate result (a dict shaped as in the API)."""
        cx = math.floor((lon - self.x0) / CELL_DEG)
        cy = math.floor((lat - self.y0) / CELL_DEG)
        if 0 <= cx < self.nx and 0 <= cy < self.ny:
            value = int(self.cells[cy, cx])
            if value >= 0:
                return self._answer(lon, lat, value, 0, None)
            if value <= -3:  # a boundary cell: exact tests on its few candidates
                k = -3 - value
                candidates = self._cand[self._cand_start[k] : self._cand_start[k + 1]]
                covering = candidates[shapely.intersects_xy(self.polygons[candidates], lon, lat)]
                if len(covering):  # candidates are in code order: the first is the smallest
                    return self._answer(lon, lat, int(covering[0]), int(len(covering) > 1), None)
        batch = self.locate_many(np.array([lon]), np.array([lat]))
        return self._answer(
            lon, lat, int(batch.grid[0]), int(batch.status[0]), float(batch.nearest_m[0])
        )

    def _answer(self, lon, lat, g: int, status: int, distance: float | None) -> dict[str, Any]:
        point = {"lon": lon, "lat": lat}
        if status == 2:
            assert distance is not None
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
                    "grid_code": self.grids[g].code,
                    "distance_m": float(round_m(distance)),
                },
                "dataset_version": self.version,
            }
        return {
            "status": STATUS_NAMES[status],
            "point": point,
            **self.grids[g].hierarchy,
            "nearest": None,
            "dataset_version": self.version,
        }

    def results(self, batch: Batch) -> list[dict[str, Any]]:
        """A batch as locate results (dicts), in input order."""
        return [
            self._answer(float(x), float(y), int(g), int(s), None if s != 2 else float(d))
            for x, y, g, s, d in zip(
                batch.lon, batch.lat, batch.grid, batch.status, batch.nearest_m, strict=True
            )
        ]

    def results_json(self, batch: Batch) -> bytes:
        """``{"dataset_version": N, "results": [...]}`` as JSON bytes.

        No per-item objects: each grid's hierarchy was serialised once when the index was
        built, numbers are formatted by one ``orjson`` call per column, and the answer is
        one ``bytes.join`` over columns of pieces (outside items take the empty pieces of
        the hierarchy and fill those of ``nearest``).
        """
        n = len(batch.grid)
        outside = batch.status == 2
        grid = np.where(batch.grid >= 0, batch.grid, 0)
        empty = np.full(n, b"", dtype=object)
        head = np.where(
            np.arange(n) == 0, self._heads[batch.status], self._comma_heads[batch.status]
        )
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
    def _heads(self) -> NDArray[np.object_]:
        return np.array(
            [b'{"status":"%s","point":{"lon":' % s.encode() for s in STATUS_NAMES], dtype=object
        )

    @cached_property
    def _comma_heads(self) -> NDArray[np.object_]:
        return np.array([b"," + head for head in self._heads], dtype=object)

    @cached_property
    def _rests(self) -> NDArray[np.object_]:
        tail = b',"nearest":null,"dataset_version":' + self._version_bytes + b"}"
        return np.array([b"}," + grid.fragment + tail for grid in self.grids], dtype=object)

    @cached_property
    def _nearest_codes(self) -> NDArray[np.object_]:
        return np.array(
            [orjson.dumps(grid.code) + b',"distance_m":' for grid in self.grids], dtype=object
        )

    @cached_property
    def _outside_ends(self) -> bytes:
        return b'},"dataset_version":' + self._version_bytes + b"}"


_LAT = b',"lat":'
_OUTSIDE_MIDDLE = (
    b'},"grid":null,"large_grid":null,"unit":null,"town":null,"district":null,"officers":[],'
    b'"station":null,"post":null,"nearest":{"grid_code":'
)


def _joined_blobs(blobs: NDArray[np.object_]) -> tuple[NDArray[np.uint8], NDArray[np.int64]]:
    """Byte strings as one array of bytes and the offsets where each starts (and the end)."""
    at = np.concatenate([[0], np.cumsum([len(b) for b in blobs])]).astype(np.int64)
    return np.frombuffer(b"".join(blobs), dtype=np.uint8), at


def _blobs(joined: NDArray[np.uint8], at: NDArray[np.int64]) -> list[bytes]:
    data = joined.tobytes()
    return [data[at[k] : at[k + 1]] for k in range(len(at) - 1)]


def round_m(metres: NDArray[np.float64] | float) -> Any:
    """Distances as answered: to the centimetre (one rule for single and batch answers)."""
    return np.round(metres, 2)


def _numbers(values: NDArray[np.float64]) -> NDArray[np.object_]:
    """Each number as JSON text (``orjson``'s shortest form), as an object array of bytes."""
    if len(values) == 0:
        return np.array([], dtype=object)
    return np.array(orjson.dumps(values.tolist())[1:-1].split(b","), dtype=object)


# --- input checks shared by the API and the CLI ---------------------------------------------

DISTRICT_BBOX = (113.9, 22.6, 115.1, 23.8)
"""Huicheng and surroundings; used only to spot swapped lon/lat."""


def to_wgs84_points(points: Any, crs: InputCRS) -> tuple[NDArray, NDArray]:
    """Validate ``[[x, y], ...]`` (or ``[{"lon": x, "lat": y}, ...]``) in ``crs`` and
    convert to WGS84 arrays; errors name the value."""
    if not isinstance(points, list):
        msg = f"points must be a list of [lon, lat] pairs, got {type(points).__name__}"
        raise InvalidCoordinates(msg)
    if len(points) == 0:
        msg = "points is empty; send 1 to 100,000 [lon, lat] pairs"
        raise InvalidCoordinates(msg)
    if len(points) > MAX_BATCH:
        msg = f"{len(points):,} points is more than the limit of {MAX_BATCH:,} per request"
        raise PayloadTooLarge(msg)
    numbers = (float, int)
    if not all(
        type(pair) is list
        and len(pair) == 2
        and type(pair[0]) in numbers
        and type(pair[1]) in numbers
        for pair in points
    ):
        points = [_as_pair(item) for item in points]
        for i, item in enumerate(points):
            if not (isinstance(item, list) and len(item) == 2):
                msg = (
                    f"points[{i}] is {shown(item)}; expected a [lon, lat] pair of numbers "
                    "or {lon, lat}"
                )
                raise InvalidCoordinates(msg)
            for value in item:
                if type(value) not in numbers:
                    msg = f"points[{i}] has {shown(value)}; expected numbers"
                    raise InvalidCoordinates(msg)
    xy = np.array(points, dtype=np.float64)
    return check_coordinates(xy[:, 0], xy[:, 1], crs)


def _as_pair(item: Any) -> Any:
    """``{"lon": x, "lat": y}`` as ``[x, y]`` (x, y in the request's CRS); any other item
    as it is."""
    if isinstance(item, dict) and item.keys() == {"lon", "lat"}:
        return [item["lon"], item["lat"]]
    return item


def check_coordinates(
    x: NDArray, y: NDArray, crs: InputCRS, *, single: bool = False
) -> tuple[NDArray, NDArray]:
    """Finite, not swapped, in range; returns WGS84 lon/lat arrays. Errors name the value."""

    def fail(mask: NDArray, problem: str) -> None:
        if mask.any():
            i = int(np.flatnonzero(mask)[0])
            where = "" if single else f"point {i}: "
            raise InvalidCoordinates(where + problem.format(x=x[i], y=y[i]))

    fail(~(np.isfinite(x) & np.isfinite(y)), "({x}, {y}) is not a finite coordinate")
    if crs.geographic:
        minx, miny, maxx, maxy = DISTRICT_BBOX
        swapped = (y >= minx) & (y <= maxx) & (x >= miny) & (x <= maxy)
        fail(swapped, "({x}, {y}) looks like lat, lon for Huicheng; send lon first")
        fail(np.abs(x) > 180, "longitude {x} outside [-180, 180]")
        fail(np.abs(y) > 90, "latitude {y} outside [-90, 90]")
    else:  # metres: a pair within 180 and 90 of the projection's origin is degrees sent by mistake
        degrees = (np.abs(x) <= 180) & (np.abs(y) <= 90)
        fail(degrees, f"({{x}}, {{y}}) looks like degrees; {crs.name} takes metres (x, y)")
    lon, lat = crs.to_wgs84(x, y)
    lon, lat = np.atleast_1d(lon), np.atleast_1d(lat)
    fail(~(np.isfinite(lon) & np.isfinite(lat)), f"({{x}}, {{y}}) is not a point of {crs.name}")
    return lon, lat


def named_items(message: str, where: str) -> str:
    """``to_wgs84_points``'s message with its ``points[i]`` or ``point i`` named as the
    caller numbers its items: ``row i+1`` (a file's rows) or ``where[i]`` (a JSON list)."""

    def name(match: re.Match[str]) -> str:
        i = int(match[1] or match[2])
        return f"row {i + 1}" if where == "row" else f"{where}[{i}]"

    return re.sub(r"points?(?:\[(\d+)\]| (\d+))", name, message)


def parse_point(lon: str | float | None, lat: str | float | None, crs_name: str | None):
    """One point from query strings or CLI arguments; returns (lon, lat) in WGS84."""
    crs = parse_crs(crs_name)
    values = []
    for name, raw in (("lon", lon), ("lat", lat)):
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            msg = f"{name} is missing; expected a number"
            raise InvalidCoordinates(msg)
        try:
            values.append(float(raw))
        except (TypeError, ValueError):
            msg = f"{name} {raw!r} is not a number"
            raise InvalidCoordinates(msg) from None
    x, y = values
    if crs.name in ("wgs84", "cgcs2000") and _plainly_valid(x, y):
        return x, y  # the common case, without numpy's per-call overhead
    lon_, lat_ = check_coordinates(np.array([x]), np.array([y]), crs, single=True)
    return float(lon_[0]), float(lat_[0])


def _plainly_valid(x: float, y: float) -> bool:
    """Finite, in range and not a swapped Huicheng pair: what ``check_coordinates`` passes
    unchanged (anything else goes through it, for its message)."""
    minx, miny, maxx, maxy = DISTRICT_BBOX
    return (
        math.isfinite(x)
        and math.isfinite(y)
        and abs(x) <= 180
        and abs(y) <= 90
        and not (minx <= y <= maxx and miny <= x <= maxy)
    )


# --- building from PostGIS --------------------------------------------------------------------


def _layer(table: str, alias: str, layer: str) -> str:
    return (
        f"geoservice.{table} {alias} ON {alias}.snapshot_id = geoservice.snapshot_of(:v, '{layer}')"
    )


HIERARCHY_SQL = f"""
SELECT g.code, g.name, ST_AsBinary(g.geom),
       lg.code, lg.name, u.code, u.name, u.kind, t.code, t.name, d.code, d.name
FROM geoservice.boundary g
LEFT JOIN {_layer("boundary", "lg", "large_grid")} AND lg.code = g.parent_code
LEFT JOIN {_layer("boundary", "u", "unit")} AND u.code = lg.parent_code
LEFT JOIN {_layer("boundary", "t", "town")} AND t.code = u.parent_code
LEFT JOIN {_layer("boundary", "d", "district")} AND d.code = t.parent_code
WHERE g.snapshot_id = geoservice.snapshot_of(:v, 'grid')
ORDER BY g.code
"""
OFFICERS_SQL = f"""
SELECT ou.unit_code, o.code, o.name
FROM geoservice.officer_unit ou
JOIN {_layer("officer", "o", "officers")} AND o.code = ou.officer_code
WHERE ou.snapshot_id = geoservice.snapshot_of(:v, 'officers')
ORDER BY ou.unit_code, o.code
"""
STATIONS_SQL = """
SELECT kind, area_code, code, name FROM geoservice.station
WHERE snapshot_id = geoservice.snapshot_of(:v, 'stations') ORDER BY code
"""


def build_index(engine: Engine, version: int | None = None) -> LocateIndex:
    """Read one dataset version (default: the current one) in one snapshot; build its index."""
    with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn:
        version = resolve_version(conn, version)
        rows = conn.execute(sa.text(HIERARCHY_SQL), {"v": version}).all()
        officer_rows = conn.execute(sa.text(OFFICERS_SQL), {"v": version}).all()
        station_rows = conn.execute(sa.text(STATIONS_SQL), {"v": version}).all()
    rows = sorted(rows, key=lambda row: row[0])  # code order, whatever the collation
    if not rows:
        msg = f"dataset version {version} has no grids"
        raise IndexBuildError(msg)
    broken = [row[0] for row in rows if row[10] is None]
    if broken:
        msg = (
            f"dataset version {version}: {len(broken)} grids have no complete chain to the "
            f"district, e.g. {broken[:5]}"
        )
        raise IndexBuildError(msg)
    officers: dict[str, list[dict[str, str]]] = {}
    for unit_code, code, name in officer_rows:
        officers.setdefault(unit_code, []).append({"code": code, "name": name})
    stations = {
        area: {"code": code, "name": name}
        for kind, area, code, name in station_rows
        if kind == "station"
    }
    posts = {
        area: {"code": code, "name": name}
        for kind, area, code, name in station_rows
        if kind == "post"
    }
    grids = []
    for row in rows:
        (
            code,
            name,
            _,
            lg_code,
            lg_name,
            u_code,
            u_name,
            u_kind,
            t_code,
            t_name,
            d_code,
            d_name,
        ) = row
        hierarchy = {
            "grid": {"code": code, "name": name},
            "large_grid": {"code": lg_code, "name": lg_name},
            "unit": {"code": u_code, "name": u_name, "kind": u_kind},
            "town": {"code": t_code, "name": t_name},
            "district": {"code": d_code, "name": d_name},
            "officers": officers.get(u_code, []),
            "station": stations.get(t_code),
            "post": posts.get(u_code),
        }
        grids.append(Grid.of(hierarchy))
    polygons = shapely.from_wkb([bytes(row[2]) for row in rows])
    district = {"code": rows[0][10], "name": rows[0][11]}
    return LocateIndex(version, grids, polygons, district)


def locate_points(index: LocateIndex, points: list, crs_name: str | None) -> Batch:
    """Validate, convert and locate a batch given as ``[[x, y], ...]`` in ``crs_name``."""
    lon, lat = to_wgs84_points(points, parse_crs(crs_name))
    return index.locate_many(lon, lat)
