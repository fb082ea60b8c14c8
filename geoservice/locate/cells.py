"""The cell table of a locate index: what each small square of the grids' bounding box
answers.

The box is cut into square cells of ``CELL_DEG`` (about 28 m). A cell whose box (slightly
enlarged) lies in the interior of one grid answers that grid; a cell that touches no grid
answers outside; a cell on a grid boundary lists the few grids its points are tested
against exactly. The table is built by a quadtree descent that tests blocks of cells
against an STRtree of the grids, so only blocks near boundaries are split.

It is kept in two levels: a coarse table of tiles of ``TILE`` × ``TILE`` cells (about
220 m) in front of the tiles themselves. A tile whose cells all answer alike (the sea, the
land beyond the grids, a large grid's interior) is that one value in the coarse table and
holds no cells; only the others are stored, so the table's size follows the grids'
boundaries, not their bounding box (a province's box is mostly neighbours and sea).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely
from numpy.typing import NDArray

CELL_DEG = 0.00025
"""Cell size of the lookup table, in degrees (about 28 m by 26 m at 23°N)."""
CELL_MARGIN_DEG = 1e-9
"""Cells are classified with boxes enlarged by this, so rounding in the cell arithmetic
can never hand a point to a neighbouring cell that would answer differently."""
FILL_CHUNK = 1 << 22
"""Cells set at once while building the table."""
BLOCK_CHUNK = 1 << 18
"""Blocks classified at once while building the table."""

OUTSIDE_CELL = -2
"""The value of a cell no grid touches; a grid's cell holds its index (0 and up), boundary
cell ``k`` holds ``-3 - k``."""
TILE_SHIFT = 3
TILE = 1 << TILE_SHIFT
"""Cells per side of a tile (8: about 220 m). On the demo the stored tiles and the coarse
table take a quarter of the dense table (5.2 of 21 MB); tiles of 4 or 16 cells take more."""
TILE_MASK = TILE - 1
STORED_TILE = 1 << 30
"""A coarse value ``STORED_TILE + t * TILE²`` refers to stored tile ``t`` (whose first cell
is ``t * TILE²`` into the flat tiles); a smaller one is the value of every cell of its tile
(no cell value comes near it). All in int32: at most ``MAX_STORED_TILES``."""
MAX_STORED_TILES = (np.iinfo(np.int32).max - STORED_TILE) // (TILE * TILE)
"""16.7 million tiles (1.1 billion cells, 4.3 GB): eight times what Guangdong needs."""


def _joined(parts: list[NDArray]) -> NDArray[np.int64]:
    """The parts one after another (an empty int64 array for none)."""
    return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, dtype=np.int64)


@dataclass(frozen=True)
class CellTable:
    """Cell ``(cx, cy)``, ``0 <= cx < nx`` and ``0 <= cy < ny``, covers ``x0 + cx * CELL_DEG``
    … ``+ CELL_DEG`` of longitude (and the same in latitude from ``y0``). Its value is
    ``coarse[cy >> TILE_SHIFT, cx >> TILE_SHIFT]``, unless that is ``STORED_TILE + t * TILE²``:
    then ``tiles[t, cy & TILE_MASK, cx & TILE_MASK]``. Boundary cell ``k``'s grids are
    ``candidates[starts[k]:starts[k + 1]]``, in code (= index) order."""

    x0: float
    y0: float
    nx: int
    ny: int
    coarse: NDArray[np.int32]  # (ny / TILE, nx / TILE), rounded up
    tiles: NDArray[np.int32]  # (stored tiles, TILE, TILE)
    candidates: NDArray[np.int32]
    starts: NDArray[np.int32]
    boundary_cell_share: float
    """Boundary cells among the cells some grid touches."""
    _ntx: int = field(init=False, repr=False, compare=False)
    _coarse: memoryview = field(init=False, repr=False, compare=False)
    _tiles: memoryview = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        """Flat views of the two levels: a single lookup reads a ``memoryview`` (a plain
        ``int`` back, faster than indexing an array) and a batch takes from
        one-dimensional arrays."""
        object.__setattr__(self, "_ntx", int(self.coarse.shape[1]))
        object.__setattr__(self, "_coarse", self.coarse.reshape(-1).data)
        object.__setattr__(self, "_tiles", self.tiles.reshape(-1).data)

    @property
    def memory_bytes(self) -> int:
        """Bytes held by the table's arrays."""
        arrays = (self.coarse, self.tiles, self.candidates, self.starts)
        return int(sum(a.nbytes for a in arrays))

    def value(self, cx: int, cy: int) -> int:
        """The value of cell ``(cx, cy)`` (inside the table): a grid's index (0 and up),
        ``OUTSIDE_CELL``, or ``-3 - k`` for boundary cell ``k``."""
        value: int = self._coarse[(cy >> TILE_SHIFT) * self._ntx + (cx >> TILE_SHIFT)]
        if value >= STORED_TILE:
            value = self._tiles[
                value - STORED_TILE | (cy & TILE_MASK) << TILE_SHIFT | cx & TILE_MASK
            ]
        return value

    def values(self, cx: NDArray[np.int32], cy: NDArray[np.int32]) -> NDArray[np.int32]:
        """``value`` of many cells (inside the table) at once (all in int32: half the
        memory traffic of int64, which is what a batch spends its time on)."""
        at = (cy >> TILE_SHIFT) * np.int32(self._ntx) + (cx >> TILE_SHIFT)
        value = np.take(self.coarse.reshape(-1), at)
        stored = np.flatnonzero(value >= STORED_TILE)
        inner = (np.take(cy, stored) & TILE_MASK) << TILE_SHIFT | np.take(cx, stored) & TILE_MASK
        value[stored] = np.take(
            self.tiles.reshape(-1), np.take(value, stored) - STORED_TILE | inner
        )
        return value

    def to_arrays(self) -> tuple[dict[str, NDArray], dict[str, Any]]:
        """The table as named arrays and metadata (``from_arrays`` reads them back)."""
        arrays: dict[str, NDArray] = {
            "coarse": self.coarse,
            "tiles": self.tiles,
            "cand": self.candidates,
            "cand_start": self.starts,
        }
        meta = {"x0": self.x0, "y0": self.y0, "nx": self.nx, "ny": self.ny}
        return arrays, {**meta, "boundary_cell_share": self.boundary_cell_share}

    @classmethod
    def from_arrays(cls, arrays: dict[str, NDArray], meta: dict[str, Any]) -> CellTable:
        """The table ``to_arrays`` gave (arrays used as they are, mapped or not)."""
        return cls(
            float(meta["x0"]),
            float(meta["y0"]),
            int(meta["nx"]),
            int(meta["ny"]),
            arrays["coarse"],
            arrays["tiles"],
            arrays["cand"],
            arrays["cand_start"],
            float(meta["boundary_cell_share"]),
        )

    @classmethod
    def build(cls, polygons: NDArray[np.object_]) -> CellTable:
        """The table of ``polygons`` (WGS84, prepared, in code order)."""
        tree = shapely.STRtree(polygons)
        minx, miny, maxx, maxy = shapely.total_bounds(polygons)
        x0, y0 = minx - CELL_DEG, miny - CELL_DEG
        nx = math.ceil((maxx - x0) / CELL_DEG) + 2
        ny = math.ceil((maxy - y0) / CELL_DEG) + 2
        cells = np.full((ny, nx), OUTSIDE_CELL, dtype=np.int32)
        flat_cells = np.array([], dtype=np.int64)
        candidates = starts = np.zeros(0, dtype=np.int32)

        size = 1 << max(0, math.ceil(math.log2(max(nx, ny))) - 4)
        ix, iy = np.meshgrid(np.arange(0, nx, size), np.arange(0, ny, size))
        blocks = np.column_stack([ix.ravel(), iy.ravel()])
        while len(blocks):
            children, flat_parts, cand_parts, count_parts = [], [], [], []
            for k in range(0, len(blocks), BLOCK_CHUNK):  # bounded scratch on large tables
                part = blocks[k : k + BLOCK_CHUNK]
                boxes = shapely.box(
                    x0 + part[:, 0] * CELL_DEG - CELL_MARGIN_DEG,
                    y0 + part[:, 1] * CELL_DEG - CELL_MARGIN_DEG,
                    x0 + (part[:, 0] + size) * CELL_DEG + CELL_MARGIN_DEG,
                    y0 + (part[:, 1] + size) * CELL_DEG + CELL_MARGIN_DEG,
                )
                box_i, grid_i = tree.query(boxes, predicate="intersects")
                hits = np.bincount(box_i, minlength=len(part))
                first = np.full(len(part), -1)
                first[box_i[::-1]] = grid_i[::-1]
                inside = np.zeros(len(part), dtype=bool)
                single = np.flatnonzero(hits == 1)
                inside[single] = shapely.contains_properly(polygons[first[single]], boxes[single])
                _fill(cells, part[inside], first[inside], size)
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
                    flat_parts.append(part[ambiguous, 1] * nx + part[ambiguous, 0])
                else:
                    half = size // 2
                    children += [
                        part[ambiguous] + np.array([dx, dy]) * half
                        for dx in (0, 1)
                        for dy in (0, 1)
                    ]
            if size == 1:
                candidates = _joined(cand_parts).astype(np.int32)
                starts = np.concatenate([[0], np.cumsum(_joined(count_parts))]).astype(np.int32)
                flat_cells = _joined(flat_parts)
                break
            size //= 2
            blocks = _joined(children).reshape(-1, 2)
            blocks = blocks[(blocks[:, 0] < nx) & (blocks[:, 1] < ny)]

        cells.ravel()[flat_cells] = -3 - np.arange(len(flat_cells))
        share = len(flat_cells) / max(1, int((cells != OUTSIDE_CELL).sum()))
        coarse, tiles = _tiled(cells)
        return cls(x0, y0, nx, ny, coarse, tiles, candidates, starts, share)


