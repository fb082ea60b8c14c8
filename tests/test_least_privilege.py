"""Least privilege, completed (migration 0008): the partition functions only for the
recorder and only within their bounds; keys written only through audited functions."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from geoservice.db import create_engine
from geoservice.patrols import CHINA, Position, PositionStore
from tests.cli import run_cli


@pytest.fixture()
def engines(settings):
    made = {role: create_engine(settings, role) for role in ("owner", "writer", "recorder")}
    yield made
    for engine in made.values():
        engine.dispose()


def _refused(engine, statement: str, params=None) -> str:
    with pytest.raises(sa.exc.DBAPIError) as info, engine.begin() as conn:
        conn.execute(sa.text(statement), params or {})
    return str(info.value)


def test_the_writer_cannot_touch_api_keys(settings, engines) -> None:
    writer, owner = engines["writer"], engines["owner"]
    for statement in (
        "SELECT * FROM geoservice.api_key",
        "UPDATE geoservice.api_key SET revoked_at = NULL",
        "INSERT INTO geoservice.api_key (name, key_id, role, key_hash, created_by) "
        "VALUES ('sneaky', 'deadbeef', 'admin', 'x', 'nobody')",
        "DELETE FROM geoservice.api_key",
    ):
        assert "permission denied" in _refused(writer, statement), statement
    # through the function a key is created with its audit entry, in one transaction
    with writer.begin() as conn:
        made = conn.execute(
            sa.text(
                "SELECT geoservice.create_api_key('f-1', 'cafe0001', 'planner', 'h', NULL, NULL, "
                "NULL, 'dba', 'cli', 'root')"
            )
        ).scalar_one()
        again = conn.execute(
            sa.text(
                "SELECT geoservice.create_api_key('f-1', 'cafe0002', 'admin', 'h', NULL, NULL, "
                "NULL, 'dba', 'cli', 'root')"
            )
        ).scalar_one()
    assert (made, again) == (True, False)
    with owner.connect() as conn:
        entries = conn.execute(
            sa.text("SELECT action, actor, detail FROM geoservice.audit_log ORDER BY id")
        ).all()
        role = conn.execute(
            sa.text("SELECT role FROM geoservice.api_key WHERE name = 'f-1'")
        ).scalar_one()
    assert entries == [("key_created", "dba", {"name": "f-1", "role": "planner"})]
    assert role == "planner"  # the second call changed nothing
    # the reader and the recorder may not call them
    revoke = "SELECT * FROM geoservice.revoke_api_key('f-1', 'x', 'cli', NULL)"
    for role in ("reader", "recorder"):
        engine = create_engine(settings, role)
        try:
            assert "permission denied" in _refused(engine, revoke), role
        finally:
            engine.dispose()


def test_keys_from_the_cli_still_work_and_are_audited(settings, engines) -> None:
    made = run_cli("keys", "create", "k-1", "--role", "dispatch", "--by", "王", settings=settings)
    assert made.returncode == 0, made.stderr
    assert run_cli("keys", "revoke", "k-1", settings=settings).returncode == 0
    again = run_cli("keys", "revoke", "k-1", settings=settings)
    assert again.returncode == 2 and "revoked already" in again.stderr
    missing = run_cli("keys", "revoke", "nobody", settings=settings)
    assert missing.returncode == 2 and "no key named 'nobody'" in missing.stderr
    taken = run_cli("keys", "create", "k-1", "--role", "admin", settings=settings)
    assert taken.returncode == 2 and "exists already" in taken.stderr
    entries = json.loads(run_cli("audit", "--json", settings=settings).stdout)
    assert [(e["action"], e["detail"]) for e in reversed(entries)] == [
        ("key_created", {"name": "k-1", "role": "dispatch"}),
        ("key_revoked", {"name": "k-1"}),
    ]
    assert entries[-1]["actor"] == "王" and entries[-1]["os_user"]


def test_partitions_only_from_yesterday_to_the_day_after_tomorrow(engines) -> None:
    recorder = engines["recorder"]
    today = datetime.now(CHINA).date()
    for day in (today - timedelta(days=1), today, today + timedelta(days=2)):
        with recorder.begin() as conn:
            conn.execute(sa.text("SELECT geoservice.ensure_position_day(:d)"), {"d": day})
    for day in ("1970-01-01", "2999-01-01", today - timedelta(days=2), today + timedelta(days=3)):
        message = _refused(recorder, "SELECT geoservice.ensure_position_day(:d)", {"d": day})
        assert "yesterday" in message and "day after tomorrow" in message, message


def test_no_prune_keeps_fewer_days_than_the_minimum(engines, caplog) -> None:
    recorder, owner = engines["recorder"], engines["owner"]
    for keep in (0, -1, 6):
        message = _refused(recorder, "SELECT geoservice.drop_position_days(:k)", {"k": keep})
        assert f"keep_days {keep} refused" in message and "at least 7 days" in message
    with recorder.begin() as conn:
        assert conn.execute(sa.text("SELECT geoservice.drop_position_days(7)")).scalar() == 0
    # a DBA raises the minimum; only the owner may
    assert "permission denied" in _refused(
        recorder, "UPDATE geoservice.position_retention SET min_keep_days = 1"
    )
    with owner.begin() as conn:
        conn.execute(sa.text("UPDATE geoservice.position_retention SET min_keep_days = 60"))
    assert "at least 60 days" in _refused(recorder, "SELECT geoservice.drop_position_days(30)")
    # a server configured below it still records its positions, and says why it kept the days
    now = datetime.now(CHINA)
    with caplog.at_level(logging.WARNING, logger="geoservice.patrols"):
        PositionStore(recorder, keep_days=30).record([Position("XD01-1", 114.41, 23.1, now)])
    assert "at least 60 days" in caplog.text
    with owner.connect() as conn:
        assert (
            conn.execute(sa.text("SELECT count(*) FROM geoservice.patrol_position")).scalar() == 1
        )


def test_only_the_recorder_may_run_the_partition_functions(settings) -> None:
    for role in ("writer", "reader"):
        engine = create_engine(settings, role)
        try:
            for statement in (
                "SELECT geoservice.drop_position_days(30)",
                "SELECT geoservice.ensure_position_day(current_date)",
            ):
                assert "permission denied" in _refused(engine, statement), (role, statement)
        finally:
            engine.dispose()
