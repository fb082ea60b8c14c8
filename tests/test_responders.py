"""Fastest responders: one reverse search equals a plain Dijkstra from every responder."""

from __future__ import annotations

import heapq
import math

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from geoservice.crs import to_metric
from geoservice.network import Network, Snaps
from geoservice.responders import KIND_ORDER, Responders, fastest, ranking_key
from tests.test_network import _go, _oracle, _toy, toy_graphs


def _point(net: Network, edge: int, fraction: float) -> tuple[float, float]:
    """WGS84 position of a point at a length fraction of an edge (the toy's lines are
    straight)."""
    (x0, y0), (x1, y1) = np.asarray(net.lines[edge].coords)
    return x0 + (x1 - x0) * fraction, y0 + (y1 - y0) * fraction


def _arrival(net: Network, start: tuple[int, float], goal: tuple[int, float]) -> float:
    """Brute force: a plain Dijkstra from the responder's point, then the incident's point
    reached from either end of its edge or straight along the shared edge."""
    best = _oracle(net, [start], np.inf)
    e, f = goal
    times = [
        best[net.source[e]] + _go(f, net.forward_s[e]),
        best[net.target[e]] + _go(1 - f, net.backward_s[e]),
    ]
    se, sf = start
    if se == e:
        times.append(_go(f - sf, net.forward_s[e]) if f >= sf else _go(sf - f, net.backward_s[e]))
    return float(min(times))


def _lengths_oracle(net: Network, start: tuple[int, float], goal: tuple[int, float]) -> float:
    """Road metres of the fastest way, the shortest among equally fast ones (a Dijkstra
    on (time, metres) pairs)."""
    adjacency: dict[int, list[tuple[int, float, float]]] = {}
    for e in range(net.n_edges):
        u, v, length = int(net.source[e]), int(net.target[e]), float(net.length_m[e])
        if np.isfinite(net.forward_s[e]):
            adjacency.setdefault(u, []).append((v, float(net.forward_s[e]), length))
        if np.isfinite(net.backward_s[e]):
            adjacency.setdefault(v, []).append((u, float(net.backward_s[e]), length))
    se, sf = start
    length = float(net.length_m[se])
    heap = [
        (_go(1 - sf, net.forward_s[se]), (1 - sf) * length, int(net.target[se])),
        (_go(sf, net.backward_s[se]), sf * length, int(net.source[se])),
    ]
    heap = [h for h in heap if np.isfinite(h[0])]
    heapq.heapify(heap)
    best: dict[int, tuple[float, float]] = {}
    while heap:
        t, d, u = heapq.heappop(heap)
        if u in best:
            continue
        best[u] = (t, d)
        for v, c, m in adjacency.get(u, []):
            if v not in best:
                heapq.heappush(heap, (t + c, d + m, v))
    e, f = goal
    length = float(net.length_m[e])
    options = []
    for node, cost, part in (
        (int(net.source[e]), _go(f, net.forward_s[e]), f * length),
        (int(net.target[e]), _go(1 - f, net.backward_s[e]), (1 - f) * length),
    ):
        if node in best:
            options.append((best[node][0] + cost, best[node][1] + part))
    if se == e:
        cost = _go(f - sf, net.forward_s[e]) if f >= sf else _go(sf - f, net.backward_s[e])
        options.append((cost, abs(f - sf) * length))
    return min(options)[1]


def _responders(reverse: Network, places: list[tuple[int, float]]) -> Responders:
    """Responders placed exactly on the reversed network (edge and fraction given)."""
    n = len(places)
    snaps = Snaps(
        origin=np.arange(n),
        edge=np.array([e for e, _ in places], dtype=np.int64),
        fraction=np.array([1 - f for _, f in places]),  # the reversed line runs the other way
        lon=np.zeros(n),
        lat=np.zeros(n),
        distance_m=np.zeros(n),
    )
    codes = [f"R{i:02d}" for i in range(n)]
    return Responders([_kind(i) for i in range(n)], codes, codes, snaps)


def _kind(i: int) -> str:
    """Responder i's kind: the kinds in turn, so ties between kinds are drawn too."""
    return KIND_ORDER[i % len(KIND_ORDER)]


@settings(max_examples=300, deadline=None)
@given(
    toy_graphs(),
    st.lists(
        st.tuples(st.integers(0, 17), st.sampled_from([0.0, 0.2, 0.5, 0.9, 1.0])),
        min_size=1,
        max_size=6,
    ),
    st.integers(1, 4),
)
@example(  # two responders at one node: equal times reached by different float sums
    (
        7,
        [(0, 1)] * 3 + [(6, 0)] + [(0, 1)] * 6,
        [0.0] * 10,
        [math.inf] * 3 + [1.44140625] + [math.inf] * 6,
        [(3, 0.3)],
        1.0,
    ),
    [(0, 0.0), (13, 1.0)],
    1,
)
def test_responders_match_a_dijkstra_from_each_responder(case, placed, k) -> None:
    n, edges, forward, backward, origins, _ = case
    net = _toy(n, edges, forward, backward)
    reverse = net.reversed()
    places = [(e % net.n_edges, f) for e, f in placed]
    incident_edge, incident_fraction = origins[0]
    lon, lat = _point(net, incident_edge, incident_fraction)
    answer = fastest(reverse, _responders(reverse, places), lon, lat, k)
    snapped = reverse.snap_points([lon], [lat])
    goal = (int(snapped.edge[0]), 1 - float(snapped.fraction[0]))
    brute = sorted(
        (
            (t, f"R{i:02d}")
            for i, place in enumerate(places)
            if (t := _arrival(net, place, goal)) <= 3600.0
        ),
        key=lambda arrival: ranking_key(arrival[0], _kind(int(arrival[1][1:])), arrival[1]),
    )[:k]
    assert [r["code"] for r in answer] == [code for _, code in brute]
    # answers give times to 0.1 s; the search and the brute force add the same costs in other
    # orders, so a time on a half (0.15 s) may round either way: one step apart at most
    assert [r["eta_s"] for r in answer] == pytest.approx([t for t, _ in brute], abs=0.05 + 1e-9)
    if all(c > 0 for c in forward + [b for b in backward if np.isfinite(b)]):
        for r in answer:
            place = places[int(r["code"][1:])]
            assert r["distance_m"] == pytest.approx(round(_lengths_oracle(net, place, goal)), abs=1)
    # routes=true: the same answer, each with its road route, as long as its distance
    routed = fastest(reverse, _responders(reverse, places), lon, lat, k, routes=True)
    assert [{k: v for k, v in r.items() if k != "route"} for r in routed] == answer
    for r in routed:
        line = np.array(r["route"]["coordinates"])
        assert r["route"]["type"] == "LineString" and len(line) >= 2
        x, y = to_metric(line[:, 0], line[:, 1])
        assert np.hypot(np.diff(x), np.diff(y)).sum() == pytest.approx(r["distance_m"], abs=1.5)
        start = _point(net, *places[int(r["code"][1:])])  # the toy's snaps carry no lon/lat
        assert line[0] == pytest.approx(start, abs=5e-7)  # degrees vs metres: < 6 cm
        assert line[-1] == pytest.approx([snapped.lon[0], snapped.lat[0]], abs=2e-7)
