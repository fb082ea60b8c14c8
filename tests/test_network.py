"""The road graph and its search: against pgRouting, a plain Dijkstra, and the scipy traps."""

from __future__ import annotations

import heapq
import math

import numpy as np
import pytest
import shapely
import sqlalchemy as sa
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from geoservice.crs import from_metric, to_metric
from geoservice.db import create_engine
from geoservice.network import Network, NoRoadNearby, Snaps, load_network

ORIGINS = [(114.41, 23.11), (114.385, 23.125), (114.35, 23.05), (114.52, 23.02)]


def _snaps(edges, fractions) -> Snaps:
    edges = np.asarray(edges, dtype=np.int64)
    n = len(edges)
    z = np.zeros(n)
    return Snaps(np.zeros(n, dtype=np.int64), edges, np.asarray(fractions, float), z, z, z)


def test_car_costs_equal_the_stored_pgrouting_costs(demo_readonly, demo_network) -> None:
    engine = create_engine(demo_readonly)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT id, cost, reverse_cost FROM road_edges")).all()
    engine.dispose()
    stored = {i: (c, r) for i, c, r in rows}
    net = demo_network
    assert net.n_edges == len(stored) > 100_000
    for k in range(0, net.n_edges, 97):
        cost, reverse = stored[int(net.edge_ids[k])]
        assert net.forward_s[k] == pytest.approx(cost, rel=1e-12)
        if reverse < 0:
            assert math.isinf(net.backward_s[k])
        else:
            assert net.backward_s[k] == pytest.approx(reverse, rel=1e-12)


@pytest.mark.parametrize(("lon", "lat"), ORIGINS)
def test_reach_times_equal_pgr_driving_distance(demo_readonly, demo_network, lon, lat) -> None:
    """From a node: every node pgRouting reaches within 300 s, at the same time (1e-6 s),
    and no other node."""
    net = demo_network
    snap = net.snap_points([lon], [lat])
    node = net.source[snap.edge[0]]  # start exactly at a node, as pgRouting does
    node_lon, node_lat = net.node_lonlat[node]
    reach = net.reach(net.snap_points([node_lon], [node_lat]), 300.0)
    engine = create_engine(demo_readonly)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT node, agg_cost FROM pgr_drivingDistance("
                "'SELECT id, source, target, cost, reverse_cost FROM road_edges', "
                ":start, 300, directed => true)"
            ),
            {"start": int(net.node_ids[node])},
        ).all()
    engine.dispose()
    theirs = {int(n): c for n, c in rows}
    position = {int(v): i for i, v in enumerate(net.node_ids)}
    ours = {int(net.node_ids[i]): t for i, t in enumerate(reach.node_time) if np.isfinite(t)}
    assert set(ours) == set(theirs) and len(ours) > 100
    worst = max(abs(ours[n] - theirs[n]) for n in theirs)
    assert worst < 1e-6
    assert all(reach.node_origin[position[n]] == 0 for n in theirs)


def test_snapping_goes_onto_the_edge_not_the_node(demo_network) -> None:
    net = demo_network
    k = int(np.argmax(net.length_m * np.isfinite(net.backward_s)))  # a long two-way edge
    mid = shapely.line_interpolate_point(net.lines_metric[k], 0.5, normalized=True)
    # 20 m to the side of its middle
    a, b = shapely.get_coordinates(net.lines_metric[k])[[0, -1]]
    normal = np.array([-(b - a)[1], (b - a)[0]]) / np.hypot(*(b - a))
    x, y = np.array([mid.x, mid.y]) + 20 * normal
    lon, lat = from_metric(x, y)
    snap = net.snap_points([lon], [lat])
    assert snap.edge[0] == k and snap.fraction[0] == pytest.approx(0.5, abs=0.05)
    assert snap.distance_m[0] == pytest.approx(20, abs=1.0)
    sx, sy = to_metric(snap.lon, snap.lat)
    assert shapely.distance(shapely.points(sx[0], sy[0]), net.lines_metric[k]) < 0.01
    reach = net.reach(snap, 1.0)
    # one second along a long road reaches neither end; the exact part is around the origin
    assert not np.isfinite(reach.node_time[[net.source[k], net.target[k]]]).any()
    pieces = reach.pieces(1.0)
    assert pieces.edge.tolist() == [k]
    covered = (pieces.end[0] - pieces.start[0]) * net.forward_s[k]
    assert covered == pytest.approx(2.0, rel=1e-9)  # one second each way


