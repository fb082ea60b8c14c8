"""Blocks grouped into grids (``design``, step 3): a recursive floor-and-ceiling bisection
of each connected part, then edge blocks moved between neighbouring regions while that
brings one closer to the band. Blocks are indices: sizes, centres in metres, and which
share an edge."""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence

import numpy as np

from geoservice.grid_design.scope import Band


def group_blocks(
    sizes: np.ndarray, xy: np.ndarray, neighbours: Sequence[Sequence[int]], band: Band
) -> list[list[int]]:
    """Blocks (their sizes, centres in metres, and which share an edge) grouped into
    contiguous regions sized for the band (``design``, step 3): every block in
    exactly one region, each region connected through shared edges."""
    n = len(sizes)
    seen = np.zeros(n, dtype=bool)
    out: list[list[int]] = []
    for start in range(n):
        if seen[start]:
            continue
        component = _connected([start], neighbours, None)
        seen[component] = True
        regions = _bisect(component, sizes, xy, neighbours, band, depth=0)
        out.extend(_rebalanced(regions, sizes, neighbours, band))
    return out


def _miss(size: int, band: Band) -> int:
    """How far ``size`` lies outside the band."""
    return max(band.low - size, 0) + max(size - band.high, 0)


def _rebalanced(
    regions: list[list[int]], sizes: np.ndarray, neighbours: Sequence[Sequence[int]], band: Band
) -> list[list[int]]:
    """``regions`` with blocks on their edges moved to a neighbouring region while that
    brings a region outside the band closer to it and leaves no other outside (each move
    lowers the total miss; both regions stay contiguous)."""
    if len(regions) < 2:
        return regions
    label = {i: r for r, members in enumerate(regions) for i in members}
    members = [set(m) for m in regions]
    totals = [int(sizes[m].sum()) for m in regions]
    for _ in range(200):  # moves; each lowers the total miss, so this ends
        moved = False
        for r in sorted(range(len(members)), key=lambda k: -_miss(totals[k], band)):
            if _miss(totals[r], band) == 0:
                break
            move = _best_move(r, members, totals, label, sizes, neighbours, band)
            if move is None:
                continue
            block, source, target = move
            members[source].discard(block)
            members[target].add(block)
            totals[source] -= int(sizes[block])
            totals[target] += int(sizes[block])
            label[block] = target
            moved = True
            break
        if not moved:
            break
    return [sorted(m) for m in members if m]


def _best_move(
    r: int,
    members: list[set[int]],
    totals: list[int],
    label: dict[int, int],
    sizes: np.ndarray,
    neighbours: Sequence[Sequence[int]],
    band: Band,
) -> tuple[int, int, int] | None:
    """The move of one edge block into or out of region ``r`` that lowers the two
    regions' miss most, or None."""
    best: tuple[int, int, int, int] | None = None
    over = totals[r] > band.high
    for i in members[r] if over else {j for k in members[r] for j in neighbours[k]}:
        source = label[i]
        if source != r and over:
            continue
        if source == r and not over:
            continue
        targets = {label[j] for j in neighbours[i]} - {source}
        if over:
            candidates = [(i, source, t) for t in targets]
        else:
            candidates = [(i, source, r)] if r in targets else []
        for block, a, b in candidates:
            if len(members[a]) == 1:
                continue
            size = int(sizes[block])
            before = _miss(totals[a], band) + _miss(totals[b], band)
            after = _miss(totals[a] - size, band) + _miss(totals[b] + size, band)
            if after >= before:
                continue
            rest = members[a] - {block}
            if len(_connected([min(rest)], neighbours, rest)) != len(rest):
                continue
            if best is None or after - before < best[0]:
                best = (after - before, block, a, b)
    return None if best is None else best[1:]


def _connected(
    starts: Sequence[int], neighbours: Sequence[Sequence[int]], within: set[int] | None
) -> list[int]:
    found = set(starts)
    todo = list(starts)
    while todo:
        i = todo.pop()
        for j in neighbours[i]:
            if j not in found and (within is None or j in within):
                found.add(j)
                todo.append(j)
    return sorted(found)


def regions_for(total: int, band: Band) -> int:
    """How many grids a contiguous area of ``total`` should become: the count nearest
    ``total`` over the band's middle among those the floor and the ceiling allow (when no
    count fits both, the one that misses the band by the smaller share)."""
    if total <= band.high:
        return 1
    fewest, most = math.ceil(total / band.high), max(1, total // band.low)
    if fewest <= most:
        return min(max(round(2 * total / (band.low + band.high)), fewest), most)

    def miss(p: int) -> float:
        each = total / p
        return max(each - band.high, 0) / band.high + max(band.low - each, 0) / band.low

    return min((most, fewest), key=miss)


def _bisect(
    members: list[int],
    sizes: np.ndarray,
    xy: np.ndarray,
    neighbours: Sequence[Sequence[int]],
    band: Band,
    depth: int,
) -> list[list[int]]:
    """``members`` (connected) as ``regions_for`` regions: a sweep along the longer axis
    takes the share of the first half of them, then each side is bisected again."""
    total = int(sizes[members].sum())
    p = regions_for(total, band)
    if p == 1 or len(members) == 1 or depth > 64:
        return [members]
    inside = set(members)
    span = xy[members].max(axis=0) - xy[members].min(axis=0)
    axis = int(np.argmax(span))
    target = total * (p // 2) / p
    seed = min(members, key=lambda i: (xy[i, axis], i))
    heap = [(xy[seed, axis], seed)]
    queued = {seed}
    taken: list[int] = []
    held = 0
    while heap:
        _, i = heapq.heappop(heap)
        if taken and held + sizes[i] > target:
            if held + sizes[i] - target < target - held:
                taken.append(i)
                held += int(sizes[i])
            break
        taken.append(i)
        held += int(sizes[i])
        for j in neighbours[i]:
            if j in inside and j not in queued:
                queued.add(j)
                heapq.heappush(heap, (xy[j, axis], j))
    rest = inside - set(taken)
    if not rest:
        return [members]
    # The sweep may cut pieces off: all but the largest join the taken side.
    pieces = []
    left = set(rest)
    while left:
        piece = _connected([min(left)], neighbours, left)
        left -= set(piece)
        pieces.append(piece)
    pieces.sort(key=lambda c: (-int(sizes[c].sum()), -len(c), c[0]))
    first = sorted(set(taken).union(*pieces[1:]))
    second = pieces[0]
    return _bisect(first, sizes, xy, neighbours, band, depth + 1) + _bisect(
        second, sizes, xy, neighbours, band, depth + 1
    )
