"""More than one machine, on one: HAProxy, two server processes, a PostgreSQL primary and a
streaming hot standby (``scripts/cluster.sh``), under steady traffic through the balancer
while things go wrong. Each fault's figures (requests failed, seconds to recover) are
printed and kept in ``faults.json`` beside the cluster; docs/OPERATIONS.md quotes a run.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest

from tests.cli import run_cli
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[1]
PG_BIN = "/usr/lib/postgresql/15/bin"


def _env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        if "=" in line:
            name, value = line.split("=", 1)
            values[name] = value.strip("'")
    return values


def _as_pg(*args: str) -> subprocess.CompletedProcess[str]:
    command = ["runuser", "-u", "postgres", "--", *args] if os.getuid() == 0 else list(args)
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


@dataclass
class Cluster:
    data: Path
    env: dict[str, str]
    primary: dict[str, str]
    state: dict[str, str]
    key: str = ""
    figures: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def lb(self) -> int:
        return int(self.state["LB_PORT"])

    def server_ports(self) -> list[int]:
        return [
            int(self.state[f"SERVER_{i}_PORT"]) for i in range(1, int(self.state["SERVERS"]) + 1)
        ]

    def cli(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return run_cli(*args, env=self.env, timeout=timeout)

    def get(self, port: int, path: str) -> tuple[int, dict | None]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            conn.request("GET", path, headers={"X-API-Key": self.key})
            response = conn.getresponse()
            body = response.read()
            return response.status, json.loads(body) if response.status == 200 else None
        except (OSError, http.client.HTTPException):
            return 0, None
        finally:
            conn.close()

    def pg_ctl(self, which: str, action: str) -> None:
        directory = self.primary["PGDIR"] if which == "primary" else self.state["STANDBY_DIR"]
        extra = ["-m", "immediate"] if action == "stop" else ["-l", f"{directory}/server.log"]
        result = _as_pg(f"{PG_BIN}/pg_ctl", "-D", directory, "-w", *extra, action)
        assert result.returncode == 0, result.stderr

    def psql(self, sql: str) -> str:
        result = subprocess.run(
            [
                "psql",
                "-h",
                "127.0.0.1",
                "-p",
                self.primary["PORT"],
                "-U",
                "postgres",
                "-d",
                "geoservice",
                "-Atc",
                sql,
            ],
            capture_output=True,
            text=True,
            env={**os.environ, "PGPASSWORD": self.primary["PASSWORD"]},
        )
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()


class Traffic:
    """Steady requests through the balancer from a few threads: every answer kept."""

    def __init__(self, cluster: Cluster, paths: list[str], threads: int = 4) -> None:
        self.cluster = cluster
        self.paths = paths
        self.answers: list[tuple[float, str, int, dict | None]] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(i,)) for i in range(threads)]

    def _run(self, i: int) -> None:
        n = 0
        while not self._stop.is_set():
            path = self.paths[(i + n) % len(self.paths)]
            status, body = self.cluster.get(self.cluster.lb, path)
            self.answers.append((time.monotonic(), path, status, body))
            n += 1
            time.sleep(0.01)  # the pace of the steady load, not a wait for anything

    def __enter__(self) -> Traffic:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def flowing(self) -> None:
        """Wait until every path has been answered 200 through the balancer."""
        wait_until(
            lambda: (
                {path for _, path, status, _ in self.answers if status == 200} == set(self.paths)
            ),
            60,
            f"traffic through the balancer answered on {self.paths}",
        )

    def since(self, start: float) -> list[tuple[float, str, int, dict | None]]:
        return [a for a in self.answers if a[0] >= start]


def _failed(answers, prefix: str = "") -> int:
    return sum(1 for _, path, status, _ in answers if status != 200 and path.startswith(prefix))


def _recovered_after(answers, start: float, prefix: str = "") -> float:
    """Seconds from ``start`` to the last failed answer (0 when none failed)."""
    failed = [t for t, path, status, _ in answers if status != 200 and path.startswith(prefix)]
    return round(max(failed) - start, 2) if failed else 0.0


LOCATE = "/v1/locate?lon=114.41&lat=23.11"
LAYER = "/v1/layers/town"
STREAMING = "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[Cluster]:
    data = tmp_path_factory.mktemp("cluster")
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("GEOSERVICE_") or name == "GEOSERVICE_ANALYSIS_WORKERS"
    }
    env["GEOSERVICE_DATA_DIR"] = str(data)
    up = subprocess.run(
        ["bash", str(ROOT / "scripts" / "cluster.sh"), "up", "2"],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        cwd=ROOT,
    )
    assert up.returncode == 0, up.stdout + up.stderr
    cluster = Cluster(
        data, env, _env_file(data / "cluster.env"), _env_file(data / "cluster" / "cluster.env")
    )
    created = cluster.cli(
        "keys", "create", "cluster-test", "--role", "planner", "--rate", "1e6", "--burst", "1000000"
    )
    cluster.key = created.stdout.strip().splitlines()[-1]
    try:
        yield cluster
    finally:
        print("\nfault figures:", json.dumps(cluster.figures, indent=1))
        (data / "faults.json").write_text(json.dumps(cluster.figures, indent=1))
        subprocess.run(
            ["bash", str(ROOT / "scripts" / "cluster.sh"), "down"],
            env=env,
            capture_output=True,
            timeout=300,
            cwd=ROOT,
        )
        subprocess.run(
            ["bash", str(ROOT / "scripts" / "pgcluster.sh"), "stop"],
            env=env,
            capture_output=True,
            timeout=300,
            cwd=ROOT,
        )
        if "/var/lib/geoservice/" in cluster.primary["PGDIR"]:
            shutil.rmtree(Path(cluster.primary["PGDIR"]).parent, ignore_errors=True)


def _converged(cluster: Cluster, version: int, seconds: float = 120) -> float:
    """Seconds until every server answers ``version`` (fails after ``seconds``)."""
    start = time.monotonic()

    def versions() -> set[int]:
        answers = [cluster.get(port, LOCATE) for port in cluster.server_ports()]
        return {body["dataset_version"] for status, body in answers if status == 200}

    wait_until(
        lambda: versions() == {version},
        seconds,
        f"every server to answer version {version}",
        interval_s=0.1,
    )
    return round(time.monotonic() - start, 2)


def _mark_officers(cluster: Cluster, mark: str, path: Path) -> None:
    officers = pd.read_csv(cluster.data / "demo" / "officers.csv", dtype=str, keep_default_na=False)
    officers.assign(name=officers.name + mark).to_csv(path, index=False)


def test_the_arrangement_serves_through_the_balancer_from_the_standby(cluster):
    status, body = cluster.get(cluster.lb, LOCATE)
    assert status == 200 and body["status"] == "inside"
    result = subprocess.run(
        [
            "psql",
            "-h",
            "127.0.0.1",
            "-p",
            cluster.state["STANDBY_PORT"],
            "-U",
            "postgres",
            "-d",
            "geoservice",
            "-Atc",
            "SELECT pg_is_in_recovery(), count(*) FROM pg_stat_activity "
            "WHERE application_name = 'geoservice-reader'",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PGPASSWORD": cluster.primary["PASSWORD"]},
    )
    recovery, readers = result.stdout.strip().split("|")
    assert recovery == "t" and int(readers) > 0  # the servers read from the hot standby


def test_a_version_published_under_load_reaches_every_server_unmixed(cluster, tmp_path):
    path = tmp_path / "officers.csv"
    _mark_officers(cluster, "·甲", path)
    with Traffic(cluster, [LOCATE]) as traffic:
        traffic.flowing()
        start = time.monotonic()
        result = cluster.cli("etl", "officers", str(path))
        assert result.returncode == 0, result.stderr
        version = int(cluster.psql("SELECT version_id FROM geoservice.current_dataset"))
        seconds = _converged(cluster, version)
        converged = time.monotonic()
        wait_until(
            lambda: len(traffic.since(converged)) >= 20,
            60,
            "20 answers more once every server answered the new version",
        )
    answers = traffic.since(start)
    assert _failed(answers) == 0
    for _, _, _, body in answers:
        marked = all(o["name"].endswith("·甲") for o in body["officers"])
        assert marked == (body["dataset_version"] == version)  # no mixed answers
    cluster.figures["version published under load"] = {
        "requests": len(answers),
        "failed": _failed(answers),
        "seconds_until_all_servers": seconds,
    }


def test_a_cut_listener_connection_reconnects_and_catches_up(cluster, tmp_path):
    cut = cluster.psql(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE query LIKE 'LISTEN%'"
    )
    assert int(cut) >= 2  # one listener per server
    path = tmp_path / "officers.csv"
    _mark_officers(cluster, "·乙", path)
    start = time.monotonic()
    assert cluster.cli("etl", "officers", str(path)).returncode == 0
    version = int(cluster.psql("SELECT version_id FROM geoservice.current_dataset"))
    seconds = _converged(cluster, version)
    cluster.figures["listener connection cut"] = {
        "failed": 0,
        "seconds_until_all_servers": round(time.monotonic() - start, 2),
        "seconds_after_publish": seconds,
    }


def test_the_primary_stopped_during_a_publish_leaves_nothing_half_published(cluster, tmp_path):
    before_version = cluster.psql("SELECT version_id FROM geoservice.current_dataset")
    before_snapshots = cluster.psql("SELECT count(*) FROM geoservice.snapshot")
    roads = cluster.data / "demo" / "roads.osm"
    with Traffic(cluster, [LOCATE, LAYER]) as traffic:
        publish = subprocess.Popen(
            [str(ROOT / ".venv" / "bin" / "geoservice"), "etl", "roads", str(roads)],
            env=cluster.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        writing = "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'COPY geoservice.road%'"
        wait_until(  # stop the primary while the roads are being written
            lambda: publish.poll() is not None or cluster.psql(writing) != "0",
            300,
            "the roads publish to start writing roads",
        )
        stopped = time.monotonic()
        cluster.pg_ctl("primary", "stop")
        _, stderr = publish.communicate(timeout=300)
        # the point of the test: three seconds of traffic more with no primary at all
        time.sleep(3)
        down = traffic.since(stopped)
        cluster.pg_ctl("primary", "start")
        wait_until(
            lambda: all(cluster.get(cluster.lb, path)[0] == 200 for path in (LOCATE, LAYER)),
            60,
            "the balancer to answer locate and layers again with the primary back",
        )
    assert publish.returncode != 0, "the publish should have failed with its database gone"
    assert "Traceback" not in stderr
    assert _failed(down, "/v1/locate") == 0  # locate answers from memory
    assert cluster.psql("SELECT version_id FROM geoservice.current_dataset") == before_version
    assert cluster.psql("SELECT count(*) FROM geoservice.snapshot") == before_snapshots
    retried = cluster.cli("etl", "roads", str(roads))
    assert retried.returncode == 0, retried.stderr
    version = int(cluster.psql("SELECT version_id FROM geoservice.current_dataset"))
    seconds = _converged(cluster, version)
    cluster.figures["primary stopped during a publish"] = {
        "locate_failed": _failed(down, "/v1/locate"),
        "layers_failed": _failed(down, "/v1/layers"),
        "requests": len(down),
        "half_published": 0,
        "seconds_until_retry_served": seconds,
    }


def test_the_standby_stopped_reads_go_to_the_primary(cluster):
    with Traffic(cluster, [LOCATE, LAYER]) as traffic:
        traffic.flowing()
        start = time.monotonic()
        cluster.pg_ctl("standby", "stop")
        # the point of the test: six seconds of traffic without the standby (reads must have
        # moved to the primary after three)
        time.sleep(6)
        answers = traffic.since(start)
        cluster.pg_ctl("standby", "start")
        wait_until(
            lambda: cluster.psql(STREAMING) != "0", 120, "the standby to stream from the primary"
        )
    assert _failed(answers, "/v1/locate") == 0
    late = [a for a in answers if a[0] > start + 3]
    assert _failed(late, "/v1/layers") == 0  # reads moved to the primary
    cluster.figures["standby stopped"] = {
        "requests": len(answers),
        "locate_failed": _failed(answers, "/v1/locate"),
        "layers_failed": _failed(answers, "/v1/layers"),
        "seconds_to_recover": _recovered_after(answers, start, "/v1/layers"),
    }


def test_a_server_killed_the_balancer_routes_around_it(cluster):
    pid = int(cluster.state["SERVER_1_PID"])
    with Traffic(cluster, [LOCATE, LAYER]) as traffic:
        traffic.flowing()
        start = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        time.sleep(5)  # the point of the test: five seconds of traffic with one server dead
        answers = traffic.since(start)
    assert _failed(answers, "/v1/locate") == 0
    assert cluster.get(cluster.lb, LOCATE)[0] == 200
    cluster.figures["a server process killed"] = {
        "requests": len(answers),
        "failed": _failed(answers),
        "seconds_to_recover": _recovered_after(answers, start),
    }
