"""Ready for a police intranet: keys and roles, the audit log, least-privilege database
roles, metrics, the access log, offline docs, a typed contract a generated client uses."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
import urllib.request

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from geoservice import datasets
from geoservice.audit import Actor
from geoservice.db import create_engine
from geoservice.keys import digest
from geoservice.server.app import create_app
from tests.cli import run_cli
from tests.conftest import TEST_KEYS, auth
from tests.server import serving

ROLE_CHECKS = [
    # (method, path, body, least role)
    ("GET", "/v1/locate?lon=114.41&lat=23.11", None, "dispatch"),
    ("POST", "/v1/locate", {"points": [[114.41, 23.11]]}, "dispatch"),
    ("GET", "/v1/isochrones?lon=114.41&lat=23.11&minutes=1", None, "dispatch"),
    ("GET", "/v1/coverage/officers", None, "planner"),
    ("GET", "/v1/coverage/response?minutes=1", None, "planner"),
    ("GET", "/v1/layers/town", None, "planner"),
    ("GET", "/v1/audit", None, "gis"),
    ("GET", "/v1/keys", None, "admin"),
    ("GET", "/metrics", None, "admin"),
]
ORDER = ["tracker", "dispatch", "planner", "gis", "admin"]


def _call(client: TestClient, method: str, path: str, body, headers: dict[str, str]):
    return client.request(method, path, json=body, headers=headers)


def _wait_ready(client: TestClient) -> None:
    for _ in range(600):
        if client.get("/ready").status_code == 200:
            return
        time.sleep(0.1)
    raise AssertionError("never ready")


def test_without_a_key_only_health_ready_docs_and_static_files_answer(demo_readonly):
    with TestClient(create_app(demo_readonly)) as client:
        _wait_ready(client)
        for path in ("/health", "/ready", "/docs", "/openapi.json", "/static/swagger-ui/LICENSE"):
            assert client.get(path).status_code == 200, path
        for method, path, body, _ in [*ROLE_CHECKS, ("GET", "/v1/nothing", None, "")]:
            response = _call(client, method, path, body, {})
            assert response.status_code == 401, (path, response.text)
            assert response.headers["www-authenticate"].startswith("Bearer")
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["title"] == "Unauthorized"
        for bad in ("Bearer nonsense", "Bearer gs_00000000_" + "x" * 43, "Basic abc"):
            response = client.get("/v1/layers/town", headers={"Authorization": bad})
            assert response.status_code == 401, bad


@pytest.mark.parametrize("role", ORDER)
def test_each_role_reaches_what_the_contract_lists_and_gets_403_elsewhere(demo_client, role):
    for method, path, body, least in ROLE_CHECKS:
        response = _call(demo_client, method, path, body, auth(role))
        if ORDER.index(role) >= ORDER.index(least):
            assert response.status_code == 200, (role, path, response.text)
        else:
            assert response.status_code == 403, (role, path, response.text)
            assert response.headers["content-type"] == "application/problem+json"
            assert f"needs {least!r}" in response.json()["detail"]


def test_x_api_key_works_and_request_ids_are_echoed(demo_client):
    response = demo_client.get(
        "/v1/layers/town", headers={"X-API-Key": TEST_KEYS["planner"], "X-Request-ID": "abc-123"}
    )
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "abc-123"
    made = {demo_client.get("/health").headers["x-request-id"] for _ in range(3)}
    assert len(made) == 3 and all(len(rid) == 24 for rid in made)  # new and unique


def test_keys_are_created_listed_revoked_and_stored_as_hashes(demo_settings, demo_engine):
    created = run_cli(
        "keys", "create", "cad-1", "--role", "dispatch", "--by", "王工", settings=demo_settings
    )
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]
    assert key.startswith("gs_") and len(key) == 55
    with demo_engine.connect() as conn:
        row = (
            conn.execute(sa.text("SELECT * FROM geoservice.api_key WHERE name = 'cad-1'"))
            .mappings()
            .one()
        )
    assert row["key_hash"] == digest(key) and key not in json.dumps(dict(row), default=str)
    listed = run_cli("keys", "list", "--json", settings=demo_settings)
    assert key not in listed.stdout
    assert {"name": "cad-1", "role": "dispatch"}.items() <= next(
        k for k in json.loads(listed.stdout) if k["name"] == "cad-1"
    ).items()
    with TestClient(create_app(demo_settings)) as client:
        ok = client.get(
            "/v1/locate",
            params={"lon": 114.41, "lat": 23.11},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert ok.status_code == 200
        assert run_cli("keys", "revoke", "cad-1", settings=demo_settings).returncode == 0
        for _ in range(100):  # NOTIFY reaches the server within moments
            refused = client.get(
                "/v1/locate",
                params={"lon": 114.41, "lat": 23.11},
                headers={"Authorization": f"Bearer {key}"},
            )
            if refused.status_code == 401:
                break
            time.sleep(0.1)
        assert refused.status_code == 401
    again = run_cli("keys", "revoke", "cad-1", settings=demo_settings)
    assert again.returncode == 2 and "revoked already" in again.stderr
    for bad, message in (
        (("create", "x y", "--role", "admin"), "letters, digits"),
        (("create", "ok", "--role", "root"), "role 'root' is unknown"),
        (("create", "cad-1", "--role", "admin"), "exists already"),
        (("revoke", "nobody"), "no key named 'nobody'"),
    ):
        result = run_cli("keys", *bad, settings=demo_settings)
        assert result.returncode == 2 and message in result.stderr, result.stderr


def test_over_its_rate_a_key_gets_429_with_retry_after(demo_settings):
    created = run_cli(
        "keys",
        "create",
        "slow",
        "--role",
        "dispatch",
        "--rate",
        "1",
        "--burst",
        "3",
        settings=demo_settings,
    )
    key = created.stdout.strip().splitlines()[-1]
    with TestClient(create_app(demo_settings)) as client:
        params = {"lon": 114.41, "lat": 23.11}
        statuses = [
            client.get("/v1/locate", params=params, headers={"X-API-Key": key}) for _ in range(5)
        ]
    assert [r.status_code for r in statuses[:3]] == [200, 200, 200]
    limited = statuses[-1]
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) >= 1
    assert "over its rate of 1 requests per second" in limited.json()["detail"]


def test_the_local_admin_key_is_made_once_with_mode_600(settings, tmp_path):
    env = {"GEOSERVICE_DATA_DIR": str(tmp_path)}
    first = run_cli("keys", "local-admin", settings=settings, env=env)
    assert first.returncode == 0, first.stderr
    path = tmp_path / "admin.key"
    key = path.read_text().strip()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and key.startswith("gs_")
    assert str(path) in first.stdout
    run_cli("keys", "local-admin", settings=settings, env=env)
    assert path.read_text().strip() == key
    with TestClient(create_app(settings)) as client:
        assert client.get("/metrics", headers={"X-API-Key": key}).status_code == 200


# --- audit -------------------------------------------------------------------------------------


def test_the_audit_log_says_who_published_rolled_back_and_managed_keys(
    demo_settings, demo_engine, demo_files
):
    result = run_cli(
        "etl",
        "stations",
        str(demo_files.stations),
        "--by",
        "李四",
        "--note",
        "posts moved",
        "--force",  # the demo's own stations: no change, published anyway
        settings=demo_settings,
    )
    assert result.returncode == 0, result.stderr
    for version in (1, 2, 1):
        assert run_cli("rollback", str(version), settings=demo_settings).returncode == 0
    run_cli(
        "keys", "create", "audited", "--role", "planner", "--by", "admin-张", settings=demo_settings
    )
    run_cli("keys", "revoke", "audited", settings=demo_settings)
    entries = json.loads(run_cli("audit", "--json", settings=demo_settings).stdout)
    actions = [(e["action"], e["version_id"]) for e in reversed(entries)]
    assert actions == [
        ("publish", 1),  # the demo
        ("events_loaded", None),  # its year of grid events
        ("publish", 2),
        ("rollback", 1),
        ("rollback", 2),
        ("rollback", 1),
        ("key_created", None),
        ("key_revoked", None),
    ]
    publish = next(e for e in entries if e["action"] == "publish" and e["version_id"] == 2)
    assert publish["actor"] == "李四" and publish["via"] == "cli" and publish["os_user"]
    assert publish["note"] == "posts moved" and publish["detail"]["layers"] == ["stations"]
    rollbacks = [e for e in entries if e["action"] == "rollback"]
    assert len({e["at"] for e in rollbacks}) == 3  # each its own event, none overwritten
    created = next(e for e in entries if e["action"] == "key_created")
    assert created["actor"] == "admin-张" and created["detail"] == {
        "name": "audited",
        "role": "planner",
    }
    with TestClient(create_app(demo_settings)) as client:
        over_http = client.get("/v1/audit", params={"limit": 50}, headers=auth("gis")).json()
    assert over_http == entries
    table = run_cli("audit", settings=demo_settings)
    assert "李四" in table.stdout and "rollback" in table.stdout


@pytest.mark.parametrize("role", ["reader", "writer", "owner"])
def test_nobody_can_change_or_remove_audit_entries(demo_settings, demo_engine, role):
    datasets.rollback(demo_engine, 1, actor=Actor("t", "cli"))
    engine = create_engine(demo_settings, role)
    try:
        for statement in (
            "UPDATE geoservice.audit_log SET actor = 'someone else'",
            "DELETE FROM geoservice.audit_log",
            "TRUNCATE geoservice.audit_log",
        ):
            with pytest.raises(sa.exc.DBAPIError) as info, engine.begin() as conn:
                conn.execute(sa.text(statement))
            assert "permission denied" in str(info.value) or "append-only" in str(info.value)
    finally:
        engine.dispose()
    with demo_engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM geoservice.audit_log")).scalar() >= 1


# --- least privilege in PostgreSQL --------------------------------------------------------------


def _reader_engines(settings):
    """The API's engine two ways: a login of its own, and the owner's login taking the role."""
    from geoservice.settings import Settings

    values = Settings()._cluster()
    login = settings.sqlalchemy_url().set(
        username="geoservice_api", password=values["API_PASSWORD"]
    )
    own = settings.model_copy(update={"api_database_url": login.render_as_string(False)})
    return [create_engine(own), create_engine(settings)]


def test_the_api_role_reads_but_cannot_write_nor_see_phone_numbers(demo_settings):
    for engine in _reader_engines(demo_settings):
        try:
            with engine.connect() as conn:
                assert conn.execute(sa.text("SELECT count(*) FROM road_edges")).scalar() > 0
                names = conn.execute(sa.text("SELECT code, name FROM geoservice.officer")).all()
                assert len(names) >= 570
            for statement in (
                "SELECT phone FROM geoservice.officer",
                "SELECT * FROM geoservice.officer",
                "SELECT * FROM geoservice.current_officer",
                "INSERT INTO geoservice.snapshot (layer, feature_count, source, sha256) "
                "VALUES ('grid', 0, '', '')",
                "UPDATE geoservice.current_dataset SET version_id = 1",
                "DELETE FROM geoservice.boundary",
                "UPDATE geoservice.api_key SET revoked_at = now()",
                "INSERT INTO geoservice.audit_log (actor, via, action) VALUES ('x', 'cli', 'x')",
                "CREATE TABLE geoservice.x (a int)",
                "DROP VIEW public.road_edges",
            ):
                with pytest.raises(sa.exc.DBAPIError) as info, engine.begin() as conn:
                    conn.execute(sa.text(statement))
                assert "permission denied" in str(info.value) or "must be owner" in str(
                    info.value
                ), statement
        finally:
            engine.dispose()


def test_the_service_runs_as_the_reader(demo_readonly):
    with TestClient(create_app(demo_readonly)) as client:
        service = client.app.app.state.service
        with service.engine.connect() as conn:
            assert conn.execute(sa.text("SELECT current_user")).scalar() == "geoservice_reader"
        assert client.get("/v1/coverage/officers", headers=auth()).status_code == 200


# --- operations -------------------------------------------------------------------------------


def test_metrics_parse_as_prometheus_text(demo_client):
    demo_client.get("/v1/locate", params={"lon": 114.41, "lat": 23.11})
    demo_client.get("/v1/layers/town")
    response = demo_client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    requests = {
        (s.labels["route"], s.labels["status"]) for s in families["geoservice_requests"].samples
    }
    assert {("/v1/locate", "200"), ("/v1/layers/{layer}", "200")} <= requests
    assert "geoservice_request_seconds" in families
    version = families["geoservice_dataset_version"].samples[0].value
    assert version == demo_client.get("/health").json()["dataset_version"]
    builds = {s.labels.get("where") for s in families["geoservice_state_build_seconds"].samples}
    assert {"server", "worker"} <= builds


def test_one_json_access_log_line_per_request(demo_readonly, tmp_path):
    with serving(demo_readonly, tmp_path) as server:
        for path, headers in (
            ("/v1/locate?lon=114.41&lat=23.11", auth("dispatch")),
            ("/v1/layers/town", auth("dispatch")),
            ("/v1/layers/nowhere", auth("planner")),
            ("/health", {"X-Request-ID": "trace-7"}),
        ):
            request = urllib.request.Request(server.url + path, headers=headers)
            try:
                urllib.request.urlopen(request, timeout=30).read()
            except urllib.error.HTTPError as error:
                error.read()
        time.sleep(0.5)
        lines = [json.loads(x) for x in server.stderr().splitlines() if x.startswith("{")]
    requests = [x for x in lines if "request_id" in x]
    by_route = {(x["route"], x["status"]): x for x in requests}
    assert set(requests[0]) == {"time", "request_id", "key", "method", "route", "status", "ms"}
    assert by_route[("/v1/locate", 200)]["key"] == "test-dispatch"
    assert ("/v1/layers/{layer}", 403) in by_route
    assert ("/v1/layers/{layer}", 404) in by_route
    assert by_route[("/health", 200)]["request_id"] == "trace-7"
    assert all(x["ms"] >= 0 for x in requests)


def test_docs_need_nothing_from_outside(demo_client):
    html = demo_client.get("/docs").text
    assert "/static/swagger-ui/swagger-ui-bundle.js" in html
    for url in ("http://", "https://"):
        assert url not in html.replace("http://www.w3.org", "")
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        assert demo_client.get(f"/static/swagger-ui/{asset}").status_code == 200


def test_serve_refuses_auth_off_beyond_loopback_and_a_behind_schema(make_database, settings):
    off = run_cli("serve", "--host", "0.0.0.0", settings=settings, env={"GEOSERVICE_AUTH": "off"})
    assert off.returncode == 2 and "GEOSERVICE_AUTH=off is refused" in off.stderr
    behind = make_database(migrate=False)
    owner = create_engine(behind, "owner")
    from geoservice.db import upgrade

    upgrade(owner, "0003")  # before the API's role had its grants
    refused = run_cli("serve", settings=behind, timeout=60)
    assert refused.returncode == 2
    assert "no readable schema revision" in refused.stderr
    assert "geoservice db upgrade" in refused.stderr
    upgrade(owner)
    with owner.begin() as conn:  # one revision behind the code
        conn.execute(sa.text("UPDATE geoservice.alembic_version SET version_num = '0003'"))
    owner.dispose()
    refused = run_cli("serve", settings=behind, timeout=60)
    assert refused.returncode == 2
    assert "at schema revision 0003" in refused.stderr and "db upgrade" in refused.stderr


def test_auth_off_on_loopback_lets_everyone_in(demo_readonly):
    settings = demo_readonly.model_copy(update={"auth": False})
    with TestClient(create_app(settings)) as client:
        assert client.get("/metrics").status_code == 200
        assert client.get("/v1/layers/town").status_code == 200


# --- the typed contract -----------------------------------------------------------------------


def test_a_generated_client_gets_typed_answers(demo_readonly, tmp_path):
    with serving(demo_readonly, tmp_path) as server:
        schema = tmp_path / "openapi.json"
        schema.write_bytes(urllib.request.urlopen(server.url + "/openapi.json").read())
        bin_dir = os.path.dirname(sys.executable)
        # vector tiles are binary to a Python client (the generator's documented override)
        config = tmp_path / "client.yaml"
        config.write_text(
            "content_type_overrides:\n"
            "  application/vnd.mapbox-vector-tile: application/octet-stream\n"
            "  application/geopackage+sqlite3: application/octet-stream\n"
        )
        generated = subprocess.run(
            [
                os.path.join(bin_dir, "openapi-python-client"),
                "generate",
                "--path",
                str(schema),
                "--output-path",
                str(tmp_path / "gsclient"),
                "--meta",
                "none",
                "--fail-on-warning",
                "--config",
                str(config),
            ],
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"},
        )
        assert generated.returncode == 0, generated.stdout + generated.stderr
        script = f"""
