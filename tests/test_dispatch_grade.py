"""What a dispatch system meets under real traffic: every batch answer valid JSON that equals
the single lookups, heavy work queued apart from them, one dataset version per request
while versions switch, oversized uploads cut off, database outages answered 503."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import socket
import threading
import time
from concurrent.futures import Future
from pathlib import Path

import numpy as np
import pytest
import shapely
from fastapi.testclient import TestClient

from etl.commands import run_loads
from etl.load import Step
from etl.police import prepare_officers
from etl.roads import prepare_roads
from geoservice import datasets
from geoservice.coverage import Coverage, CoverageModel
from geoservice.isochrones import isochrones
from geoservice.network import load_network
from geoservice.server import workers
from geoservice.server.app import create_app
from geoservice.server.models import LocateBatch, LocateResult
from geoservice.server.workers import Answer, Lane, Reads, Task, WorkerPool, handler
from tests.conftest import TEST_KEYS, auth
from tests.server import serving
from tests.tcp_proxy import TcpProxy
from tests.waiting import wait_until


def strict_json(text: bytes | str):
    """Python's parser with what Jackson or System.Text.Json refuse refused too."""

    def no_duplicates(pairs):
        keys = [k for k, _ in pairs]
        assert len(keys) == len(set(keys)), f"duplicate keys {keys}"
        return dict(pairs)

    def no_constants(name):
        raise ValueError(f"{name} is not JSON")

    return json.loads(text, object_pairs_hook=no_duplicates, parse_constant=no_constants)


def _point_pools(index) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(11)
    minx, miny, maxx, maxy = shapely.total_bounds(index.polygons)
    box = np.column_stack([rng.uniform(minx, maxx, 40_000), rng.uniform(miny, maxy, 40_000)])
    status = index.locate_many(box[:, 0], box[:, 1], nearest=False).status
    coords = shapely.get_coordinates(index.polygons[:400])
    values, counts = np.unique(coords, axis=0, return_counts=True)
    far = np.column_stack([rng.uniform(100, 130, 50), rng.uniform(0, 50, 50)])
    return {
        "inside": box[status == 0],
        "boundary": values[counts > 1],  # vertices shared by neighbours
        "outside": np.vstack([box[status == 2], far]),
    }


def test_random_batches_are_strict_json_equal_to_single_lookups(demo_client, demo_index):
    pools = _point_pools(demo_index)
    rng = np.random.default_rng(3)
    kinds = list(pools)
    sizes = [1, 2, 3, 17, 256, 4_999, 20_000, *rng.integers(1, 20_001, 5).tolist()]
    seen_last: set[str] = set()
    for n, size in enumerate(sizes):
        choice = rng.integers(0, 3, size)
        choice[-1] = n % 3  # the last point of the batch: each kind in turn
        points = np.empty((size, 2))
        for k, kind in enumerate(kinds):
            pick = choice == k
            pool = pools[kind]
            points[pick] = pool[rng.integers(0, len(pool), pick.sum())]
        response = demo_client.post("/v1/locate", json={"points": points.tolist()})
        assert response.status_code == 200, response.text
        body = strict_json(response.content)
        LocateBatch.model_validate(body, strict=True)
        results = body["results"]
        assert len(results) == size
        assert results == [demo_index.locate(x, y) for x, y in points]
        seen_last.add(results[-1]["status"])
        for i in rng.integers(0, size, min(size, 40)):
            single = demo_client.get(
                "/v1/locate", params={"lon": points[i, 0], "lat": points[i, 1]}
            )
            assert strict_json(single.content) == results[i]
    assert seen_last == {"inside", "boundary", "outside"}


def test_single_answers_parse_strictly_with_the_published_model(demo_client):
    for lon, lat in ((114.41, 23.11), (114.0, 23.11), (120.0, 10.0)):
        response = demo_client.get("/v1/locate", params={"lon": lon, "lat": lat})
        LocateResult.model_validate(strict_json(response.content), strict=True)


# --- the worker pool ----------------------------------------------------------------------------


@handler(Lane.DISPATCH, Reads.RESOURCES)
def die(resources) -> Answer:
    os._exit(9)


@handler(Lane.DISPATCH, Reads.RESOURCES)
def nap(resources, seconds: float, label: str) -> Answer:
    """A task that only takes time (run in a worker process)."""
    time.sleep(seconds)
    return Answer("text/plain", f"{label} {os.getpid()}".encode())


@handler(Lane.ANALYSIS, Reads.RESOURCES)
def hold(resources, gate: str, label: str) -> Answer:
    """A task that says it has started (the file ``gate``.started) and runs until the file
    ``gate`` exists (run in a worker process)."""
    Path(f"{gate}.started").touch()
    wait_until(Path(gate).exists, 120, f"the test to open {gate}")
    return Answer("text/plain", f"{label} {os.getpid()}".encode())


