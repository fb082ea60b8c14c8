"""GET/POST /v1/locate over the real app: answers, bad input, hot swap of dataset versions."""

from __future__ import annotations

import threading

import numpy as np
import orjson
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from geoservice.crs import wgs84_to_gcj02
from geoservice.server.app import create_app
from tests.cli import run_cli
from tests.conftest import auth


def _problem(response, status: int, fragment: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status and fragment in body["detail"], body


def test_get_locate_answers_like_the_python_api(client, demo_index) -> None:
    response = client.get("/v1/locate", params={"lon": 114.41, "lat": 23.11})
    assert response.status_code == 200
    assert response.json() == demo_index.locate(114.41, 23.11)
    body = response.json()
    assert body["status"] == "inside" and body["town"]["name"] == "桥西街道"
    assert body["officers"] and "phone" not in response.text


def test_get_with_gcj02_reports_the_wgs84_point(client) -> None:
    x, y = wgs84_to_gcj02(114.41, 23.11)
    body = client.get(
        "/v1/locate", params={"lon": float(x), "lat": float(y), "crs": "gcj02"}
    ).json()
    assert body["point"]["lon"] == pytest.approx(114.41, abs=1e-9)
    assert body["point"]["lat"] == pytest.approx(23.11, abs=1e-9)


def test_post_batch_is_in_input_order_and_equals_get(client, demo_index) -> None:
    rng = np.random.default_rng(9)
    points = np.column_stack([rng.uniform(114.1, 114.8, 500), rng.uniform(22.9, 23.43, 500)])
    response = client.post("/v1/locate", json={"crs": "wgs84", "points": points.tolist()})
    assert response.status_code == 200
    body = response.json()
    assert body["dataset_version"] == demo_index.version
    assert body["results"] == [demo_index.locate(x, y) for x, y in points]
    for x, y in points[:20]:
        assert client.get("/v1/locate", params={"lon": x, "lat": y}).json() in body["results"]
    objects = [{"lon": x, "lat": y} for x, y in points[:50].tolist()]
    mixed = client.post("/v1/locate", json={"points": [*objects, *points[50:100].tolist()]})
    assert mixed.status_code == 200, mixed.text
    assert mixed.json()["results"] == body["results"][:100]  # {lon, lat} is [lon, lat]
    bad = client.post("/v1/locate", json={"points": [{"lon": 114.41}]})
    assert bad.status_code == 422 and "{lon, lat}" in bad.json()["detail"]


def test_the_cli_gives_the_same_answer(demo_readonly, client) -> None:
    result = run_cli("locate", "114.41", "23.11", settings=demo_readonly)
    assert result.returncode == 0, result.stderr
    assert (
        orjson.loads(result.stdout)
        == client.get("/v1/locate", params={"lon": 114.41, "lat": 23.11}).json()
    )
    bad = run_cli("locate", "23.11", "114.41", settings=demo_readonly)
    assert bad.returncode == 2
    assert "looks like lat, lon" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"lat": "23.1"}, "lon is missing"),
        ({"lon": "x", "lat": "23.1"}, "lon 'x' is not a number"),
        ({"lon": "NaN", "lat": "23.1"}, "is not a finite coordinate"),
        ({"lon": "114.4", "lat": "-Infinity"}, "is not a finite coordinate"),
        ({"lon": "181", "lat": "23.1"}, "longitude 181.0 outside [-180, 180]"),
        ({"lon": "23.11", "lat": "114.41"}, "looks like lat, lon"),
        ({"lon": "114.4", "lat": "23.1", "crs": "EPSG:99999"}, "unknown CRS 'EPSG:99999'"),
        ({"lon": "114.4", "lat": "23.1", "crs": "mars"}, "unknown CRS 'mars'"),
    ],
)
def test_bad_get_requests_are_422_naming_the_value(client, params, fragment) -> None:
    _problem(client.get("/v1/locate", params=params), 422, fragment)


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        (b"{not json", 422, "body is not valid JSON"),
        (b"[1, 2]", 422, 'body must be an object {"crs"'),
        (b'{"points": []}', 422, "points is empty"),
        (b'{"points": [[114.4, 23.1, 5]]}', 422, "points[0] is [114.4, 23.1, 5]"),
        (b'{"points": [[114.4, true]]}', 422, "points[0] has True"),
        (b'{"points": [[114.4, 23.1]], "crs": 4326}', 422, "crs 4326 must be a string"),
        (b'{"points": [[114.4, 23.1]], "crs": "bogus"}', 422, "unknown CRS 'bogus'"),
        (b'{"points": [[23.1, 114.4]]}', 422, "point 0: (23.1, 114.4) looks like lat, lon"),
    ],
)
def test_bad_post_bodies(client, body, status, fragment) -> None:
    response = client.post("/v1/locate", content=body, headers={"content-type": "application/json"})
    _problem(response, status, fragment)


def test_oversized_batches_are_413(client) -> None:
    points = [[114.4, 23.1]] * 100_001
    _problem(client.post("/v1/locate", json={"points": points}), 413, "100,001 points")
    huge = b'{"points": [' + b"[114.41, 23.11]," * 600_000 + b"[114.4, 23.1]]}"
    response = client.post("/v1/locate", content=huge, headers={"content-type": "application/json"})
    _problem(response, 413, "over the limit of 8,388,608")


def test_a_full_batch_of_100000_points_is_answered(client) -> None:
    rng = np.random.default_rng(2)
    points = np.column_stack([rng.uniform(114.3, 114.5, 100_000), rng.uniform(23.0, 23.2, 100_000)])
    response = client.post("/v1/locate", json={"points": points.tolist()})
    assert response.status_code == 200
    assert len(response.json()["results"]) == 100_000


def test_new_versions_swap_in_without_restart_and_never_mix(
    demo_settings, demo_engine, demo_files, tmp_path
) -> None:
    officers = pd.read_csv(demo_files.officers, dtype=str)
    renamed = officers.assign(name=officers.name + "·新")
    path = tmp_path / "officers_v2.csv"
    renamed.to_csv(path, index=False)
    seen: list[dict] = []
    with TestClient(create_app(demo_settings), headers=auth()) as client:
        first = client.get("/v1/locate", params={"lon": 114.41, "lat": 23.11}).json()
        publisher = threading.Thread(
            target=run_cli, args=("etl", "officers", str(path)), kwargs={"settings": demo_settings}
        )
        publisher.start()
        for _ in range(3000):
            seen.append(client.get("/v1/locate", params={"lon": 114.41, "lat": 23.11}).json())
            if seen[-1]["dataset_version"] > first["dataset_version"]:
                break
        publisher.join()
        for _ in range(600):  # the listener rebuilds in the background
            answer = client.get("/v1/locate", params={"lon": 114.41, "lat": 23.11}).json()
            seen.append(answer)
            if answer["dataset_version"] > first["dataset_version"]:
                break
            threading.Event().wait(0.05)
    old, new = first["dataset_version"], first["dataset_version"] + 1
    assert seen[-1]["dataset_version"] == new
    for answer in seen:
        renamed_names = all(o["name"].endswith("·新") for o in answer["officers"])
        assert renamed_names == (answer["dataset_version"] == new), answer
        assert answer["dataset_version"] in (old, new)