import sys
sys.path.insert(0, {str(tmp_path)!r})
from gsclient import AuthenticatedClient
from gsclient.api.locate import locate, locate_batch
from gsclient.api.isochrones import isochrones
from gsclient.models import Isochrones, LocateBatch, LocateBatchRequest, LocateResult, Problem
client = AuthenticatedClient(base_url={server.url!r}, token={TEST_KEYS["dispatch"]!r})
one = locate.sync(client=client, lon=114.41, lat=23.11)
assert isinstance(one, LocateResult) and one.grid.code.startswith("441302"), one
body = LocateBatchRequest(points=[[114.41, 23.11], [114.0, 23.0]])
batch = locate_batch.sync(client=client, body=body)
assert isinstance(batch, LocateBatch)
assert [r.status.value for r in batch.results] == ["inside", "outside"]
bands = isochrones.sync(client=client, lon=114.41, lat=23.11, minutes="1,3,5")
assert isinstance(bands, Isochrones)
assert [f.properties.minutes for f in bands.features] == [1, 3, 5]
bad = locate.sync_detailed(client=client, lon=23.11, lat=114.41)
assert bad.status_code == 422 and isinstance(bad.parsed, Problem)
assert "lat, lon" in bad.parsed.detail
print("typed answers ok")
"""
        used = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
        )
    assert used.returncode == 0, used.stdout + used.stderr
    assert "typed answers ok" in used.stdout
