"""What a search reached: arrival times at nodes, the fastest paths, and exact partial
edges.

A point at fraction ``x`` of edge ``u -> v`` is reached at
``min(t_u + x * forward, t_v + (1 - x) * backward)`` (and from an origin on the edge
itself), so the part reached within ``T`` ends exactly where the time runs out.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from geoservice.errors import InvalidInput
from geoservice.network.geometry import substring
from geoservice.network.snapping import Snaps

if TYPE_CHECKING:
    from geoservice.network.graph import Network

Array = NDArray[np.float64]


@dataclass(frozen=True)
class Pieces:
    """Reached parts of edges: edge ``edge`` from fraction ``start`` to ``end``."""

    edge: NDArray[np.int64]
    start: Array
    end: Array


@dataclass(frozen=True)
class Reach:
    """One search's answer: the times of the nodes searched (``inf`` beyond the limit) and
    which origin reached each first. ``nodes`` are the (sorted) nodes searched — all of
    them, or those a local search looked at; ``edges`` the edges touching them (None: all)."""

    network: Network
    snaps: Snaps
    limit_s: float
    nodes: NDArray[np.int64]
    time: Array
    origin: NDArray[np.int64]
    edges: NDArray[np.int64] | None = None
    predecessor: NDArray[np.int32] | None = None
    """Per searched node, the one before it on its fastest path (positions in ``nodes``;
    ``len(nodes) + i`` for origin ``i``, negative for none)."""

    def path_nodes(self, node: int) -> tuple[list[int], int] | None:
        """The fastest path to (global) ``node``, from ``node`` back to the first node the
        origin reached, and that origin; None when ``node`` was not reached."""
        nodes, before = self.nodes, self.predecessor
        if before is None:
            msg = "this search kept no predecessors"
            raise ValueError(msg)
        m = len(nodes)
        here = int(np.searchsorted(nodes, node))
        if here >= m or nodes[here] != node or not np.isfinite(self.time[here]):
            return None
        path = [int(nodes[here])]
        while 0 <= (back := int(before[here])) < m:
            path.append(int(nodes[back]))
            here = back
        return path, back - m

    def first_step(self, origin: int, end: int) -> tuple[int, float, float] | None:
        """How ``origin`` reached node ``end`` first: the snapped row (of those on an edge
        ending there, the quickest), the share of its edge travelled and its metres."""
        net, s = self.network, self.snaps
        steps = []
        for i in np.flatnonzero(s.origin == origin).tolist():
            e = int(s.edge[i])
            for share, cost, reached in (
                (1.0 - s.fraction[i], net.forward_s[e], net.target[e]),
                (s.fraction[i], net.backward_s[e], net.source[e]),
            ):
                if reached == end:
                    seconds = float(travel_s(share, cost))
                    steps.append((seconds, float(share * net.length_m[e]), i, float(share)))
        if not steps:
            return None
        _, metres, row, share = min(steps)
        return row, share, metres

    def path_length_m(self, node: int) -> float:
        """Metres along the fastest path from the nearest origin to (global) ``node``."""
        found = self.path_nodes(node)
        if found is None:
            return float("inf")
        path, origin = found
        net = self.network
        total = sum(net.arc_length_m(tail, head) for head, tail in itertools.pairwise(path))
        # the first step: from the origin's point along its own edge to this end
        step = self.first_step(origin, path[-1])
        return total + step[2] if step is not None else total

    def times_of(self, node: NDArray[np.int64]) -> Array:
        """Arrival times at (global) nodes; ``inf`` for nodes not reached or not searched."""
        if self.edges is None:
            return self.time[node]
        position = np.minimum(np.searchsorted(self.nodes, node), len(self.nodes) - 1)
        return np.where(self.nodes[position] == node, self.time[position], np.inf)

    @property
    def node_time(self) -> Array:
        """Arrival time at every node of the network (``inf`` where not reached)."""
        if self.edges is None:
            return self.time
        full = np.full(self.network.n_nodes, np.inf)
        full[self.nodes] = self.time
        return full

    @property
    def node_origin(self) -> NDArray[np.int64]:
        """Which origin reached every node first (-1 where none did)."""
        if self.edges is None:
            return self.origin
        full = np.full(self.network.n_nodes, -1, dtype=np.int64)
        full[self.nodes] = self.origin
        return full

    @cached_property
    def _reached_ends(self) -> tuple[NDArray[np.int64], Array, Array]:
        """The edges with a reached end and the arrival times at their source and target,
        found once for every band cut from this search."""
        net = self.network
        edges = np.arange(net.n_edges) if self.edges is None else self.edges
        t_u, t_v = self.times_of(net.source[edges]), self.times_of(net.target[edges])
        some = np.isfinite(t_u) | np.isfinite(t_v)
        return edges[some], t_u[some], t_v[some]

    def pieces(self, seconds: float) -> Pieces:
        """The exact parts of edges reachable within ``seconds`` (at most the search limit),
        at most two per edge, sorted by edge."""
        if seconds > self.limit_s * (1 + 1e-12):
            msg = f"{seconds} s is beyond this search's limit of {self.limit_s} s"
            raise InvalidInput(msg)
        net = self.network
        edges, t_u, t_v = self._reached_ends
        from_u = _share(seconds - t_u, net.forward_s[edges])
        from_v = _share(seconds - t_v, net.backward_s[edges])
        whole = from_u + from_v >= 1.0
        head = ~whole & (from_u > 0)
        tail = ~whole & (from_v > 0)
        edge = np.concatenate([edges[whole], edges[head], edges[tail]])
        start = np.concatenate([np.zeros(whole.sum() + head.sum()), 1.0 - from_v[tail]])
        end = np.concatenate([np.ones(whole.sum()), from_u[head], np.ones(tail.sum())])
        # origins split their own edges: merge those few edges' intervals one by one
        s = self.snaps
        with np.errstate(divide="ignore"):
            ahead = seconds / net.forward_s[s.edge]
            behind = seconds / net.backward_s[s.edge]
        mine = np.isin(edge, s.edge)
        merged = _merge(
            np.concatenate([edge[mine], s.edge, s.edge]),
            np.concatenate([start[mine], s.fraction, np.maximum(0.0, s.fraction - behind)]),
            np.concatenate([end[mine], np.minimum(1.0, s.fraction + ahead), s.fraction]),
        )
        edge = np.concatenate([edge[~mine], merged.edge])
        start = np.concatenate([start[~mine], merged.start])
        end = np.concatenate([end[~mine], merged.end])
        order = np.lexsort((start, edge))
        return Pieces(edge[order], start[order], end[order])

    def time_at(self, edge: NDArray[np.int64], fraction: Array) -> Array:
        """Earliest arrival at points on edges (``inf`` if not within the limit)."""
        net = self.network
        edge, fraction = np.asarray(edge), np.asarray(fraction, dtype=float)
        best = np.minimum(
            self.times_of(net.source[edge]) + travel_s(fraction, net.forward_s[edge]),
            self.times_of(net.target[edge]) + travel_s(1.0 - fraction, net.backward_s[edge]),
        )
        # points on an origin's own edge: pair each with every origin snapped to that edge
        s = self.snaps
        by_edge = np.argsort(s.edge, kind="stable")
        snap_edge, snap_fraction = s.edge[by_edge], s.fraction[by_edge]
        lo = np.searchsorted(snap_edge, edge, side="left")
        hi = np.searchsorted(snap_edge, edge, side="right")
        point = np.repeat(np.arange(len(edge)), hi - lo)
        pair = np.repeat(lo, hi - lo) + (
            np.arange(len(point)) - np.repeat(np.cumsum(hi - lo) - (hi - lo), hi - lo)
        )
        x, f, e = fraction[point], snap_fraction[pair], edge[point]
        along = np.where(
            x >= f, travel_s(x - f, net.forward_s[e]), travel_s(f - x, net.backward_s[e])
        )
        np.minimum.at(best, point, along)
        return np.where(best <= self.limit_s, best, np.inf)

    def lines(self, seconds: float) -> NDArray[np.object_]:
        """Reached parts as LineStrings in the metric CRS (EPSG:4547)."""
        return cut_lines(self.network, self.pieces(seconds), metric=True)

    def reached_edges(self, seconds: float) -> pd.DataFrame:
        """The exact answer for planners: one row per reached part, WGS84 geometry."""
        pieces = self.pieces(seconds)
        net = self.network
        parts = cut_lines(net, pieces)
        return pd.DataFrame(
            {
                "edge_id": net.edge_ids[pieces.edge],
                "name": net.names[pieces.edge],
                "start_fraction": pieces.start,
                "end_fraction": pieces.end,
                "length_m": net.length_m[pieces.edge] * (pieces.end - pieces.start),
                "geometry": parts,
            }
        )


def travel_s(share: Array | float, cost_s: Array | float) -> Array:
    """Seconds to cover ``share`` of an edge (0 for no distance, even where forbidden)."""
    with np.errstate(invalid="ignore"):
        return np.where(np.asarray(share) <= 0, 0.0, np.multiply(share, cost_s))


def _share(spare_s: Array, cost_s: Array) -> Array:
    """Fraction of an edge covered with ``spare_s`` seconds left at its start (0 if none)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.clip(spare_s / cost_s, 0.0, 1.0)
    return np.where(spare_s >= 0, np.nan_to_num(share, nan=1.0), 0.0)


