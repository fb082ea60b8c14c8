"""Road ETL: real OSM extracts, GraphML, one-way and speed rules, pgRouting's convention."""

from __future__ import annotations

import numpy as np
import pytest
import sqlalchemy as sa

from etl.report import Report
from etl.roads import Ways, build_graph, parse_maxspeed
from geoservice.profiles import load_profile
from tests.cli import run_cli
from tests.conftest import FIXTURES


def _ways(*specs) -> Ways:
    """Ways from (id, tags, [(ref, lon, lat), ...])."""
    ways = Ways()
    for way_id, tags, nodes in specs:
        refs, lons, lats = zip(*nodes, strict=True)
        ways.add(way_id, tags, list(refs), list(lons), list(lats))
    return ways


A, B, C, D = (1, 114.40, 23.10), (2, 114.41, 23.10), (3, 114.42, 23.10), (4, 114.41, 23.11)


def test_ways_split_at_shared_nodes_with_oneway_and_speeds() -> None:
    ways = _ways(
        (10, {"highway": "primary"}, [A, B, C]),  # split at B, where way 11 joins
        (11, {"highway": "residential", "oneway": "-1", "maxspeed": "18 mph"}, [B, D]),
        (12, {"highway": "footway"}, [A, D]),
    )
    report = Report("test")
    graph = build_graph(ways, load_profile("car"), report)
    edges = graph.edges
    assert len(edges) == 3
    first, _, third = edges.itertuples()
    assert (first.source, first.target) == (1, 2) and first.reverse_cost == first.cost
    assert first.cost == pytest.approx(first.length_m / (45 / 3.6))
    assert first.length_m == pytest.approx(1024.3, abs=0.5)  # 0.01° of longitude at 23.1°N
    # oneway=-1: the edge runs D -> B, and cannot be driven back
    assert (graph.node_osm_id[third.source - 1], graph.node_osm_id[third.target - 1]) == (4, 2)
    assert third.reverse_cost == -1 and third.oneway
    assert third.maxspeed_kmh == pytest.approx(18 * 1.609344)
    assert np.allclose(third.coords[0], D[1:]) and np.allclose(third.coords[-1], B[1:])
    assert "left out 1 ways the car profile cannot use: footway 1" in report.facts


@pytest.mark.parametrize(
    ("tag", "kmh"),
    [
        ("60", 60.0),
        ("60 km/h", 60.0),
        ("30 mph", 30 * 1.609344),
        ("50;30", 50.0),
        ("CN:urban", None),
        ("none", None),
        ("0", None),
        (None, None),
    ],
)
def test_maxspeed_parsing(tag, kmh) -> None:
    assert parse_maxspeed(tag) == (pytest.approx(kmh) if kmh else None)


def test_foot_profile_walks_one_way_streets_both_ways() -> None:
    ways = _ways((11, {"highway": "residential", "oneway": "yes"}, [B, D]))
    edges = build_graph(ways, load_profile("foot"), Report("t")).edges
    assert edges.reverse_cost.iloc[0] == edges.cost.iloc[0] > 0


def test_real_extract_is_refused_without_allow_outside_then_loads(settings, engine) -> None:
    path = FIXTURES / "osm" / "shenzhen_longgang.osm"
    refused = run_cli("etl", "roads", str(path), settings=settings)
    assert refused.returncode == 2
    assert "shenzhen_longgang.osm lies" in refused.stderr
    assert "km from Huicheng District" in refused.stderr
    result = run_cli("etl", "roads", str(path), "--allow-outside", settings=settings)
    assert result.returncode == 0, result.stderr
    assert "largest strongly connected component" in result.stderr
    with engine.connect() as conn:
        nodes, edges = conn.execute(
            sa.text(
                "SELECT (SELECT count(*) FROM geoservice.current_road_node), count(*) "
                "FROM road_edges"
            )
        ).one()
        reached = conn.execute(
            sa.text(
                "SELECT count(*) FROM pgr_drivingDistance("
                "'SELECT id, source, target, cost, reverse_cost FROM road_edges', "
                "(SELECT source FROM road_edges ORDER BY id LIMIT 1), 300)"
            )
        ).scalar_one()
    assert 400 < nodes < 8_005 and 600 < edges < 10_000
    assert reached > 50
    share = float(result.stderr.split("nodes (")[1].split("%")[0])
    assert share > 70  # a clipped extract: dual carriageways cut at its edge


def test_bz2_extract_and_graphml(settings, engine, tmp_path) -> None:
    import osmnx

    path = FIXTURES / "osm" / "west_oakland.osm.bz2"
    result = run_cli("etl", "roads", str(path), "--allow-outside", settings=settings)
    assert result.returncode == 0, result.stderr
    graph = osmnx.graph_from_xml(path, simplify=True, retain_all=False)
    graphml = tmp_path / "oakland.graphml"
    osmnx.save_graphml(graph, graphml)
    result = run_cli("etl", "roads", str(graphml), "--allow-outside", settings=settings)
    assert result.returncode == 0, result.stderr
    with engine.connect() as conn:
        edges = conn.execute(sa.text("SELECT count(*) FROM road_edges")).scalar_one()
    car = load_profile("car")
    highways = [d["highway"] for _, _, d in graph.edges(data=True)]
    drivable = [h for h in highways if car.drivable(h[0] if isinstance(h, list) else h)]
    assert edges == len(drivable)


def test_pbf_reads_like_the_xml_it_came_from(tmp_path) -> None:
    import osmium

    from etl.roads import read_osm

    xml = FIXTURES / "osm" / "west_oakland.osm.bz2"
    pbf = tmp_path / "west_oakland.osm.pbf"
    writer = osmium.SimpleWriter(str(pbf))
    for item in osmium.FileProcessor(str(xml)):
        writer.add(item)
    writer.close()
    car = load_profile("car")
    a = build_graph(read_osm(xml), car, Report("xml")).edges
    b = build_graph(read_osm(pbf), car, Report("pbf")).edges
    assert len(a) == len(b) > 40
    assert np.allclose(a.cost, b.cost, atol=1e-6)


def test_demo_edges_run_from_source_to_target(demo_engine) -> None:
    with demo_engine.connect() as conn:
        wrong = conn.execute(
            sa.text(
                "SELECT count(*) FROM road_edges e "
                "JOIN geoservice.current_road_node s ON s.id = e.source "
                "JOIN geoservice.current_road_node t ON t.id = e.target "
                "WHERE NOT ST_Equals(ST_StartPoint(e.geom), s.geom) "
                "   OR NOT ST_Equals(ST_EndPoint(e.geom), t.geom)"
            )
        ).scalar_one()
        footways = conn.execute(
            sa.text("SELECT count(*) FROM road_edges WHERE highway = 'footway'")
        ).scalar_one()
    assert wrong == 0
    assert footways == 0


def test_bad_road_inputs(settings, tmp_path) -> None:
    text = tmp_path / "roads.txt"
    text.write_text("nothing")
    result = run_cli("etl", "roads", str(text), settings=settings)
    assert result.returncode == 2
    assert "unsupported file type; expected one of .osm, .osm.bz2, .osm.pbf" in result.stderr
    broken = tmp_path / "broken.osm"
    broken.write_text("<osm><way")
    result = run_cli("etl", "roads", str(broken), settings=settings)
    assert result.returncode == 2
    assert "broken.osm: not a readable OSM file" in result.stderr
    result = run_cli("etl", "roads", str(broken), "--profile", "bicycle", settings=settings)
    assert "unknown profile 'bicycle'; expected one of ['car', 'foot']" in result.stderr
