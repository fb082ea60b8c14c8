"""One multi-source time-limited search: one virtual node per origin, joined to the ends of
its snapped edges, and one ``scipy.sparse.csgraph.dijkstra(min_only=True, limit=...)`` over
all of them, which also says which origin reaches each node first.

On large networks the search is output-sensitive: nothing can be reached farther from an
origin than the network's top speed allows, so it runs on the nodes within that distance
(found through square buckets of ``BUCKET_M``) and the edges touching them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from geoservice.errors import InvalidInput
from geoservice.network.csr import min_csr, subgraph
from geoservice.network.reached import Reach, travel_s
from geoservice.network.snapping import Snaps

if TYPE_CHECKING:
    from geoservice.network.graph import Network

LOCAL_SHARE = 0.4
"""A search that could reach more than this share of the nodes runs on the whole graph."""
LOCAL_MIN_NODES = 200_000
"""From this many nodes up, searches run locally (see ``reach``)."""
BUCKET_M = 1_000.0
"""Side of the square buckets that index the nodes by position."""
ORIGIN_OFFSET_S = 1.0
"""Added to every edge leaving a virtual origin node and subtracted afterwards, so a
zero-length first step is never a zero weight."""

Array = NDArray[np.float64]


def reach(network: Network, snaps: Snaps, limit_s: float, *, local: bool | None = None) -> Reach:
    """Earliest arrival at every node of ``network`` within ``limit_s`` from the nearest
    origin.

    Output-sensitive on large networks: nothing can be reached farther from an origin
    than the network's top speed allows in ``limit_s``, so the search runs on the nodes
    within that distance and the edges touching them — unless they are most of the
    network (long or many-origin searches). ``local`` forces the choice (None: local
    from ``LOCAL_MIN_NODES`` nodes up, where whole-graph arrays start to cost more than
    the search)."""
    if not limit_s > 0:
        msg = f"time limit {limit_s!r} s must be > 0"
        raise InvalidInput(msg)
    if local is None:
        local = network.n_nodes >= LOCAL_MIN_NODES
    nodes = _nodes_within(network, snaps, limit_s) if local else None
    if nodes is None:
        nodes, graph = np.arange(network.n_nodes), network.matrix
    else:
        graph = subgraph(network.matrix, nodes)
    m, k = len(nodes), snaps.n_origins
    origin, end, weight = origin_arcs(network, snaps)
    virtual = min_csr(m + origin, np.searchsorted(nodes, end), weight, m + k)
    full = csr_matrix(
        (
            np.concatenate([graph.data, virtual.data]),
            np.concatenate([graph.indices, virtual.indices]),
            np.concatenate([graph.indptr, virtual.indptr[m + 1 :] + graph.nnz]),
        ),
        shape=(m + k, m + k),
    )
    dist, predecessor, sources = dijkstra(
        full,
        directed=True,
        indices=np.arange(m, m + k),
        limit=limit_s + ORIGIN_OFFSET_S,
        min_only=True,
        return_predecessors=True,
    )
    time = dist[:m] - ORIGIN_OFFSET_S
    origin = np.where(np.isfinite(time), sources[:m] - m, -1).astype(np.int64)
    edges = None if m == network.n_nodes else _edges_touching(network, nodes)
    return Reach(network, snaps, limit_s, nodes, time, origin, edges, predecessor[:m])


def origin_arcs(
    network: Network, snaps: Snaps
) -> tuple[NDArray[np.int64], NDArray[np.int64], Array]:
    """The arcs from the virtual origin nodes: each snapped row's origin, the end of its
    edge it reaches and the seconds to it plus ``ORIGIN_OFFSET_S``."""
    e = snaps.edge
    origins, ends_reached, weights = [], [], []
    for ends, cost, share in (
        (network.target, network.forward_s, 1.0 - snaps.fraction),
        (network.source, network.backward_s, snaps.fraction),
    ):
        ok = np.isfinite(cost[e]) | (share <= 0)  # standing on an end reaches it
        origins.append(snaps.origin[ok])
        ends_reached.append(ends[e[ok]])
        weights.append(ORIGIN_OFFSET_S + travel_s(share[ok], cost[e[ok]]))
    return np.concatenate(origins), np.concatenate(ends_reached), np.concatenate(weights)


def first_origins(found: Reach) -> NDArray[np.int64]:
    """Which origin reached each searched node first, ties going to the lowest origin
    number: of the origins whose fastest path reaches a node at its earliest time (to the
    last bit), the first in the origins' order (-1 where none did).

    ``dijkstra(min_only=True)`` names one of them, whichever its heap scanned first, which
    depends on every other origin searched; this rule does not, so a search from a subset
    of the origins that keeps their order and every origin that could reach a node within
    the limit names the same origin there."""
    network, nodes = found.network, found.nodes
    m = len(nodes)
    # exact: dist >= 1 and ORIGIN_OFFSET_S is a multiple of its last bit below 2**53
    dist = found.time + ORIGIN_OFFSET_S
    graph = network.matrix if found.edges is None else subgraph(network.matrix, nodes)
    tail = np.repeat(np.arange(m), np.diff(graph.indptr))
    head = graph.indices
    with np.errstate(invalid="ignore"):
        tight = np.isfinite(dist[tail]) & (dist[tail] + graph.data == dist[head])
    tail, head = tail[tight], head[tight]
    origin, end, weight = origin_arcs(network, found.snaps)
    at = np.minimum(np.searchsorted(nodes, end), m - 1)
    direct = (nodes[at] == end) & (weight == dist[at])
    label = found.origin.copy()
    np.minimum.at(label, at[direct], origin[direct])
    while True:  # the lowest label along equally fast arcs (one pass without ties)
        spread = label.copy()
        np.minimum.at(spread, head, label[tail])
        if np.array_equal(spread, label):
            return label
        label = spread


@dataclass(frozen=True)
class NodeBuckets:
    """The nodes with a position (every node an edge touches) sorted by square bucket of
    ``BUCKET_M``: the grid's origin ``lo``, the bucket of each sorted node, the nodes, the
    grid's shape."""

    lo: Array
    keys: NDArray[np.int64]
    placed: NDArray[np.int64]
    shape: tuple[int, int]

    @classmethod
    def of(cls, node_xy_metric: Array) -> NodeBuckets:
        xy = node_xy_metric
        placed = np.flatnonzero(np.isfinite(xy).all(axis=1))
        lo = xy[placed].min(axis=0) if len(placed) else np.zeros(2)
        cell = np.floor((xy[placed] - lo) / BUCKET_M).astype(np.int64)
        shape = (int(cell[:, 0].max(initial=0)) + 1, int(cell[:, 1].max(initial=0)) + 1)
        key = cell[:, 1] * shape[0] + cell[:, 0]
        order = np.argsort(key, kind="stable")
        return cls(lo, key[order], placed[order], shape)


