"""A synthetic, district-scale road network written as OSM XML.

Nodes sit on a jittered quadtree whose cells shrink where people live (about 110 m
apart in the centre, about 1 km in the countryside); roads are the Gabriel graph of
those nodes, cut by the real district boundary. The Dongjiang (west–east through
the centre) and the Xizhijiang (joining it from the south-east) cut every road but
a few bridges. Shortest paths between town centres become primary roads, the one
across the district a trunk road; central streets get some one-way residential
streets, and the West Lake area footways (not drivable).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import quoteattr

import numpy as np
import shapely
from numpy.typing import NDArray
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components, dijkstra
from scipy.spatial import Delaunay
from shapely.geometry import LineString, Polygon

from geoservice.synthetic.boundaries import density, from_metric, to_metric
from geoservice.synthetic.divisions import TOWN_CENTRES

DONGJIANG = [
    (114.12, 23.135),
    (114.22, 23.128),
    (114.30, 23.118),
    (114.36, 23.125),
    (114.395, 23.121),
    (114.412, 23.117),
    (114.45, 23.126),
    (114.50, 23.146),
    (114.56, 23.178),
    (114.62, 23.205),
    (114.70, 23.238),
    (114.80, 23.26),
]
XIZHIJIANG = [
    (114.412, 23.117),
    (114.424, 23.100),
    (114.440, 23.072),
    (114.468, 23.035),
    (114.50, 22.98),
]
DONGJIANG_BRIDGES = [
    (114.25, 23.13),
    (114.33, 23.12),
    (114.385, 23.12),
    (114.40, 23.12),
    (114.43, 23.12),
    (114.53, 23.16),
    (114.66, 23.22),
]
XIZHIJIANG_BRIDGES = [(114.42, 23.105), (114.432, 23.088), (114.45, 23.06), (114.47, 23.03)]
WEST_LAKE = (114.393, 23.103)
SPACING_CONSTANT = 14_500.0  # metres × sqrt(residents per km²)


@dataclass(frozen=True)
class RoadNetwork:
    """Undirected road segments between nodes; ``oneway`` segments run from u to v."""

    lon: NDArray
    lat: NDArray
    u: NDArray
    v: NDArray
    highway: NDArray
    oneway: NDArray
    maxspeed: NDArray  # "" where untagged
    name: NDArray
    bridge: NDArray


def _quadtree_nodes(district: Polygon, rng: np.random.Generator) -> NDArray:
    minx, miny, maxx, maxy = district.bounds
    size = max(maxx - minx, maxy - miny)
    cells = [(minx, miny, size)]
    leaves = []
    while cells:
        x, y, s = np.array(cells).T
        spacing = SPACING_CONSTANT / np.sqrt(density(x + s / 2, y + s / 2))
        split = s > spacing
        leaves.append(np.column_stack([x[~split], y[~split], s[~split]]))
        half = s[split] / 2
        xs, ys = x[split], y[split]
        cells = [
            (a, b, h)
            for dx, dy in ((0, 0), (1, 0), (0, 1), (1, 1))
            for a, b, h in zip(xs + dx * half, ys + dy * half, half, strict=True)
        ]
    leaf = np.concatenate(leaves)
    jitter = rng.uniform(0.2, 0.8, (len(leaf), 2))
    points = leaf[:, :2] + jitter * leaf[:, 2:3]
    return points[shapely.contains_xy(district, points[:, 0], points[:, 1])]


def _gabriel_edges(points: NDArray) -> NDArray:
    """Edges of the Gabriel graph (a subgraph of the Delaunay triangulation), as (i, j), i < j."""
    tri = Delaunay(points).simplices
    edges = []
    opposite = []
    for a, b, c in ((0, 1, 2), (1, 2, 0), (2, 0, 1)):
        edges.append(np.sort(tri[:, [a, b]], axis=1))
        opposite.append(tri[:, c])
    pairs = np.concatenate(edges)
    third = np.concatenate(opposite)
    pa, pb, pc = points[pairs[:, 0]], points[pairs[:, 1]], points[third]
    obtuse_or_right = np.einsum("ij,ij->i", pa - pc, pb - pc) <= 0  # c inside the diameter circle
    key = pairs[:, 0].astype(np.int64) * len(points) + pairs[:, 1]
    bad = np.unique(key[obtuse_or_right])
    all_keys = np.unique(key)
    good = np.setdiff1d(all_keys, bad)
    return np.column_stack([good // len(points), good % len(points)])


def _metric_line(lonlat: list[tuple[float, float]]) -> LineString:
    lon, lat = np.array(lonlat).T
    return LineString(np.column_stack(to_metric(lon, lat)))


def _cut_rivers(points: NDArray, edges: NDArray) -> tuple[NDArray, NDArray]:
    """Drop edges crossing a river except one per bridge; returns (edges, is_bridge)."""
    segments = shapely.linestrings(np.stack([points[edges[:, 0]], points[edges[:, 1]]], axis=1))
    keep = np.ones(len(edges), dtype=bool)
    bridge = np.zeros(len(edges), dtype=bool)
    for river, bridges in ((DONGJIANG, DONGJIANG_BRIDGES), (XIZHIJIANG, XIZHIJIANG_BRIDGES)):
        line = _metric_line(river)
        crossing = np.flatnonzero(shapely.intersects(segments, line))
        keep[crossing] = False
        crossings = shapely.intersection(segments[crossing], line)
        for lon, lat in bridges:
            site = line.interpolate(line.project(shapely.Point(*to_metric(lon, lat))))
            nearest = crossing[np.argmin(shapely.distance(crossings, site))]
            keep[nearest] = True
            bridge[nearest] = True
    return edges[keep], bridge[keep]


def generate(district_wgs84, rng: np.random.Generator) -> RoadNetwork:
    district = shapely.transform(
        district_wgs84, lambda xy: np.column_stack(to_metric(xy[:, 0], xy[:, 1]))
    ).geoms[0]
    points = _quadtree_nodes(district, rng)
    edges = _gabriel_edges(points)
    segments = shapely.linestrings(np.stack([points[edges[:, 0]], points[edges[:, 1]]], axis=1))
    shapely.prepare(district)
    edges = edges[shapely.covers(district, segments)]
    edges, bridge = _cut_rivers(points, edges)

    # Keep the largest connected piece; renumber nodes.
    n = len(points)
    lengths = np.hypot(*(points[edges[:, 0]] - points[edges[:, 1]]).T)
    graph = coo_matrix((lengths, (edges[:, 0], edges[:, 1])), shape=(n, n)).tocsr()
    _, label = connected_components(graph, directed=False)
    main = np.argmax(np.bincount(label))
    keep_node = label == main
    keep_edge = keep_node[edges[:, 0]]
    edges, bridge, lengths = edges[keep_edge], bridge[keep_edge], lengths[keep_edge]
    new_id = np.cumsum(keep_node) - 1
    points = points[keep_node]
    edges = new_id[edges]
    n = len(points)
    graph = coo_matrix((lengths, (edges[:, 0], edges[:, 1])), shape=(n, n)).tocsr()
    graph = graph.maximum(graph.T)

    mid = (points[edges[:, 0]] + points[edges[:, 1]]) / 2
    rho = density(mid[:, 0], mid[:, 1])
    highway = np.where(rho > 6_000, "residential", "unclassified").astype(object)
    name = np.full(len(edges), "", dtype=object)
    edge_index = {(int(a), int(b)): i for i, (a, b) in enumerate(edges)}

    def mark_path(sources: NDArray, targets: NDArray, cls: str, label: str = "") -> None:
        _, pred = dijkstra(graph, indices=sources, return_predecessors=True)
        for row, target in zip(pred, targets, strict=True):
            node = target
            while row[node] >= 0:
                prev = row[node]
                i = edge_index[(min(prev, node), max(prev, node))]
                if cls == "trunk" or highway[i] not in ("trunk", "primary"):
                    highway[i] = cls
                    name[i] = name[i] or label
                node = prev

    tree = shapely.STRtree(shapely.points(points))
    centres = np.array([to_metric(*c) for c in TOWN_CENTRES.values()])
    hubs = tree.query_nearest(shapely.points(centres), all_matches=False)[1]
    pairs = [(a, b) for i, a in enumerate(hubs) for b in hubs[i + 1 :]]
    for a, b in pairs:
        mark_path(np.array([a]), np.array([b]), "primary")
    # Secondary streets: a ring of central points joined to the points opposite.
    cx, cy = to_metric(114.41, 23.11)
    angles = np.linspace(0, 2 * np.pi, 12, endpoint=False)
    ring = np.column_stack([cx + 3_000 * np.cos(angles), cy + 3_000 * np.sin(angles)])
    ring_nodes = tree.query_nearest(shapely.points(ring), all_matches=False)[1]
    for i in range(6):
        mark_path(np.array([ring_nodes[i]]), np.array([ring_nodes[i + 6]]), "secondary")
    west, north_east = (
        hubs[list(TOWN_CENTRES).index("441302450")],
        hubs[list(TOWN_CENTRES).index("441302112")],
    )
    mark_path(np.array([west]), np.array([north_east]), "trunk", "惠州大道")
    highway[bridge & (highway != "trunk")] = "primary"
    for i, b in enumerate(np.flatnonzero(bridge), 1):
        name[b] = f"东江{i}号桥" if i <= len(DONGJIANG_BRIDGES) else f"西枝江{i - 7}号桥"

    lake = np.array(to_metric(*WEST_LAKE))
    near_lake = np.hypot(*(mid - lake).T) < 500
    highway[near_lake & (highway == "residential")] = "footway"

    degree = np.bincount(edges.ravel(), minlength=n)
    oneway = (
        (highway == "residential")
        & (rho > 10_000)
        & (degree[edges[:, 0]] >= 4)
        & (degree[edges[:, 1]] >= 4)
        & (rng.uniform(size=len(edges)) < 0.15)
    )
    flip = oneway & (rng.uniform(size=len(edges)) < 0.5)
    edges[flip] = edges[flip][:, ::-1]
    maxspeed = np.full(len(edges), "", dtype=object)
    maxspeed[(highway == "trunk")] = "80"
    maxspeed[(highway == "primary") & (rng.uniform(size=len(edges)) < 0.5)] = "60"
    maxspeed[(highway == "residential") & (rng.uniform(size=len(edges)) < 0.1)] = "30"

    lon, lat = from_metric(points[:, 0], points[:, 1])
    return RoadNetwork(lon, lat, edges[:, 0], edges[:, 1], highway, oneway, maxspeed, name, bridge)


def write_osm(network: RoadNetwork, path: Path) -> None:
    """OSM XML: one node per road node, one way per segment, with OSM tags."""
    with path.open("w", encoding="utf-8") as out:
        out.write("<?xml version='1.0' encoding='UTF-8'?>\n")
        out.write('<osm version="0.6" generator="geoservice synthetic (not real data)">\n')
        for i, (lon, lat) in enumerate(zip(network.lon, network.lat, strict=True), 1):
            out.write(f'  <node id="{i}" version="1" lat="{lat:.7f}" lon="{lon:.7f}"/>\n')
        for w in range(len(network.u)):
            out.write(f'  <way id="{w + 1}" version="1">\n')
            out.write(f'    <nd ref="{network.u[w] + 1}"/>\n    <nd ref="{network.v[w] + 1}"/>\n')
            tags = {"highway": network.highway[w], "source": "geoservice synthetic"}
            if network.oneway[w]:
                tags["oneway"] = "yes"
            if network.maxspeed[w]:
                tags["maxspeed"] = network.maxspeed[w]
            if network.name[w]:
                tags["name"] = network.name[w]
            if network.bridge[w]:
                tags["bridge"] = "yes"
            for key, value in tags.items():
                out.write(f"    <tag k={quoteattr(key)} v={quoteattr(str(value))}/>\n")
            out.write("  </way>\n")
        out.write("</osm>\n")