def test_analysis_leaves_a_worker_for_dispatch_work(settings, tmp_path):
    pool = WorkerPool(settings, 2)
    gate = tmp_path / "gate"
    try:
        finished: list[str] = []

        def submit(lane: Lane, task: Task, label: str) -> Future:
            future = pool.submit(lane, task)
            future.add_done_callback(lambda _: finished.append(label))
            return future

        first = submit(Lane.ANALYSIS, Task(hold, None, (str(gate), "analysis-1")), "analysis-1")
        wait_until(
            tmp_path.joinpath("gate.started").exists, 60, "the first analysis to start in a worker"
        )
        second = submit(Lane.ANALYSIS, Task(nap, None, (0.0, "analysis-2")), "analysis-2")
        dispatch = submit(Lane.DISPATCH, Task(nap, None, (0.0, "dispatch")), "dispatch")
        # dispatch work never waits for analysis: answered while the first analysis runs on
        assert dispatch.result(timeout=60).body.startswith(b"dispatch")
        wait_until(lambda: finished == ["dispatch"], 10, "the dispatch answer to be recorded")
        # the second analysis waits for the first: not even started while the first runs
        assert not first.done() and not second.running() and not second.done()
        gate.touch()
        assert first.result(timeout=120).body.startswith(b"analysis-1")
        assert second.result(timeout=60).body.startswith(b"analysis-2")
        wait_until(lambda: len(finished) == 3, 10, "every answer to be recorded")
        assert finished == ["dispatch", "analysis-1", "analysis-2"]
        pids = {
            pool.submit(Lane.DISPATCH, Task(nap, None, (0.0, "x"))).result().body.split()[1]
            for _ in range(4)
        }
        assert str(os.getpid()).encode() not in pids  # never in this process
    finally:
        gate.touch()  # a held worker lets go, so that the pool closes
        pool.close()


def test_a_worker_that_dies_is_replaced_and_its_request_is_a_503(settings):
    pool = WorkerPool(settings, 1)
    try:
        with pytest.raises(workers.WorkerFailed, match="failed while answering"):
            pool.submit(Lane.DISPATCH, Task(die, None)).result(timeout=60)
        answer = pool.submit(Lane.DISPATCH, Task(nap, None, (0.0, "alive"))).result(timeout=60)
        assert answer.body.startswith(b"alive")
    finally:
        pool.close()


# --- bodies ---------------------------------------------------------------------------------


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize() / 1e6


@pytest.mark.parametrize("path", ["/v1/locate", "/v1/coverage/scenario"])
def test_an_oversized_chunked_upload_is_cut_off_at_the_limit(demo_readonly, path, tmp_path):
    with serving(demo_readonly, tmp_path) as server:
        port = int(server.url.rsplit(":", 1)[1])
        before = _rss_mb(server.process.pid)
        sock = socket.create_connection(("127.0.0.1", port), 10)
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
            f"authorization: Bearer {TEST_KEYS['admin']}\r\n"
            "transfer-encoding: chunked\r\n\r\n".encode()
        )
        chunk = b"[114.41, 23.11]," * 65_536  # 1 MiB of points, no end
        frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
        sent = 0
        with contextlib.suppress(OSError):
            sock.settimeout(10)
            while sent < 300 * 2**20:  # 300 MB without Content-Length
                sock.sendall(frame)
                sent += len(chunk)
        sock.settimeout(10)
        answer = b""
        with contextlib.suppress(OSError):
            while b"\r\n\r\n" not in answer:
                data = sock.recv(65536)
                if not data:
                    break
                answer += data
        sock.close()
        assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
        assert b"over the limit" in answer or b"\r\n\r\n" in answer
        assert sent < 100 * 2**20, f"the server read {sent / 2**20:.0f} MiB before refusing"
        assert _rss_mb(server.process.pid) - before < 100


# --- versions switching under traffic -------------------------------------------------------


@pytest.fixture()
def two_versions(demo_settings, demo_engine, demo_files, tmp_path):
    """The demo (v1) and a v2 whose officers carry a mark and whose main roads are slower."""
    import pandas as pd

    officers = pd.read_csv(demo_files.officers, dtype=str, keep_default_na=False)
    marked = tmp_path / "officers.csv"
    officers.assign(name=officers.name + "·v2").to_csv(marked, index=False)
    roads = tmp_path / "roads_v2.osm"
    text = demo_files.roads.read_text(encoding="utf-8")
    for road_class in ("trunk", "primary", "secondary"):
        text = text.replace(f'v="{road_class}"', 'v="residential"')
    roads.write_text(text, encoding="utf-8")
    steps = [
        Step("officers", "officers", lambda ctx: prepare_officers(marked, ctx)),
        Step("roads", "roads", lambda ctx: prepare_roads(roads, ctx)),
    ]
    v2 = run_loads(demo_engine, steps, dry_run=False, note="v2", with_diff=False)
    expected = {}
    for version in (1, v2):
        network = load_network(demo_engine, "car", version)
        areas = [b.area_km2 for b in isochrones(network, 114.41, 23.11, (1, 3, 5)).bands]
        model = CoverageModel.load(demo_engine, version=version)
        covered = [b["grids_covered"] for b in model.response((1, 3, 5), "all").bands()]
        expected[version] = ([round(a, 6) for a in areas], covered)
    assert expected[1] != expected[v2]
    return 1, v2, expected