def incident_edges(
    source: NDArray[np.int64], target: NDArray[np.int64], n_nodes: int
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Each node's edges (either end), as CSR: ``edges[start[i]:start[i + 1]]``."""
    ends = np.concatenate([source, target])
    edge = np.concatenate([np.arange(len(source))] * 2)
    order = np.argsort(ends, kind="stable")
    start = np.searchsorted(ends[order], np.arange(n_nodes + 1))
    return start, edge[order]


def _nodes_within(network: Network, snaps: Snaps, limit_s: float) -> NDArray[np.int64] | None:
    """The nodes an origin could reach at top speed (sorted), or None when that is
    more than ``LOCAL_SHARE`` of the network."""
    radius = network.top_speed_mps * limit_s + 1.0
    if len(snaps.edge) == 0 or not np.isfinite(radius):
        return None
    centres = network.points_along_edges(snaps.edge, snaps.fraction)
    buckets = network.node_buckets
    lo, keys, placed, (nx, ny) = buckets.lo, buckets.keys, buckets.placed, buckets.shape
    # the buckets meeting the box around the centres, grown by the radius: a superset of
    # the ball, so nothing reachable is left out
    (x0, y0), (x1, y1) = (
        np.floor((centres.min(axis=0) - radius - lo) / BUCKET_M).astype(int),
        np.floor((centres.max(axis=0) + radius - lo) / BUCKET_M).astype(int),
    )
    bx = np.arange(max(x0, 0), min(x1, nx - 1) + 1)
    by = np.arange(max(y0, 0), min(y1, ny - 1) + 1)
    if len(bx) * len(by) > LOCAL_SHARE * nx * ny:
        return None
    wanted = (by[:, None] * nx + bx[None, :]).ravel()
    first = np.searchsorted(keys, wanted, side="left")
    count = np.searchsorted(keys, wanted, side="right") - first
    position = np.repeat(first, count) + (
        np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
    )
    nodes = np.unique(
        np.concatenate([placed[position], network.source[snaps.edge], network.target[snaps.edge]])
    )
    return None if len(nodes) > LOCAL_SHARE * network.n_nodes else nodes


def _edges_touching(network: Network, nodes: NDArray[np.int64]) -> NDArray[np.int64]:
    start, edges = network.incident_edges
    count = start[nodes + 1] - start[nodes]
    position = np.repeat(start[nodes], count) + (
        np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
    )
    return np.unique(edges[position])