def test_far_origin_is_refused(demo_network) -> None:
    with pytest.raises(NoRoadNearby, match=r"more than 500 m from any road the car profile"):
        demo_network.snap_points([114.0], [23.3])


def test_patrol_segment_as_one_origin(demo_readonly, demo_network) -> None:
    engine = create_engine(demo_readonly)
    with engine.connect() as conn:
        wkb = conn.execute(
            sa.text("SELECT ST_AsBinary(geom) FROM geoservice.current_patrol_segment LIMIT 1")
        ).scalar_one()
    engine.dispose()
    line = shapely.from_wkb(bytes(wkb))
    net = demo_network
    snaps = net.snap_lines([line])
    assert snaps.n_origins == 1 and len(snaps.edge) > 10
    reach = net.reach(snaps, 60.0)
    # every sampled point of the segment is reached at time 0
    times = reach.time_at(snaps.edge, snaps.fraction)
    assert np.all(times < 1e-9)
    single = net.reach(net.snap_points([line.coords[0][0]], [line.coords[0][1]]), 60.0)
    assert np.isfinite(reach.node_time).sum() > np.isfinite(single.node_time).sum()


# --- small graphs against a plain Dijkstra -------------------------------------------------


def _toy(n, edges, forward, backward) -> Network:
    """Nodes on a circle of about 1 km around the city centre; straight edges."""
    angle = np.linspace(0, 2 * np.pi, n, endpoint=False)
    x0, y0 = to_metric(114.41, 23.11)
    xy = np.column_stack([x0 + 1000 * np.cos(angle), y0 + 1000 * np.sin(angle)])
    lines = []
    for u, v in edges:
        lon, lat = from_metric(xy[[u, v], 0], xy[[u, v], 1])
        lines.append(shapely.LineString(np.column_stack([lon, lat])))
    return Network(
        version=1,
        profile="test",
        edge_ids=np.arange(len(edges), dtype=np.int64),
        source=np.array([u for u, _ in edges], dtype=np.int64),
        target=np.array([v for _, v in edges], dtype=np.int64),
        forward_s=np.asarray(forward, float),
        backward_s=np.asarray(backward, float),
        lines=np.array(lines, dtype=object),
    )


def _oracle(net: Network, origins: list[tuple[int, float]], limit: float) -> np.ndarray:
    """Textbook Dijkstra from points on edges, over an adjacency list."""
    adjacency: dict[int, list[tuple[int, float]]] = {}
    for e in range(net.n_edges):
        u, v = int(net.source[e]), int(net.target[e])
        if np.isfinite(net.forward_s[e]):
            adjacency.setdefault(u, []).append((v, float(net.forward_s[e])))
        if np.isfinite(net.backward_s[e]):
            adjacency.setdefault(v, []).append((u, float(net.backward_s[e])))
    best = np.full(net.n_nodes, np.inf)
    heap = []
    for e, f in origins:
        if np.isfinite(net.forward_s[e]) or f == 1:
            heap.append((_go(1 - f, net.forward_s[e]), int(net.target[e])))
        if np.isfinite(net.backward_s[e]) or f == 0:
            heap.append((_go(f, net.backward_s[e]), int(net.source[e])))
    heapq.heapify(heap)
    while heap:
        t, u = heapq.heappop(heap)
        if t >= best[u]:
            continue
        best[u] = t
        for v, c in adjacency.get(u, []):
            if t + c < best[v]:
                heapq.heappush(heap, (t + c, v))
    return np.where(best <= limit, best, np.inf)


def _go(share: float, cost: float) -> float:
    """Seconds to cover a share of an edge; no distance costs nothing, even one-way."""
    return 0.0 if share <= 0 else float(share * cost)


@st.composite
def toy_graphs(draw):
    n = draw(st.integers(2, 9))
    m = draw(st.integers(1, 18))
    edges = [(draw(st.integers(0, n - 1)), draw(st.integers(0, n - 1))) for _ in range(m)]
    edges = [(u, v) if u != v else (u, (v + 1) % n) for u, v in edges]
    cost = st.one_of(st.just(0.0), st.floats(0.5, 100.0))
    forward = [draw(cost) for _ in edges]
    backward = [draw(st.one_of(st.just(math.inf), cost)) for _ in edges]
    n_origins = draw(st.integers(1, 3))
    origins = [
        (draw(st.integers(0, m - 1)), draw(st.sampled_from([0.0, 1.0, 0.3, 0.5, 0.77])))
        for _ in range(n_origins)
    ]
    limit = draw(st.floats(1.0, 250.0))
    return n, edges, forward, backward, origins, limit


