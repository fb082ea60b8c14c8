"""GET /v1/layers/{layer} and the notebook helper."""

from __future__ import annotations

import pytest
import shapely

from geoservice.db import create_engine
from geoservice.layers import read_layer


@pytest.mark.parametrize(
    ("layer", "count"),
    [
        ("district", 1),
        ("town", 16),
        ("unit", 216),
        ("large_grid", 527),
        ("grid", 2556),
        ("station", 232),
        ("patrol_segment", 17),
    ],
)
def test_every_layer(client, layer, count) -> None:
    response = client.get(f"/v1/layers/{layer}")
    assert response.status_code == 200
    body = response.json()
    assert body["type"] == "FeatureCollection" and len(body["features"]) == count
    props = body["features"][0]["properties"]
    assert {"code", "name", "parent_code"} <= set(props)
    assert "phone" not in response.text


def test_bbox_filters(client) -> None:
    box = "114.40,23.10,114.42,23.12"
    features = client.get("/v1/layers/grid", params={"bbox": box}).json()["features"]
    assert 0 < len(features) < 2556
    area = shapely.box(114.40, 23.10, 114.42, 23.12)
    assert all(
        shapely.geometry.shape(f["geometry"]).intersects(area.buffer(0.01)) for f in features
    )


@pytest.mark.parametrize(
    ("url", "status", "fragment"),
    [
        ("/v1/layers/officer", 404, "no layer 'officer'"),
        ("/v1/layers/grid?bbox=1,2,3", 422, "bbox '1,2,3'"),
        ("/v1/layers/grid?bbox=114.5,23,114.4,23.2", 422, "minlon < maxlon"),
        ("/v1/layers/grid?bbox=a,b,c,d", 422, "four numbers"),
    ],
)
def test_bad_requests(client, url, status, fragment) -> None:
    response = client.get(url)
    assert response.status_code == status and fragment in response.json()["detail"]


def test_read_layer_for_notebooks(demo_readonly) -> None:
    engine = create_engine(demo_readonly)
    units = read_layer(engine, "unit")
    engine.dispose()
    assert len(units) == 216 and units.crs.to_epsg() == 4326
    assert set(units["kind"]) == {"village", "community", "scenic_area"}
