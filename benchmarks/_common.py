"""Helpers shared by the benchmark scripts: timing, serving, loopback load with wrk."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def best_of(fn: Callable[[], object], repeat: int = 3) -> float:
    """Best wall time of ``repeat`` runs, in seconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serving(
    args: list[str], port: int, env: dict[str, str] | None = None, ready: str = "/ready"
) -> Iterator[str]:
    """Run a server command until ``ready`` answers 200; stop it afterwards."""
    process = subprocess.Popen(
        args,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                with urllib.request.urlopen(f"{base}{ready}", timeout=1) as response:
                    if response.status == 200:
                        break
            except OSError:
                time.sleep(0.1)
        else:
            raise RuntimeError(f"server {args} did not come up")
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


@contextmanager
def bench_key(role: str = "admin") -> Iterator[str]:
    """A key for the benchmark's requests (no rate limit to speak of), revoked afterwards."""
    name = f"bench-{int(time.time())}"
    created = subprocess.run(
        [
            sys.executable,
            "-m",
            "geoservice",
            "keys",
            "create",
            name,
            "--role",
            role,
            "--rate",
            "1e9",
            "--burst",
            "1000000000",
            "--by",
            "benchmarks",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    try:
        yield created.stdout.strip().splitlines()[-1]
    finally:
        subprocess.run(
            [sys.executable, "-m", "geoservice", "keys", "revoke", name, "--by", "benchmarks"],
            capture_output=True,
            check=True,
            cwd=ROOT,
        )


def wrk(
    url: str, *, connections: int = 32, seconds: int = 10, key: str | None = None
) -> dict[str, float]:
    """Requests/s and p99 latency (ms) from wrk on loopback (bounded in time)."""
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk")
    headers = ["-H", f"Authorization: Bearer {key}"] if key else []
    # warm-up: every server process answers from its built state before the measurement
    subprocess.run(
        ["wrk", "-t2", f"-c{connections}", "-d3s", *headers, url],
        capture_output=True,
        check=True,
        timeout=60,
    )
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", *headers, url],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 60,
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99[2]]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": rate,
        "p99_ms": float(p99[1]) * scale,
        "non_2xx": float(errors[1]) if errors else 0.0,
    }
