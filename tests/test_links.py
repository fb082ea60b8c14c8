"""Links and pages a client can trust: absolute links from ``GEOSERVICE_PUBLIC_URL`` (never
the ``Host`` header), query values re-encoded, pages under a Content-Security-Policy, JSON
bodies only as JSON, TileJSON a key may follow, a tile cache that counts its entries."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pydantic
import pytest
from fastapi.testclient import TestClient

from geoservice.server.app import create_app
from geoservice.settings import Settings
from geoservice.tiles import ENTRY_OVERHEAD_BYTES, TMS, TileCache
from tests.conftest import auth

PUBLIC = "https://gis.example/geoservice"
EVIL = {"Host": "evil.example"}


@pytest.fixture(scope="module")
def public_client(demo_readonly):
    settings = demo_readonly.model_copy(update={"public_url": PUBLIC})
    with TestClient(create_app(settings), headers=auth("planner")) as client:
        yield client


def _hrefs(document) -> list[str]:
    """Every ``href`` and tile URL in a JSON document."""
    found = []

    def walk(node) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "href" or key == "tiles":
                    found.extend(value if isinstance(value, list) else [value])
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(document)
    return found


def test_every_link_is_built_from_the_public_url_never_the_host_header(public_client) -> None:
    paths = [
        "/ogc",
        "/ogc/collections",
        "/ogc/collections/town",
        "/ogc/collections/town/items?limit=2",
        "/ogc/collections/grid/tiles/WebMercatorQuad",
        "/ogc/collections/grid/tiles/WebMercatorQuad/tilejson.json",
        "/ogc/tileMatrixSets",
        "/v1/basemap/tilejson.json",
    ]
    for path in paths:
        response = public_client.get(path, headers=EVIL)
        assert response.status_code == 200, (path, response.text)
        assert "evil.example" not in response.text, path
        links = [h for h in _hrefs(response.json()) if h.startswith(("http:", "https:"))]
        assert links, path
        assert all(h.startswith(PUBLIC + "/") for h in links), (path, links)
    html = public_client.get("/ogc/collections/town/items", params={"f": "html"}, headers=EVIL)
    assert "evil.example" not in html.text and PUBLIC in html.text


def test_the_default_public_url_is_the_listen_address() -> None:
    assert Settings(host="127.0.0.1", port=8123).public_base() == "http://127.0.0.1:8123"
    assert Settings(host="::1", port=8000).public_base() == "http://[::1]:8000"
    assert Settings(public_url="https://gis.example/a/").public_base() == "https://gis.example/a"
    for bad in ("ftp://gis.example", "gis.example", "https://gis.example/?x=1", "https://u:p@g.x"):
        with pytest.raises(pydantic.ValidationError, match="GEOSERVICE_PUBLIC_URL"):
            Settings(public_url=bad)


def test_query_values_are_re_encoded_in_self_and_next_links(public_client) -> None:
    page = public_client.get("/ogc/collections/grid/items?q=4413%26limit%3D1&limit=2").json()
    links = {link["rel"]: link["href"] for link in page["links"]}
    query = parse_qs(urlsplit(links["self"]).query)
    assert query == {"q": ["4413&limit=1"], "limit": ["2"]}, links["self"]
    # a page with a next link: every value copied stays one value
    page = public_client.get(
        "/ogc/collections/grid/items?q=4413&limit=2&tag=a%26limit%3D9%23"
    ).json()
    links = {link["rel"]: link["href"] for link in page["links"]}
    for rel in ("self", "next"):
        query = parse_qs(urlsplit(links[rel]).query)
        assert query["limit"] == ["2"] and query["tag"] == ["a&limit=9#"], links[rel]
        assert query["q"] == ["4413"]
    assert "after" in parse_qs(urlsplit(links["next"]).query)
    following = urlsplit(links["next"])
    second = public_client.get(f"{following.path.removeprefix('/geoservice')}?{following.query}")
    assert second.status_code == 200 and second.json()["features"]


def test_the_pages_send_a_strict_content_security_policy(demo_client) -> None:
    for path in ("/map", "/docs"):
        response = demo_client.get(path)
        assert response.status_code == 200
        policy = response.headers["content-security-policy"]
        directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
        assert directives["default-src"] == "'self'" and directives["script-src"] == "'self'"
        assert directives["frame-ancestors"] == "'none'"
        assert response.headers["x-frame-options"] == "DENY"
        # no inline script to allow: every script is a file of the service
        for chunk in response.text.split("<script")[1:]:
            assert chunk.lstrip().startswith('src="/static/'), chunk[:80]
    assert demo_client.get("/static/swagger-ui/init.js").status_code == 200


def test_bodies_must_say_they_are_json(demo_client) -> None:
    body = json.dumps({"points": [[114.41, 23.11]]})
    for content_type in ("text/plain", "application/x-www-form-urlencoded", None, "json"):
        headers = {"content-type": content_type} if content_type else {}
        response = demo_client.post("/v1/locate", content=body, headers=headers)
        assert response.status_code == 415, (content_type, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        detail = response.json()["detail"]
        assert "expected application/json" in detail
        assert (repr(content_type) if content_type else "no Content-Type") in detail
    ok = demo_client.post(
        "/v1/locate", content=body, headers={"content-type": "application/json; charset=utf-8"}
    )
    assert ok.status_code == 200, ok.text
    # OGC API – Features Part 4 types are taken under /ogc/ (and only there)
    for content_type in ("application/geo+json", "application/merge-patch+json"):
        headers = {"content-type": content_type}
        under_ogc = demo_client.post("/ogc/collections/grid/items", content=b"{}", headers=headers)
        assert under_ogc.status_code != 415, under_ogc.text
        elsewhere = demo_client.post("/v1/locate", content=body, headers=headers)
        assert elsewhere.status_code == 415
    refused = demo_client.post(
        "/ogc/collections/grid/items", content=b"{}", headers={"content-type": "text/plain"}
    )
    assert refused.status_code == 415 and "application/geo+json" in refused.json()["detail"]


def test_the_basemap_tilejson_lists_tiles_the_key_may_fetch(demo_client) -> None:
    for role, pinned in (("dispatch", False), ("planner", True)):
        tilejson = demo_client.get("/v1/basemap/tilejson.json", headers=auth(role)).json()
        [template] = tilejson["tiles"]
        assert ("version=" in template) is pinned, template
        tile = TMS.tile(114.41, 23.11, 14)
        filled = template.replace("{z}", "14").replace("{x}", str(tile.x))
        parts = urlsplit(filled.replace("{y}", str(tile.y)))
        url = f"{parts.path}?{parts.query}" if parts.query else parts.path
        answer = demo_client.get(url, headers=auth(role))
        assert answer.status_code == 200, (role, url, answer.text)


def test_the_tile_cache_counts_entries_as_well_as_bytes() -> None:
    by_count = TileCache(max_bytes=10**9, max_entries=5)
    for n in range(10):
        by_count.put(("empty", 1, 14, n, 0), b"")
    assert len(by_count) == 5 and by_count.bytes == 5 * ENTRY_OVERHEAD_BYTES
    assert by_count.get(("empty", 1, 14, 0, 0)) is None  # the oldest went first
    assert by_count.get(("empty", 1, 14, 9, 0)) == b""
    by_bytes = TileCache(max_bytes=4 * ENTRY_OVERHEAD_BYTES, max_entries=10**6)
    for n in range(10):
        by_bytes.put(("empty", 1, 14, n, 0), b"")  # empty tiles cost their entry
    assert len(by_bytes) == 4 and by_bytes.bytes == 4 * ENTRY_OVERHEAD_BYTES
