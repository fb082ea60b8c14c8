"""A draft edited over OGC API – Features Part 4, the way QGIS's OAPIF provider edits it.

What the client sends is what QGIS 3.34+ sends (src/providers/wfs/oapif): ``OPTIONS`` on
``…/items`` (``Allow`` must list ``POST``) and on ``…/items/{id}`` (any id: ``PUT``,
``PATCH``, ``DELETE``); ``POST`` of a GeoJSON Feature with ``Content-Type:
application/geo+json`` and no id, reading the new item's URL from ``Location``; ``PUT`` of
the whole Feature; ``PATCH`` with ``application/merge-patch+json`` holding only the
geometry or only the changed properties; ``DELETE``; no ``If-Match`` (the ETag is tested
as a client that sends it would use it).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import orjson
import pytest
import shapely
import sqlalchemy as sa
from fastapi.testclient import TestClient
from shapely.geometry import MultiPolygon, Polygon, mapping, shape

from geoservice.db import create_engine
from geoservice.diff import diff_versions
from geoservice.server.app import create_app
from tests.cli import run_cli
from tests.conftest import auth

GIS = {**auth("gis"), "Content-Type": "application/geo+json"}
PATCH = {**auth("gis"), "Content-Type": "application/merge-patch+json"}
STRIP_DEG = 0.0003  # about 30 m


@pytest.fixture(scope="module")
def settings(make_database, demo_template):
    return make_database(template=demo_template)


@pytest.fixture(scope="module")
def owner(settings):
    engine = create_engine(settings, "owner")
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def app(settings):
    with TestClient(create_app(settings)) as client:
        yield client


def _open(app) -> int:
    answer = app.post("/v1/datasets/drafts", headers=auth("gis"))
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body == {"draft": body["draft"], "ogc": f"/ogc/drafts/{body['draft']}"}
    return body["draft"]


def _neighbours(owner) -> tuple[str, str, str]:
    """Two grids of one large grid sharing an edge longer than 100 m, and the large grid."""
    with owner.connect() as conn:
        return tuple(
            conn.execute(
                sa.text(
                    "SELECT a.code, b.code, a.parent_code FROM geoservice.current_grid a "
                    "JOIN geoservice.current_grid b ON a.parent_code = b.parent_code "
                    "AND a.code < b.code AND ST_Touches(a.geom, b.geom) "
                    "WHERE ST_Length(ST_Intersection(a.geom, b.geom)::geography) > 100 "
                    "ORDER BY a.code, b.code LIMIT 1"
                )
            ).one()
        )


def _feature(app, draft: int, code: str, layer: str = "grid") -> tuple[dict, str]:
    answer = app.get(f"/ogc/drafts/{draft}/collections/{layer}/items/{code}", headers=GIS)
    assert answer.status_code == 200, answer.text
    return answer.json(), answer.headers["etag"]


def _geojson(geometry) -> dict:
    return orjson.loads(orjson.dumps(mapping(geometry)))


def _grids(owner, *codes: str) -> list:
    with owner.connect() as conn:
        return [
            shapely.from_wkb(
                conn.execute(
                    sa.text(
                        "SELECT ST_AsBinary(geom) FROM geoservice.current_grid WHERE code = :c"
                    ),
                    {"c": code},
                ).scalar_one()
            )
            for code in codes
        ]


def _strip(owner, grows: str, shrinks: str):
    """The part of ``shrinks`` within STRIP_DEG of ``grows`` (it meets other grids too)."""
    a, b = _grids(owner, grows, shrinks)
    return a, b, b.intersection(a.buffer(STRIP_DEG))


def _moved_edge(owner, grows: str, shrinks: str):
    """Both grids with a new vertex in the middle of an edge they share, 5 m into
    ``shrinks``: what moving a shared edge with topological editing in QGIS sends."""
    a, b = _grids(owner, grows, shrinks)
    shared = {tuple(p) for p in shapely.get_coordinates(b)}
    ring = [tuple(p) for p in max(a.geoms, key=lambda g: g.area).exterior.coords]
    for p, q in itertools.pairwise(ring):
        if p not in shared or q not in shared or math.dist(p, q) < 2e-4:
            continue
        middle = (np.array(p) + np.array(q)) / 2
        normal = np.array([p[1] - q[1], q[0] - p[0]]) / math.dist(p, q)
        for side in (normal, -normal):
            vertex = tuple(middle + side * 5e-5)
            a2, b2 = _inserted(a, p, q, vertex), _inserted(b, p, q, vertex)
            if a2.is_valid and b2.is_valid and a2.area > a.area and b2.area < b.area:
                return a, b, a2, b2
    raise AssertionError(f"no shared edge of {grows} and {shrinks} to move")


def _inserted(geometry: MultiPolygon, p, q, vertex) -> MultiPolygon:
    """``geometry`` with ``vertex`` inserted between ``p`` and ``q`` wherever they follow
    each other on a ring."""

    def ring(coords: list) -> list:
        out = [coords[0]]
        for before, after in itertools.pairwise(coords):
            if {before, after} == {p, q}:
                out.append(vertex)
            out.append(after)
        return out

    return MultiPolygon(
        [
            Polygon(ring(list(g.exterior.coords)), [ring(list(h.coords)) for h in g.interiors])
            for g in geometry.geoms
        ]
    )


def _multi(geometry) -> MultiPolygon:
    polygons = [g for g in getattr(geometry, "geoms", [geometry]) if g.geom_type == "Polygon"]
    return MultiPolygon(polygons)


def test_qgis_moves_an_edge_splits_a_grid_renames_one_and_promote_makes_it_current(
    app, owner, settings
):
    grows, shrinks, large_grid = _neighbours(owner)
    draft = _open(app)
    root = f"/ogc/drafts/{draft}"
    landing = app.get(root, headers={**auth("planner"), "Host": "evil.example"}).json()
    assert {link["rel"] for link in landing["links"]} >= {"conformance", "data", "self"}
    assert not any("evil.example" in link["href"] for link in landing["links"])
    conforms = app.get(f"{root}/conformance", headers=auth("planner")).json()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/create-replace-delete" in (
        conforms
    )
    listed = app.get(f"{root}/collections", headers=auth("planner")).json()["collections"]
    assert [c["id"] for c in listed] == ["district", "town", "unit", "large_grid", "grid"]
    # what QGIS asks before it offers editing
    items = f"{root}/collections/grid/items"
    allow = app.options(items, headers=auth("gis")).headers["allow"]
    assert "POST" in [token.strip() for token in allow.split(",")]
    one = app.options(f"{items}/unknown_id", headers=auth("gis")).headers["allow"]
    assert {"PUT", "PATCH", "DELETE"} <= {token.strip() for token in one.split(",")}
    assert "POST" not in app.options(items, headers=auth("planner")).headers["allow"]

    a, _b, a2, b2 = _moved_edge(owner, grows, shrinks)
    # move the shared edge: shrink first (a gap for a moment), then grow
    shrunk = app.patch(
        f"{items}/{shrinks}", content=orjson.dumps({"geometry": _geojson(b2)}), headers=PATCH
    )
    assert shrunk.status_code == 204, shrunk.text
    grown_feature, _ = _feature(app, draft, grows)
    grown_feature["geometry"] = _geojson(a2)
    grown = app.put(f"{items}/{grows}", content=orjson.dumps(grown_feature), headers=GIS)
    assert grown.status_code == 204, grown.text
    stored, tag = _feature(app, draft, grows)
    assert shape(stored["geometry"]).equals_exact(a2, 0) and tag == grown.headers["etag"]

    # split: a disc inside the grown grid becomes a new grid
    piece = a2.representative_point().buffer(0.0002)
    assert a2.contains(piece)
    rest = _multi(a2.difference(piece))
    assert app.patch(
        f"{items}/{grows}", content=orjson.dumps({"geometry": _geojson(rest)}), headers=PATCH
    ).is_success
    new = {
        "type": "Feature",
        "properties": {"code": "441302999001", "name": "新网格", "parent_code": large_grid},
        "geometry": _geojson(_multi(piece)),
    }
    created = app.post(items, content=orjson.dumps(new), headers={**GIS, "Host": "evil.example"})
    assert created.status_code == 201, created.text
    location = created.headers["location"]
    assert location.endswith(f"{root}/collections/grid/items/441302999001")
    assert "evil.example" not in location
    fetched = app.get(location, headers=auth("planner")).json()
    assert fetched["properties"]["name"] == "新网格"

    # rename a third grid with a properties-only patch
    with owner.connect() as conn:
        other = conn.execute(
            sa.text(
                "SELECT code FROM geoservice.current_grid WHERE code NOT IN (:a, :b) "
                "ORDER BY code LIMIT 1"
            ),
            {"a": grows, "b": shrinks},
        ).scalar_one()
    renamed = app.patch(
        f"{items}/{other}",
        content=orjson.dumps({"properties": {"name": "改名网格"}}),
        headers=PATCH,
    )
    assert renamed.status_code == 204, renamed.text

    # the current version is untouched until promoted
    current = app.get(f"/ogc/collections/grid/items/{grows}", headers=auth("planner")).json()
    assert shape(current["geometry"]).hausdorff_distance(a) < 1e-7  # 8 decimals
    with owner.connect() as conn:
        parent = conn.execute(
            sa.text("SELECT parent_id FROM geoservice.dataset_version WHERE id = :v"),
            {"v": draft},
        ).scalar_one()
    promoted = run_cli("promote", str(draft), "--by", "测绘员", settings=settings, timeout=600)
    assert promoted.returncode == 0, promoted.stderr
    assert f"checking draft {draft}" in promoted.stderr
    grids = diff_versions(owner, parent, draft).layers["grid"]
    assert grids.added == ["441302999001"]
    assert sorted(grids.geometry) == sorted([grows, shrinks])
    assert grids.attributes == [other] and grids.removed == []
    entries = orjson.loads(run_cli("audit", "--json", settings=settings).stdout)
    edits = [e for e in entries if e["action"] == "edit" and e["version_id"] == draft]
    assert len(edits) == 5 and {e["actor"] for e in edits} == {"test-gis"}


def test_each_edit_is_checked_at_once_and_a_refused_one_changes_nothing(app, owner):
    grows, shrinks, large_grid = _neighbours(owner)
    draft = _open(app)
    items = f"/ogc/drafts/{draft}/collections/grid/items"
    feature, tag = _feature(app, draft, grows)
    a, _b, strip = _strip(owner, grows, shrinks)

    def refused(method: str, url: str, body, headers=GIS, status=422) -> str:
        answer = app.request(method, url, content=orjson.dumps(body), headers=headers)
        assert answer.status_code == status, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        return answer.json()["detail"]

    overlap = {**feature, "geometry": _geojson(_multi(a.union(strip)))}
    assert f"overlaps grid {shrinks} by" in refused("PUT", f"{items}/{grows}", overlap)
    outside = {**feature, "geometry": _geojson(_multi(a.buffer(0.002)))}
    assert f"outside its large grid {large_grid}" in refused("PUT", f"{items}/{grows}", outside)
    orphan = {**feature, "properties": {**feature["properties"], "parent_code": "nope"}}
    assert "parent_code 'nope' is not a large grid" in refused("PUT", f"{items}/{grows}", orphan)
    bowtie = {"type": "Polygon", "coordinates": [[[114.4, 23.0], [114.41, 23.01], [114.41, 23.0],
                                                  [114.4, 23.01], [114.4, 23.0]]]}  # fmt: skip
    assert "Self-intersection" in refused("PATCH", f"{items}/{grows}", {"geometry": bowtie}, PATCH)
    point = {"geometry": {"type": "Point", "coordinates": [114.4, 23.0]}}
    assert "expected a GeoJSON Polygon" in refused("PATCH", f"{items}/{grows}", point, PATCH)
    extra = {"properties": {"colour": "red"}}
    assert "['colour']" in refused("PATCH", f"{items}/{grows}", extra, PATCH)
    population = {"properties": {"population": -3}}
    assert "population -3" in refused("PATCH", f"{items}/{grows}", population, PATCH)
    assert "already in draft" in refused("POST", items, feature, status=409)
    no_code = {**feature, "id": None, "properties": {"name": "x", "parent_code": large_grid}}
    assert "properties.code is missing" in refused("POST", items, no_code)
    assert "not the one in the path" in refused("PUT", f"{items}/{shrinks}", feature)
    text = {**auth("gis"), "Content-Type": "text/plain"}
    assert "'text/plain'" in refused("PUT", f"{items}/{grows}", feature, text, 415)
    patch_type = {**auth("gis"), "Content-Type": "application/merge-patch+json"}
    assert "expected application/geo+json" in refused(
        "PUT", f"{items}/{grows}", feature, patch_type, 415
    )
    assert refused("PUT", f"{items}/{grows}", feature, {**GIS, **auth("planner")}, 403)
    # a large grid its grids still name cannot go
    gone = app.delete(f"/ogc/drafts/{draft}/collections/large_grid/items/{large_grid}",
                      headers=auth("gis"))  # fmt: skip
    assert gone.status_code == 422 and "still name it as their parent" in gone.json()["detail"]
    # If-Match: the ETag read, or a 412 once another edit came between
    renamed = app.patch(
        f"{items}/{grows}",
        content=orjson.dumps({"properties": {"name": "甲"}}),
        headers={**PATCH, "If-Match": tag},
    )
    assert renamed.status_code == 204, renamed.text
    stale = refused(
        "PATCH", f"{items}/{grows}", {"properties": {"name": "乙"}}, {**PATCH, "If-Match": tag}, 412
    )
    assert "read it again" in stale
    after, _ = _feature(app, draft, grows)
    assert after["properties"]["name"] == "甲" and shape(after["geometry"]).equals(a)
    # only drafts are edited; unknown drafts are 404
    assert app.get("/ogc/drafts/1/collections", headers=auth("planner")).status_code == 409
    assert app.get("/ogc/drafts/999999", headers=auth("planner")).status_code == 404
    roads = app.options(f"/ogc/drafts/{draft}/collections/road/items", headers=auth("gis"))
    assert roads.status_code == 404 and "editable collection" in roads.json()["detail"]


def test_promote_checks_the_whole_draft(app, owner, settings, tmp_path):
    grows, shrinks, _large_grid = _neighbours(owner)
    draft = _open(app)
    items = f"/ogc/drafts/{draft}/collections/grid/items"
    _a, b, strip = _strip(owner, grows, shrinks)
    # shrinking alone is allowed while editing, and leaves a gap in the large grid
    shrunk = app.patch(
        f"{items}/{shrinks}",
        content=orjson.dumps({"geometry": _geojson(_multi(b.difference(strip)))}),
        headers=PATCH,
    )
    assert shrunk.status_code == 204, shrunk.text
    with owner.connect() as conn:
        current = conn.execute(sa.text("SELECT version_id FROM geoservice.current_dataset"))
        before = current.scalar_one()
    problems = tmp_path / "problems.gpkg"
    refused = run_cli(
        "promote", str(draft), "--problems", str(problems), settings=settings, timeout=600
    )
    assert refused.returncode == 2, refused.stderr
    assert "gap" in refused.stderr and "nothing was published" in refused.stderr
    assert problems.exists()
    with owner.connect() as conn:
        still = conn.execute(sa.text("SELECT version_id FROM geoservice.current_dataset"))
        assert still.scalar_one() == before
        status = conn.execute(
            sa.text("SELECT status FROM geoservice.dataset_version WHERE id = :v"), {"v": draft}
        ).scalar_one()
    assert status == "draft"


def test_the_writer_cannot_repoint_a_published_version(settings, owner):
    writer = create_engine(settings, "writer")
    try:
        with pytest.raises(sa.exc.DBAPIError, match="is not a draft"), writer.begin() as conn:
            conn.execute(
                sa.text(
                    "UPDATE geoservice.dataset_version_layer SET snapshot_id = snapshot_id "
                    "WHERE version_id = 1 AND layer = 'grid'"
                )
            )
        with pytest.raises(sa.exc.DBAPIError, match="permission denied"), writer.begin() as conn:
            conn.execute(
                sa.text("UPDATE geoservice.dataset_version_layer SET layer = 'town' WHERE false")
            )
    finally:
        writer.dispose()
