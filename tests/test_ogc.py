"""OGC API – Features and vector tiles, read by GDAL's OAPIF driver and decoded as MVT."""

from __future__ import annotations

import subprocess
from urllib.parse import urlsplit

import mapbox_vector_tile
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from geoservice.server.app import create_app
from geoservice.tiles import TMS
from tests.conftest import TEST_KEYS, auth
from tests.server import serving

COLLECTIONS = {
    "district",
    "town",
    "unit",
    "large_grid",
    "grid",
    "station",
    "patrol_segment",
    "road",
}


def local(url: str) -> str:
    """A link's path and query (links carry GEOSERVICE_PUBLIC_URL, not the test client's)."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def _gdal(*args: str, key: str = TEST_KEYS["planner"]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [args[0], "--config", "GDAL_HTTP_HEADERS", f"X-API-Key: {key}", *args[1:]],
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def server(demo_readonly, tmp_path_factory):
    with serving(demo_readonly, tmp_path_factory.mktemp("ogc")) as running:
        yield running


def test_ogrinfo_lists_the_eight_collections(server):
    result = _gdal("ogrinfo", f"OAPIF:{server.url}/ogc")
    assert result.returncode == 0, result.stderr
    listed = {
        line.split(":")[1].split("(")[0].strip()
        for line in result.stdout.splitlines()
        if line[:1].isdigit()
    }
    assert listed == COLLECTIONS


def test_ogr2ogr_pages_every_grid_into_a_geopackage(server, tmp_path):
    out = tmp_path / "grids.gpkg"
    result = _gdal(
        "ogr2ogr", "-f", "GPKG", str(out), f"OAPIF:{server.url}/ogc", "grid", "-oo", "PAGE_SIZE=500"
    )
    assert result.returncode == 0, result.stderr
    info = subprocess.run(["ogrinfo", "-so", str(out), "grid"], capture_output=True, text=True)
    assert "Feature Count: 2556" in info.stdout and "Multi Polygon" in info.stdout
    pages = [
        line
        for line in server.stderr().splitlines()
        if '"route":"/ogc/collections/{collection_id}/items"' in line
    ]
    assert len(pages) >= 6  # 2,556 grids, 500 a page: paged, not one whole read


def test_without_a_planner_key_gdal_is_refused(server):
    result = _gdal("ogrinfo", f"OAPIF:{server.url}/ogc", key=TEST_KEYS["dispatch"])
    assert result.returncode != 0


def test_items_page_by_key_and_filter(demo_client, demo_engine):
    first = demo_client.get("/ogc/collections/grid/items", params={"limit": 1000}).json()
    assert first["type"] == "FeatureCollection" and first["numberReturned"] == 1000
    ids = [f["id"] for f in first["features"]]
    assert ids == sorted(ids)
    following = next(link["href"] for link in first["links"] if link["rel"] == "next")
    assert f"after={ids[-1]}" in following and "limit=1000" in following
    second = demo_client.get(local(following)).json()
    assert second["features"][0]["id"] > ids[-1]
    bbox = demo_client.get(
        "/ogc/collections/grid/items", params={"bbox": "114.40,23.10,114.42,23.12", "limit": 5000}
    ).json()
    assert 0 < bbox["numberReturned"] < 2556
    assert not any(link["rel"] == "next" for link in bbox["links"])
    found = demo_client.get("/ogc/collections/unit/items", params={"q": "东平"}).json()
    assert found["features"] and all("东平" in f["properties"]["name"] for f in found["features"])
    road = demo_client.get("/ogc/collections/road/items", params={"limit": 3}).json()
    assert [f["id"] for f in road["features"]] == ["1", "2", "3"]
    one = demo_client.get(f"/ogc/collections/grid/items/{ids[0]}").json()
    assert one["id"] == ids[0] and one["geometry"]["type"] == "MultiPolygon"
    for path, status in (
        ("/ogc/collections/officer/items", 404),
        ("/ogc/collections/grid/items/nope", 404),
        ("/ogc/collections/road/items/nope", 404),
        ("/ogc/collections/grid/items?limit=0", 422),
        ("/ogc/collections/grid/items?bbox=1,2,3", 422),
    ):
        response = demo_client.get(path)
        assert response.status_code == status, (path, response.text)
        assert response.headers["content-type"] == "application/problem+json"


def test_landing_conformance_collections_and_html(demo_client):
    landing = demo_client.get("/ogc").json()
    rels = {link["rel"] for link in landing["links"]}
    assert {"self", "conformance", "data", "service-desc"} <= rels
    conformance = demo_client.get("/ogc/conformance").json()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson" in conformance
    collections = demo_client.get("/ogc/collections").json()["collections"]
    assert {c["id"] for c in collections} == COLLECTIONS
    grid = next(c for c in collections if c["id"] == "grid")
    west, south, east, north = grid["extent"]["spatial"]["bbox"][0]
    assert 114.0 < west < east < 114.9 and 22.8 < south < north < 23.5
    assert grid["extent"]["spatial"]["crs"].endswith("CRS84")
    page = demo_client.get("/ogc/collections/town/items", params={"f": "html"})
    assert page.headers["content-type"].startswith("text/html")
    assert "桥东街道" in page.text
    assert "<script" not in page.text and "src=" not in page.text  # nothing to load from outside
    assert demo_client.get("/ogc/collections", params={"f": "html"}).text.startswith("<!doctype")


def test_tilejson_and_tiles_decode_and_are_cached(demo_client):
    tilejson = demo_client.get("/ogc/collections/grid/tiles/WebMercatorQuad/tilejson.json").json()
    assert tilejson["tilejson"] == "3.0.0" and tilejson["vector_layers"][0]["id"] == "grid"
    template = local(tilejson["tiles"][0])
    tile = TMS.tile(114.41, 23.11, 14)
    url = template.replace("{z}", "14").replace("{x}", str(tile.x)).replace("{y}", str(tile.y))
    first = demo_client.get(url)
    assert first.status_code == 200
    assert first.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    decoded = mapbox_vector_tile.decode(first.content)
    codes = {f["properties"]["code"] for f in decoded["grid"]["features"]}
    assert len(codes) > 10 and all(code.startswith("441302") for code in codes)
    again = demo_client.get(url, headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    basemap = demo_client.get(f"/v1/basemap/14/{tile.x}/{tile.y}", headers=auth("dispatch"))
    layers = set(mapbox_vector_tile.decode(basemap.content))
    assert {"grid", "unit", "town", "road", "station"} <= layers
    low = demo_client.get(
        f"/v1/basemap/8/{TMS.tile(114.41, 23.11, 8).x}/{TMS.tile(114.41, 23.11, 8).y}"
    )
    assert set(mapbox_vector_tile.decode(low.content)) == {"district", "town"}  # simplified by zoom
    for bad in ("/v1/basemap/25/0/0", "/v1/basemap/3/9/0"):
        assert demo_client.get(bad).status_code == 422
    assert demo_client.get(url, headers=auth("dispatch")).status_code == 403


def test_tiles_follow_the_version_read(demo_settings, demo_engine, demo_files, tmp_path):
    import geopandas as gpd

    from tests.cli import run_cli

    towns = gpd.read_file(demo_files.boundaries, layer="town")
    towns.loc[0, "name"] = "新桥东街道"
    path = tmp_path / "town.geojson"
    towns.to_file(path)
    assert (
        run_cli(
            "etl", "boundaries", str(path), "--layer", "town", settings=demo_settings
        ).returncode
        == 0
    )
    with demo_engine.connect() as conn:
        current = conn.execute(
            sa.text("SELECT version_id FROM geoservice.current_dataset")
        ).scalar()
    tile = TMS.tile(114.43, 23.11, 10)
    with TestClient(create_app(demo_settings), headers=auth("planner")) as client:
        path = f"/ogc/collections/town/tiles/WebMercatorQuad/10/{tile.y}/{tile.x}"
        names = {
            version: {
                f["properties"]["name"]
                for f in mapbox_vector_tile.decode(
                    client.get(path, params={"version": version}).content
                )["town"]["features"]
            }
            for version in (1, current)
        }
    assert "新桥东街道" in names[current] and "新桥东街道" not in names[1]
