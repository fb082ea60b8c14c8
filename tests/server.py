"""A real ``geoservice serve`` in a subprocess, on a free port, for tests that need HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from geoservice.settings import Settings
from tests.tcp_proxy import free_port


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    log: Path

    def stderr(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


@contextmanager
def serving(
    settings: Settings,
    tmp_path: Path,
    *args: str,
    env: dict[str, str] | None = None,
    ready: bool = True,
) -> Iterator[Server]:
    """``geoservice serve`` on ``settings``' database until the block ends; stderr kept in a
    file. With ``ready``, waits until ``/ready`` answers 200 (else until the port opens)."""
    port = free_port()
    log = tmp_path / f"server-{port}.log"
    environment = {
        **os.environ,
        "GEOSERVICE_DATABASE_URL": settings.sqlalchemy_url().render_as_string(False),
        "GEOSERVICE_ANALYSIS_WORKERS": "1",
        **(env or {}),
    }
    with log.open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "geoservice", "serve", "--port", str(port), *args],
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"server exited {process.returncode}: {log.read_text()}")
            try:
                path = "/ready" if ready else "/health"
                with urllib.request.urlopen(url + path, timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"server not ready: {log.read_text()}")
            time.sleep(0.2)
        yield Server(url, process, log)
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