def _merge(edge: NDArray[np.int64], start: Array, end: Array) -> Pieces:
    """Union of intervals per edge; empty ones dropped."""
    keep = end > start
    edge, start, end = edge[keep], start[keep], end[keep]
    order = np.lexsort((start, edge))
    edge, start, end = edge[order], start[order], end[order]
    out_e: list[int] = []
    out_s: list[float] = []
    out_t: list[float] = []
    for e, s, t in zip(edge.tolist(), start.tolist(), end.tolist(), strict=True):
        if out_e and out_e[-1] == e and s <= out_t[-1]:
            out_t[-1] = max(out_t[-1], t)
        else:
            out_e.append(e)
            out_s.append(s)
            out_t.append(t)
    return Pieces(np.array(out_e, dtype=np.int64), np.array(out_s), np.array(out_t))


def cut_lines(network: Network, pieces: Pieces, *, metric: bool = False) -> NDArray[np.object_]:
    """The part of each piece's edge between its fractions (whole lines where [0, 1]), as
    LineStrings built from the network's coordinates: WGS84, or EPSG:4547 with ``metric``."""
    out = network.edge_lines(pieces.edge, metric=metric)
    partial = np.flatnonzero((pieces.start > 0) | (pieces.end < 1))
    for i in partial.tolist():
        out[i] = substring(out[i], pieces.start[i], pieces.end[i])
    return out
