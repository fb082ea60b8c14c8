"""/health up, down and recovering; errors as problem+json."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from geoservice import datasets
from geoservice.server.app import create_app
from geoservice.settings import Settings
from tests.conftest import auth
from tests.tcp_proxy import TcpProxy, free_port


@pytest.fixture()
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), headers=auth()) as client:
        yield client


def test_health_ok_without_dataset(client: TestClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "up", "dataset_version": None}


def test_health_reports_the_current_version(client: TestClient, engine) -> None:
    version = datasets.publish(engine, {"stations": lambda conn, snapshot_id: 0}, sources=[])
    assert client.get("/health").json()["dataset_version"] == version


def test_health_is_degraded_when_the_database_port_is_closed() -> None:
    url = f"postgresql+psycopg://postgres:x@127.0.0.1:{free_port()}/geoservice"
    with TestClient(create_app(Settings(database_url=url)), headers=auth()) as client:
        response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "degraded", "database": "down", "dataset_version": None}


def test_health_degrades_and_recovers_by_itself(settings: Settings, engine) -> None:
    version = datasets.publish(engine, {"stations": lambda conn, snapshot_id: 0}, sources=[])
    url = settings.sqlalchemy_url()
    proxy = TcpProxy(url.host, url.port)
    proxy.start()
    proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    with TestClient(create_app(Settings(database_url=proxied)), headers=auth()) as client:
        assert client.get("/health").json()["status"] == "ok"
        proxy.cut()
        assert client.get("/health").json() == {
            "status": "degraded",
            "database": "down",
            "dataset_version": version,
        }
        proxy.start()
        assert client.get("/health").json() == {
            "status": "ok",
            "database": "up",
            "dataset_version": version,
        }
    proxy.cut()


def test_unknown_path_is_a_problem_json_404(client: TestClient) -> None:
    response = client.get("/v1/nothing-here")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body == {
        "type": "about:blank",
        "title": "Not Found",
        "status": 404,
        "detail": "no resource at /v1/nothing-here",
    }


def test_wrong_method_is_a_problem_json(client: TestClient) -> None:
    response = client.post("/health")
    assert response.status_code == 405
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 405


def test_openapi_docs_are_served(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    assert "/health" in client.get("/openapi.json").json()["paths"]
