"""Isochrone benchmark: geoservice beside pgRouting and the OSMnx method, on the demo network.

Run with ``make bench`` (or ``.venv/bin/python -m benchmarks.isochrones``) against a
database holding the demo. Every figure is printed next to its baselines, measured in the
same run; nothing here asserts a timing.

1. One origin's 1/3/5-minute bands with polygons, for every unit post: ours (snap,
   search, raster polygons) against pgRouting (``pgr_drivingDistance`` + ``ST_ConcaveHull``
   of the reached nodes, what a hand-rolled PostGIS set-up does), the OSMnx method
   (``networkx.ego_graph`` per band + buffered edges) and our own exact GEOS union.
2. The 5-minute reach from all 216 unit posts together: ours (one multi-source search)
   against ``pgr_drivingDistance`` with all posts as start vids and ``ego_graph`` per post.
"""

from __future__ import annotations

import argparse
import time

import networkx as nx
import numpy as np
import shapely
import sqlalchemy as sa

from geoservice.db import create_engine
from geoservice.isochrones import band_polygons, isochrones
from geoservice.network import Network, load_network
from geoservice.settings import Settings

EDGES_SQL = "SELECT id, source, target, cost, reverse_cost FROM road_edges"
CONCAVE_SQL = """
WITH dd AS (
  SELECT node, agg_cost FROM pgr_drivingDistance(:edges, :start, 300, directed => true)
)
SELECT m, ST_Area(ST_ConcaveHull(ST_Collect(n.geom), 0.3)::geography) / 1e6
FROM dd JOIN geoservice.current_road_node n ON n.id = dd.node,
     unnest(ARRAY[60, 180, 300]) AS m
WHERE dd.agg_cost <= m GROUP BY m ORDER BY m
"""


def percentiles(seconds: list[float]) -> str:
    ms = np.array(seconds) * 1e3
    p50, p90 = np.percentile(ms, [50, 90])
    return f"p50 {p50:8.1f} ms  p90 {p90:8.1f} ms  (n={len(ms)})"


def timed(fn, *args, **kwargs) -> float:
    start = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - start


def nx_graph(net: Network) -> nx.DiGraph:
    """The same directed graph for networkx, parallel edges at their minimum."""
    graph = nx.DiGraph()
    m = net.matrix.tocoo()
    graph.add_weighted_edges_from(zip(m.row.tolist(), m.col.tolist(), m.data.tolist(), strict=True))
    return graph


def osmnx_bands(net: Network, graph: nx.DiGraph, node: int, buffer_m: float) -> list:
    """The osmnx-examples notebook 13 method: ego_graph per band, buffered edges."""
    out = []
    for seconds in (60, 180, 300):
        sub = nx.ego_graph(graph, node, radius=seconds, distance="weight")
        pairs = set(sub.edges())
        edges = [e for e in range(net.n_edges) if (net.source[e], net.target[e]) in pairs]
        out.append(shapely.union_all(shapely.buffer(net.lines_metric[edges], buffer_m)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--baseline-origins", type=int, default=12)
    args = parser.parse_args()
    engine = create_engine(Settings())
    start = time.perf_counter()
    net = load_network(engine)
    print(
        f"network: {net.n_nodes:,} nodes, {net.n_edges:,} edges, "
        f"{net.matrix.nnz:,} directed; built in {time.perf_counter() - start:.1f} s"
    )
    with engine.connect() as conn:
        posts = conn.execute(
            sa.text(
                "SELECT ST_X(geom), ST_Y(geom) FROM geoservice.current_station "
                "WHERE kind = 'post' ORDER BY code"
            )
        ).all()
    lon = np.array([p[0] for p in posts])
    lat = np.array([p[1] for p in posts])
    snaps = net.snap_points(lon, lat, strict=False)
    usable = np.unique(snaps.origin)
    print(f"unit posts: {len(posts)}, {len(usable)} within 500 m of a road\n")

    print("1. one origin, 1/3/5-minute bands with polygons")
    isochrones(net, lon[usable[0]], lat[usable[0]])  # warm-up
    ours = [timed(isochrones, net, lon[i], lat[i]) for i in usable]
    print(f"  geoservice (raster polygons)        {percentiles(ours)}")
    city = [timed(isochrones, net, 114.41, 23.11) for _ in range(5)]
    print(f"  geoservice, city centre 114.41,23.11 {percentiles(city)}")
    sample = usable[:: max(1, len(usable) // args.baseline_origins)][: args.baseline_origins]
    exact = []
    for i in sample:
        result = isochrones(net, lon[i], lat[i])
        exact.append(timed(band_polygons, result.reach, (1, 3, 5), method="exact"))
    print(f"  exact GEOS union of the same parts  {percentiles(exact)}")
    nodes = net.node_ids[net.source[snaps.edge[np.searchsorted(snaps.origin, sample)]]]
    pgr = []
    with engine.connect() as conn:
        for node in nodes.tolist():
            query = sa.text(CONCAVE_SQL)
            pgr.append(
                timed(
                    lambda q=query, n=node: conn.execute(q, {"edges": EDGES_SQL, "start": n}).all()
                )
            )
    print(f"  pgr_drivingDistance + ST_ConcaveHull {percentiles(pgr)}")
    graph = nx_graph(net)
    osm = [
        timed(
            osmnx_bands,
            net,
            graph,
            int(net.source[snaps.edge[np.searchsorted(snaps.origin, i)]]),
            30.0,
        )
        for i in sample
    ]
    print(f"  networkx ego_graph + buffer (OSMnx) {percentiles(osm)}")
    print(
        f"  -> p50 vs pgRouting x{np.median(pgr) / np.median(ours):.1f}, "
        f"vs OSMnx x{np.median(osm) / np.median(ours):.1f}\n"
    )

    print("2. 5-minute reach times from all unit posts together")
    with_snap = min(
        timed(lambda: net.reach(net.snap_points(lon, lat, strict=False), 300.0)) for _ in range(5)
    )
    best = min(timed(lambda: net.reach(snaps, 300.0)) for _ in range(5))
    start_nodes = sorted({int(net.node_ids[net.source[e]]) for e in snaps.edge})
    with engine.connect() as conn:
        query = sa.text(
            "SELECT count(*) FROM pgr_drivingDistance(:edges, :starts, 300, "
            "directed => true, equicost => true)"
        )
        pgr_all = min(
            timed(lambda: conn.execute(query, {"edges": EDGES_SQL, "starts": start_nodes}).scalar())
            for _ in range(2)
        )
    ego = timed(
        lambda: [
            nx.ego_graph(graph, int(net.source[e]), radius=300, distance="weight")
            for e in snaps.edge
        ]
    )
    print(f"  geoservice, one min_only search           {best * 1e3:10.1f} ms")
    print(f"  geoservice, snapping the posts + search   {with_snap * 1e3:10.1f} ms")
    print(
        f"  pgr_drivingDistance, {len(start_nodes)} start vids, equicost {pgr_all * 1e3:10.1f} ms"
        f"   x{pgr_all / best:.1f}"
    )
    print(f"  networkx ego_graph per post (OSMnx)      {ego * 1e3:10.1f} ms   x{ego / best:.1f}")


if __name__ == "__main__":
    main()