def test_requests_never_mix_versions_while_versions_switch(
    demo_settings, demo_engine, two_versions
):
    v1, v2, expected = two_versions
    datasets.rollback(demo_engine, v1)
    answers: list[tuple[str, dict]] = []
    failures: list[str] = []
    stop = threading.Event()
    with TestClient(
        create_app(demo_settings.model_copy(update={"analysis_workers": 2})), headers=auth()
    ) as client:
        assert client.get("/v1/locate", params={"lon": 114.41, "lat": 23.11}).status_code == 200

        def hammer(kind: str, path: str, params: dict) -> None:
            while not stop.is_set():
                response = client.get(path, params=params)
                if response.status_code != 200:
                    failures.append(f"{kind} {response.status_code} {response.text[:200]}")
                else:
                    answers.append((kind, strict_json(response.content)))

        loads = [
            ("locate", "/v1/locate", {"lon": 114.41, "lat": 23.11}),
            ("isochrones", "/v1/isochrones", {"lon": 114.41, "lat": 23.11}),
            ("coverage", "/v1/coverage/response", {"minutes": "1,3,5"}),
        ]
        threads = [threading.Thread(target=hammer, args=load) for load in loads]
        kinds = {kind for kind, _, _ in loads}

        def answered(version: int, since: int) -> bool:
            return {k for k, a in answers[since:] if a["dataset_version"] == version} == kinds

        for thread in threads:
            thread.start()
        try:
            for step in range(8):  # a new current version as soon as every kind answers it
                version = v2 if step % 2 == 0 else v1
                since = len(answers)
                datasets.rollback(demo_engine, version)
                wait_until(
                    lambda version=version, since=since: answered(version, since),
                    120,
                    f"every kind of request to answer version {version} (switch {step + 1})",
                )
            final = v2
            datasets.rollback(demo_engine, final)
            wait_until(
                lambda: (
                    {kind for kind, _ in answers[-30:]} == kinds
                    and all(a["dataset_version"] == final for _, a in answers[-30:])
                ),
                120,
                f"the last 30 answers to be of every kind and all of version {final}",
                interval_s=0.5,
            )
        finally:
            stop.set()
            for thread in threads:
                thread.join()
    assert not failures, failures[:5]
    versions = {a["dataset_version"] for _, a in answers}
    assert versions == {v1, v2}
    for kind, answer in answers:
        version = answer["dataset_version"]
        areas, covered = expected[version]
        if kind == "locate":
            marked = all(o["name"].endswith("·v2") for o in answer["officers"])
            assert marked == (version == v2), answer
        elif kind == "isochrones":
            assert [f["properties"]["area_km2"] for f in answer["features"]] == areas
        else:
            assert [b["grids_covered"] for b in answer["bands"]] == covered
    assert all(a["dataset_version"] == final for _, a in answers[-30:])


# --- the database going away -----------------------------------------------------------------


def test_a_database_outage_is_a_503_and_locate_keeps_answering(demo_readonly):
    url = demo_readonly.sqlalchemy_url()
    proxy = TcpProxy(url.host, url.port)
    proxy.start()
    proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    settings = demo_readonly.model_copy(update={"database_url": proxied, "analysis_workers": 1})
    try:
        with TestClient(create_app(settings), headers=auth()) as client:
            assert client.get("/v1/layers/town").status_code == 200
            proxy.cut()
            for path in ("/v1/layers/town", "/v1/coverage/officers"):
                response = client.get(path)
                assert response.status_code == 503, (path, response.text)
                assert response.headers["content-type"] == "application/problem+json"
                assert "database" in response.json()["detail"].lower()
            located = client.get("/v1/locate", params={"lon": 114.41, "lat": 23.11})
            assert located.status_code == 200 and located.json()["status"] == "inside"
            batch = client.post("/v1/locate", json={"points": [[114.41, 23.11]]})
            assert batch.status_code == 200
    finally:
        proxy.cut()


# --- figures a reader can trust ------------------------------------------------------------


def test_an_uncovered_grid_never_shows_a_covered_time(demo_readonly):
    from geoservice.db import create_engine

    engine = create_engine(demo_readonly)
    coverage = CoverageModel.load(engine).response((1, 3, 5), "all")
    engine.dispose()
    minutes = coverage.minutes_to_reach.copy()
    minutes[:4] = [5.004, 5.0000001, 4.9999, 5.0]
    tweaked = Coverage(
        coverage.minutes,
        "all",
        coverage.grids,
        minutes,
        coverage.nearest_origin,
        coverage.dataset_version,
    )
    shown = {g["code"]: g["minutes_to_reach"] for g in tweaked.to_json()["uncovered_grids"]}
    codes = coverage.grids.codes
    assert shown[codes[0]] == 5.01 and shown[codes[1]] == 5.01
    assert codes[2] not in shown and codes[3] not in shown  # covered within 5 minutes
    for code, value in shown.items():
        assert value is None or value > 5, (code, value)
    table = tweaked.table()
    assert table["minutes_to_reach"].iloc[0] > 5 and table["covered_5min"].iloc[0] == False  # noqa: E712