def _tiled(cells: NDArray[np.int32]) -> tuple[NDArray[np.int32], NDArray[np.int32]]:
    """``cells`` as a coarse table and its stored tiles (see ``CellTable``), a band of tile
    rows at a time. The tiles over the table's far edges are filled out with their edge
    cells' values (those cells are never read), so that they are alike when their cells are."""
    ny, nx = cells.shape
    nty, ntx = -(-ny // TILE), -(-nx // TILE)
    coarse = np.empty((nty, ntx), dtype=np.int32)
    stored: list[NDArray[np.int32]] = []
    count = 0
    band = np.empty((TILE, ntx * TILE), dtype=np.int32)
    for ty in range(nty):
        rows = cells[ty * TILE : (ty + 1) * TILE]
        band[: len(rows), :nx] = rows
        band[len(rows) :, :nx] = rows[-1]
        band[:, nx:] = band[:, nx - 1 : nx]
        blocks = band.reshape(TILE, ntx, TILE).transpose(1, 0, 2).reshape(ntx, TILE * TILE)
        first = blocks[:, 0]
        alike = (blocks == first[:, None]).all(axis=1)
        mixed = np.flatnonzero(~alike)
        coarse[ty] = first
        count += len(mixed)
        if count > MAX_STORED_TILES:
            msg = f"the cell table needs over {MAX_STORED_TILES:,} tiles; split the dataset"
            raise ValueError(msg)
        coarse[ty, mixed] = STORED_TILE + (count - len(mixed) + np.arange(len(mixed))) * TILE**2
        stored.append(blocks[mixed].reshape(-1, TILE, TILE))
    tiles = np.concatenate(stored) if stored else np.zeros((0, TILE, TILE), dtype=np.int32)
    return coarse, tiles


def _fill(cells: NDArray, blocks: NDArray, grids: NDArray, size: int) -> None:
    """Set every cell of each (size x size) block to its grid, clipped to the table
    (in chunks of about ``FILL_CHUNK`` cells, so large tables need no large scratch)."""
    ny, nx = cells.shape
    dx, dy = np.meshgrid(np.arange(size), np.arange(size))
    step = max(1, FILL_CHUNK // (size * size))
    for k in range(0, len(blocks), step):
        part = blocks[k : k + step]
        x = (part[:, :1] + dx.ravel()).ravel()
        y = (part[:, 1:] + dy.ravel()).ravel()
        value = np.repeat(grids[k : k + step], size * size)
        ok = (x < nx) & (y < ny)
        cells[y[ok], x[ok]] = value[ok]
