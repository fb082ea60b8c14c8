"""Run the real ``geoservice`` command in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys

from geoservice.settings import Settings


def run_cli(
    *args: str, settings: Settings | None = None, env: dict[str, str] | None = None, timeout=300
) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, **(env or {})}
    if settings is not None:
        environment["GEOSERVICE_DATABASE_URL"] = settings.sqlalchemy_url().render_as_string(
            hide_password=False
        )
    return subprocess.run(
        [sys.executable, "-m", "geoservice", *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=timeout,
        check=False,
    )
