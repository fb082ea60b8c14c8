"""Road network: OSM ways (XML, .bz2, PBF) or an osmnx GraphML -> directed edges.

Edges follow pgRouting's convention: one row per road piece between two graph
nodes (way ends and nodes shared by several ways), ``cost`` seconds from
``source`` to ``target`` at the profile's speed (a ``maxspeed`` tag wins where the
profile follows it), ``reverse_cost`` the way back or -1 on one-way streets, ``geom``
running from source to target. Ways the profile cannot use (footways for a car) stay out.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyproj
import shapely
import sqlalchemy as sa
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from etl.context import Context
from etl.geo import check_near_district
from etl.load import LayerLoad
from etl.readers import require_file
from etl.report import Report
from geoservice.datasets import Source
from geoservice.errors import InvalidInput
from geoservice.missing import none_if_missing
from geoservice.profiles import Profile, load_profile

ROAD_SUFFIXES = (".osm", ".osm.bz2", ".osm.pbf", ".pbf", ".graphml")
ONEWAY_FORWARD = {"yes", "true", "1"}
ONEWAY_BACKWARD = {"-1", "reverse"}
MPH = 1.609344
GEOD = pyproj.Geod(ellps="WGS84")


@dataclass
class Ways:
    """Ways as flat arrays: way i owns node positions ``start[i]:start[i+1]``."""

    way_id: list[int] = field(default_factory=list)
    tags: list[dict[str, str]] = field(default_factory=list)
    refs: list[int] = field(default_factory=list)
    lon: list[float] = field(default_factory=list)
    lat: list[float] = field(default_factory=list)
    start: list[int] = field(default_factory=lambda: [0])
    missing_nodes: int = 0

    def add(self, way_id: int, tags: dict[str, str], refs, lons, lats) -> None:
        self.way_id.append(way_id)
        self.tags.append(tags)
        self.refs.extend(refs)
        self.lon.extend(lons)
        self.lat.extend(lats)
        self.start.append(len(self.refs))


KEPT_TAGS = ("highway", "oneway", "maxspeed", "name", "junction")


def read_osm(path: Path) -> Ways:
    """Highway ways with their node locations, from OSM XML, .osm.bz2 or PBF (pyosmium)."""
    import osmium

    ways = Ways()

    class Handler(osmium.SimpleHandler):
        def way(self, w) -> None:
            if "highway" not in w.tags:
                return
            refs, lons, lats = [], [], []
            for node in w.nodes:
                if not node.location.valid():
                    ways.missing_nodes += 1
                    return
                refs.append(node.ref)
                lons.append(node.location.lon)
                lats.append(node.location.lat)
            if len(refs) >= 2:
                tags = {k: w.tags[k] for k in KEPT_TAGS if k in w.tags}
                ways.add(w.id, tags, refs, lons, lats)

    try:
        Handler().apply_file(str(path), locations=True)
    except RuntimeError as exc:
        msg = f"{path}: not a readable OSM file: {exc}"
        raise InvalidInput(msg) from None
    return ways


def read_graphml(path: Path) -> Ways:
    """An osmnx GraphML: every directed edge becomes a one-way way."""
    import osmnx

    try:
        graph = osmnx.load_graphml(path)
    except Exception as exc:  # networkx/lxml raise many kinds on a bad file
        msg = f"{path}: not a readable osmnx GraphML file: {exc}"
        raise InvalidInput(msg) from None
    ways = Ways()
    nodes = graph.nodes
    for number, (u, v, data) in enumerate(graph.edges(data=True), start=1):
        if "geometry" in data:
            lons, lats = (list(a) for a in data["geometry"].xy)
            refs = [u] + [-(number * 1000 + i) for i in range(1, len(lons) - 1)] + [v]
        else:
            lons, lats, refs = (
                [nodes[u]["x"], nodes[v]["x"]],
                [nodes[u]["y"], nodes[v]["y"]],
                [u, v],
            )
        tags = {key: _first(data[key]) for key in ("highway", "maxspeed", "name") if key in data}
        tags["oneway"] = "yes"
        osmid = _first(data.get("osmid", 0))
        ways.add(int(osmid) if str(osmid).lstrip("-").isdigit() else 0, tags, refs, lons, lats)
    return ways


def _first(value: object) -> str:
    if isinstance(value, list):
        return str(value[0])
    return str(value)


def parse_maxspeed(value: str | None) -> float | None:
    """km/h from an OSM maxspeed tag ('60', '60 km/h', '30 mph', '60;40'); None if unusable."""
    if not value:
        return None
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(mph|km/h|kmh|kph)?\s*", value.split(";")[0])
    if not match:
        return None
    speed = float(match[1]) * (MPH if match[2] == "mph" else 1.0)
    return speed if speed > 0 else None


@dataclass(frozen=True)
class RoadGraph:
    node_osm_id: np.ndarray
    node_lon: np.ndarray
    node_lat: np.ndarray
    edges: pd.DataFrame  # source, target, cost, reverse_cost, length_m, highway, ... geometry


def build_graph(ways: Ways, profile: Profile, report: Report) -> RoadGraph:
    """Split ways at shared nodes into directed edges with costs (see the module docstring)."""
    keep = [i for i, tags in enumerate(ways.tags) if profile.drivable(tags.get("highway", ""))]
    excluded = Counter(ways.tags[i].get("highway", "") for i in range(len(ways.tags))) - Counter(
        ways.tags[i].get("highway", "") for i in keep
    )
    if excluded:
        report.facts.append(
            f"left out {sum(excluded.values())} ways the {profile.name} profile cannot use: "
            + ", ".join(f"{k} {v}" for k, v in excluded.most_common(6))
        )
    start = np.asarray(ways.start)
    refs_all = np.asarray(ways.refs, dtype=np.int64)
    lon_all = np.asarray(ways.lon)
    lat_all = np.asarray(ways.lat)
    segments = [(start[i], start[i + 1]) for i in keep]
    if not segments:
        report.error(
            f"no way the {profile.name} profile can use (highway classes "
            f"{sorted(profile.speeds_kmh)})"
        )
        empty = np.array([], dtype=np.int64)
        return RoadGraph(empty, empty.astype(float), empty.astype(float), pd.DataFrame())
    index = np.concatenate([np.arange(a, b) for a, b in segments])
    refs = refs_all[index]
    lons, lats = lon_all[index], lat_all[index]
    lengths_per_way = [b - a for a, b in segments]
    way_start = np.concatenate([[0], np.cumsum(lengths_per_way)])
    uses = Counter(refs.tolist())
    is_end = np.zeros(len(refs), dtype=bool)
    is_end[way_start[:-1]] = True
    is_end[way_start[1:] - 1] = True
    split = is_end | np.array([uses[r] > 1 for r in refs.tolist()])

    step = np.zeros(len(refs))
    _, _, dist = GEOD.inv(lons[:-1], lats[:-1], lons[1:], lats[1:])
    step[1:] = dist
    step[way_start[1:-1]] = 0.0  # no length across way boundaries
    along = np.cumsum(step)

    node_ids: dict[int, int] = {}
    rows = []
    unparsed: Counter[str] = Counter()
    for w, (a, b) in zip(keep, pairwise(way_start), strict=True):
        tags = ways.tags[w]
        highway = tags["highway"]
        maxspeed = parse_maxspeed(tags.get("maxspeed"))
        if tags.get("maxspeed") and maxspeed is None:
            unparsed[tags["maxspeed"]] += 1
        speed = profile.speed_kmh(highway, maxspeed)
        direction = _direction(tags, profile)
        cuts = a + np.flatnonzero(split[a:b])
        for i, j in pairwise(cuts):
            length = float(along[j] - along[i])
            chain = slice(i, j + 1)
            if direction < 0:
                chain = slice(j, i - 1 if i > 0 else None, -1)
            ends = (refs[chain][0], refs[chain][-1])
            ids = [node_ids.setdefault(int(r), len(node_ids) + 1) for r in ends]
            cost = length / (speed / 3.6)
            rows.append(
                (
                    ids[0],
                    ids[1],
                    cost,
                    -1.0 if direction else cost,
                    length,
                    highway,
                    maxspeed,
                    bool(direction),
                    tags.get("name"),
                    ways.way_id[w],
                    np.column_stack([lons[chain], lats[chain]]),
                )
            )
    if unparsed:
        report.warnings.append(
            f"{sum(unparsed.values())} maxspeed tags not understood, class speed used: "
            + ", ".join(repr(k) for k, _ in unparsed.most_common(5))
        )
    edges = pd.DataFrame(
        rows,
        columns=[
            "source",
            "target",
            "cost",
            "reverse_cost",
            "length_m",
            "highway",
            "maxspeed_kmh",
            "oneway",
            "name",
            "osm_way_id",
            "coords",
        ],
    )
    zero = edges["length_m"] <= 0
    if zero.any():
        report.warnings.append(f"dropped {int(zero.sum())} zero-length edges")
        edges = edges[~zero].reset_index(drop=True)
    osm_ids = np.array(list(node_ids), dtype=np.int64)
    position: dict[int, tuple[float, float]] = {}
    for r, x, y in zip(refs.tolist(), lons, lats, strict=True):
        position.setdefault(r, (x, y))
    xy = np.array([position[r] for r in osm_ids.tolist()])
    return RoadGraph(osm_ids, xy[:, 0], xy[:, 1], edges)


def _direction(tags: dict[str, str], profile: Profile) -> int:
    """0 two-way, 1 one-way along the way, -1 one-way against it."""
    if not profile.oneway:
        return 0
    oneway = tags.get("oneway", "").lower()
    if oneway in ONEWAY_FORWARD:
        return 1
    if oneway in ONEWAY_BACKWARD:
        return -1
    if oneway != "no" and (
        tags.get("junction") == "roundabout" or tags.get("highway") == "motorway"
    ):
        return 1
    return 0


def strong_components(graph: RoadGraph) -> np.ndarray:
    """Size of each strongly connected component, largest first."""
    edges = graph.edges
    n = len(graph.node_osm_id)
    src = edges["source"].to_numpy() - 1
    dst = edges["target"].to_numpy() - 1
    two_way = edges["reverse_cost"].to_numpy() >= 0
    rows = np.concatenate([src, dst[two_way]])
    cols = np.concatenate([dst, src[two_way]])
    matrix = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n)).tocsr()
    _, labels = connected_components(matrix, directed=True, connection="strong")
    return np.sort(np.bincount(labels))[::-1]


COPY_ROWS = 200_000
"""Rows per COPY statement: each statement stays within the statement timeout however
large the network (all of them in the load's one transaction)."""


def copy_rows(cursor: Any, sql: str, rows: Iterable[tuple[Any, ...]]) -> None:
    """COPY ``rows`` with ``sql``, ``COPY_ROWS`` per statement."""
    iterator = iter(rows)
    while True:
        chunk = list(itertools.islice(iterator, COPY_ROWS))
        if not chunk:
            return
        with cursor.copy(sql) as copy:
            for row in chunk:
                copy.write_row(row)


SHRINK_REFUSED = 0.5
"""A network with less than this share of the current one's edges needs --replace-network."""
OSM_CRS_HINT = "OSM data is always WGS84: is this an extract of the district?"


def prepare_roads(
    path: Path,
    context: Context,
    *,
    profile: str | Path = "car",
    allow_outside: bool = False,
    replace_network: bool = False,
) -> LayerLoad:
    """Read, split, cost and check a road network; nothing is written yet. A network with
    fewer than ``SHRINK_REFUSED`` of the current one's edges is refused unless
    ``replace_network`` (a foreign test extract loaded over the district's roads)."""
    require_file(path, ROAD_SUFFIXES)
    chosen = load_profile(profile)
    ways = read_graphml(path) if path.name.lower().endswith(".graphml") else read_osm(path)
    report = Report(f"roads from {path.name}", "roads")
    if ways.missing_nodes:
        report.warnings.append(f"{ways.missing_nodes} ways skipped: nodes missing from the extract")
    graph = build_graph(ways, chosen, report)
    edges = graph.edges
    if not edges.empty:
        points = shapely.points(graph.node_lon, graph.node_lat)
        check_near_district(
            points, context.district(), path.name, allow_outside, crs_hint=OSM_CRS_HINT
        )
        sizes = strong_components(graph)
        nodes = len(graph.node_osm_id)
        directed = int(len(edges) + (edges["reverse_cost"] >= 0).sum())
        report.facts.append(
            f"{nodes:,} nodes, {len(edges):,} edges ({directed:,} directed, "
            f"{int(edges['oneway'].sum()):,} one-way)"
        )
        report.facts.append(
            f"largest strongly connected component: {sizes[0]:,} nodes "
            f"({sizes[0] / nodes:.1%}); {len(sizes)} components"
        )
        if len(sizes) > 1:
            report.warnings.append(
                f"{nodes - sizes[0]:,} nodes in {len(sizes) - 1} pieces cannot reach, or be "
                "reached from, the main network"
            )

    current = context.table("SELECT count(*) AS edges FROM road_edges")
    now = int(current["edges"].iloc[0]) if len(current) else 0
    if now and len(edges) < SHRINK_REFUSED * now and not replace_network:
        report.error(
            f"this network has {len(edges):,} edges, the current one {now:,} "
            f"({len(edges) / now - 1:+.0%}): publishing it would replace most of the district's "
            "roads; pass --replace-network if that is meant"
        )

    def write(conn: sa.Connection, snapshot_id: int) -> int:
        node_wkb = shapely.to_wkb(
            shapely.set_srid(shapely.points(graph.node_lon, graph.node_lat), 4326),
            hex=True,
            include_srid=True,
        )
        coords = list(edges["coords"])
        owner = np.repeat(np.arange(len(coords)), [len(c) for c in coords])
        lines = shapely.set_srid(shapely.linestrings(np.concatenate(coords), indices=owner), 4326)
        edge_wkb = shapely.to_wkb(lines, hex=True, include_srid=True)
        raw = conn.connection.driver_connection
        assert raw is not None
        cursor = raw.cursor()
        copy_rows(
            cursor,
            "COPY geoservice.road_node (snapshot_id, id, osm_id, geom) FROM STDIN",
            (
                (snapshot_id, i, osm_id, wkb)
                for i, (osm_id, wkb) in enumerate(
                    zip(graph.node_osm_id.tolist(), node_wkb, strict=True), start=1
                )
            ),
        )
        copy_rows(
            cursor,
            "COPY geoservice.road_edge (snapshot_id, id, source, target, cost, reverse_cost, "
            "length_m, highway, maxspeed_kmh, oneway, name, osm_way_id, geom) FROM STDIN",
            (
                (
                    snapshot_id,
                    i,
                    row.source,
                    row.target,
                    row.cost,
                    row.reverse_cost,
                    row.length_m,
                    row.highway,
                    none_if_missing(row.maxspeed_kmh),
                    row.oneway,
                    none_if_missing(row.name),
                    none_if_missing(row.osm_way_id),
                    wkb,
                )
                for i, (row, wkb) in enumerate(
                    zip(edges.itertuples(index=False), edge_wkb, strict=True), start=1
                )
            ),
        )
        cursor.close()
        return len(edges)

    def diff() -> list[str]:
        with context.engine.connect() as conn:
            old = conn.execute(sa.text("SELECT count(*) FROM road_edges")).scalar_one()
        return [f"road edges: {old:,} now, {len(edges):,} after publishing"]

    return LayerLoad(
        "roads",
        Source.of_file("roads", path),
        report,
        edges,
        write,
        f"{len(edges):,} road edges",
        diff,
    )