@settings(max_examples=300, deadline=None)
@given(toy_graphs())
def test_search_and_partial_edges_match_a_plain_dijkstra(case) -> None:
    n, edges, forward, backward, origins, limit = case
    net = _toy(n, edges, forward, backward)
    reach = net.reach(_snaps([e for e, _ in origins], [f for _, f in origins]), limit)
    expected = _oracle(net, origins, limit)
    finite = np.isfinite(expected)
    assert np.array_equal(np.isfinite(reach.node_time), finite)
    assert np.allclose(reach.node_time[finite], expected[finite], rtol=0, atol=1e-9)
    # partial edges: a point is in a reached part iff its exact time is within the limit
    for seconds in (limit / 3, limit):
        pieces = reach.pieces(seconds)
        for e in range(net.n_edges):
            for x in np.linspace(0, 1, 21)[1:-1]:  # parts have length; nodes are tested above
                times = [
                    expected[net.source[e]] + _go(x, net.forward_s[e]),
                    expected[net.target[e]] + _go(1 - x, net.backward_s[e]),
                ]
                for oe, f in origins:
                    if oe == e:
                        times.append(
                            _go(x - f, net.forward_s[e])
                            if x >= f
                            else _go(f - x, net.backward_s[e])
                        )
                t = min(times)
                if abs(t - seconds) < 1e-7 or (e, x) in origins:
                    continue  # on the frontier itself, or the origin point
                inside = bool(np.any((pieces.edge == e) & (pieces.start <= x) & (x <= pieces.end)))
                assert inside == (t <= seconds), (e, x, t, seconds)


def test_parallel_edges_keep_the_minimum_and_zero_costs_stay_edges() -> None:
    # 0 -> 1 twice (5 s and 3 s: the sum would be 8), 1 -> 2 free, 2 -> 3 one-way 4 s
    net = _toy(4, [(0, 1), (0, 1), (1, 2), (2, 3)], [5.0, 3.0, 0.0, 4.0], [5.0, 3.0, 0.0, math.inf])
    reach = net.reach(_snaps([0], [0.0]), 100.0)
    assert reach.node_time.tolist() == pytest.approx([0.0, 3.0, 3.0, 7.0])
    back = net.reach(_snaps([3], [1.0]), 100.0)  # from node 3: the one-way forbids going back
    assert np.isinf(back.node_time[:3]).all()


def test_foot_profile_ignores_one_way_and_maxspeed(demo_readonly) -> None:
    engine = create_engine(demo_readonly)
    foot = load_network(engine, "foot")
    engine.dispose()
    assert np.isfinite(foot.backward_s).all()
    speeds = foot.length_m / foot.forward_s * 3.6
    assert np.allclose(speeds[speeds > 3.5], 5.0, rtol=0.02)


@settings(max_examples=40, deadline=None)
@given(st.floats(114.30, 114.52), st.floats(23.02, 23.20), st.floats(20.0, 150.0))
def test_a_local_search_equals_the_whole_graph_search(demo_network, lon, lat, limit) -> None:
    """The output-sensitive search (nodes within top speed x time) answers exactly as the
    search over every node and edge."""
    snaps = demo_network.snap_points([lon], [lat], max_distance_m=5_000.0, strict=False)
    if not len(snaps.edge):
        return
    local = demo_network.reach(snaps, limit, local=True)
    whole = demo_network.reach(snaps, limit, local=False)
    assume(local.edges is not None)  # the local search ran (a small ball)
    assert whole.edges is None
    assert np.array_equal(local.node_time, whole.node_time)
    assert np.array_equal(local.node_origin, whole.node_origin)
    for seconds in (limit / 2, limit):
        a, b = local.pieces(seconds), whole.pieces(seconds)
        assert np.array_equal(a.edge, b.edge)
        assert np.array_equal(a.start, b.start) and np.array_equal(a.end, b.end)
    probe = np.arange(0, demo_network.n_edges, 97)
    fraction = np.full(len(probe), 0.37)
    assert np.array_equal(local.time_at(probe, fraction), whole.time_at(probe, fraction))
