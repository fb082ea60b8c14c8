"""A load that fails at any moment — an exception mid-write, or the loader killed during
its COPY — leaves the previous version current with identical row counts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import sqlalchemy as sa

from etl.context import Context
from etl.load import publish_loads
from etl.police import prepare_officers
from tests.conftest import row_counts


def test_an_exception_mid_publish_changes_nothing(demo_files, demo_engine) -> None:
    before = row_counts(demo_engine)
    load = prepare_officers(demo_files.officers, Context(demo_engine))
    original = load.write

    def write_then_fail(conn: sa.Connection, snapshot_id: int) -> int:
        original(conn, snapshot_id)
        raise OSError("connection to the file server lost")

    load.write = write_then_fail
    with pytest.raises(OSError, match="file server lost"):
        publish_loads(demo_engine, [load], note="doomed")
    assert row_counts(demo_engine) == before


def test_a_loader_killed_during_its_write_changes_nothing(
    demo_files, demo_settings, demo_engine
) -> None:
    before = row_counts(demo_engine)
    env = {
        **os.environ,
        "GEOSERVICE_DATABASE_URL": demo_settings.sqlalchemy_url().render_as_string(
            hide_password=False
        ),
    }
    loader = subprocess.Popen(
        [sys.executable, "-m", "geoservice", "etl", "roads", str(demo_files.roads)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    seen_copy = False
    deadline = time.monotonic() + 120
    with demo_engine.connect() as conn:
        while time.monotonic() < deadline and loader.poll() is None:
            seen_copy = bool(
                conn.execute(
                    sa.text(
                        "SELECT count(*) FROM pg_stat_activity "
                        "WHERE query LIKE 'COPY geoservice.road_%' AND state = 'active'"
                    )
                ).scalar_one()
            )
            conn.rollback()
            if seen_copy:
                loader.send_signal(signal.SIGKILL)
                break
            time.sleep(0.02)
    loader.wait(timeout=30)
    assert seen_copy, "the loader finished before its COPY could be caught"
    assert loader.returncode == -signal.SIGKILL
    # the server notices the dead client and rolls its transaction back
    with demo_engine.connect() as conn:
        for _ in range(200):
            left = conn.execute(
                sa.text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE query LIKE 'COPY geoservice.road_%'"
                )
            ).scalar_one()
            conn.rollback()
            if not left:
                break
            time.sleep(0.05)
    assert row_counts(demo_engine) == before
