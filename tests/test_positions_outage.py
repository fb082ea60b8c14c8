"""Patrol positions survive a PostgreSQL outage: the server answers dispatch and live
coverage from the positions in memory, journals what it receives (fsync) and writes it
once the database is back — all of it, each position once."""

from __future__ import annotations

import fcntl
import os
import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from geoservice.db import create_engine
from geoservice.journal import Entry, JournalFull, PositionJournal, Rejected
from geoservice.patrols import patrol_units
from geoservice.server.app import create_app
from tests.conftest import auth
from tests.tcp_proxy import TcpProxy

INCIDENT = (114.4152, 23.0931)
BATCHES = 4
PER_UNIT = 10
MAX_MB = 1


def _wait(condition, what: str, timeout_s: float = 60.0):
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s} s: {what}")
        time.sleep(0.2)


def _stored(engine) -> list[tuple[str, datetime]]:
    with engine.connect() as conn:
        return [
            (unit, when)
            for unit, when in conn.execute(
                sa.text("SELECT unit, time FROM geoservice.patrol_position")
            ).all()
        ]


def _segments(directory: Path) -> list[Path]:
    mine = "positions-000000000000-"  # not the filler's
    found = directory.glob("positions-*.jsonl") if directory.exists() else ()
    return sorted(p for p in found if not p.name.startswith(mine))


def test_positions_posted_during_an_outage_are_stored_once(demo_settings, tmp_path) -> None:
    owner = create_engine(demo_settings, "owner")  # the tests' own way in, never cut
    units = [u.code for u in patrol_units(owner, 1)][:100]
    assert len(units) == 100
    url = demo_settings.sqlalchemy_url()
    proxy = TcpProxy(url.host, url.port)
    proxy.start()
    proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    journal_dir = tmp_path / "journal"
    settings = demo_settings.model_copy(
        update={
            "database_url": proxied,
            "analysis_workers": 1,
            "journal_dir": journal_dir,
            "journal_max_mb": MAX_MB,
        }
    )
    dispatch = {"lon": INCIDENT[0], "lat": INCIDENT[1], "k": 20}
    now = datetime.now(UTC)
    # each unit at its own spot near the incident, ten fixes a few seconds apart
    posted = [
        {
            "unit": unit,
            "lon": INCIDENT[0] + (i % 10 - 5) * 4e-4,
            "lat": INCIDENT[1] + (i // 10 - 5) * 4e-4,
            "time": (now - timedelta(seconds=120 - 3 * n - i * 1e-3)).isoformat(),
        }
        for n in range(PER_UNIT)
        for i, unit in enumerate(units)
    ]
    assert len(posted) == 1000
    try:
        with TestClient(create_app(settings), headers=auth("admin")) as client:
            assert client.get("/v1/dispatch", params=dispatch).status_code == 200
            assert client.get("/v1/coverage/live").status_code == 200
            assert client.get("/health").json()["status"] == "ok"

            proxy.cut()
            assert client.get("/v1/layers/town").status_code == 503  # the database is away
            size = len(posted) // BATCHES
            for b in range(BATCHES):
                batch = posted[b * size : (b + 1) * size]
                answer = client.post("/v1/patrols/positions", json={"positions": batch})
                assert answer.status_code == 200, answer.text
                assert answer.json()["recorded"] == size and answer.json()["refused"] == []
                # dispatch answers throughout, with the patrols where they just reported
                found = client.get("/v1/dispatch", params=dispatch)
                assert found.status_code == 200, found.text
                kinds = {r["kind"] for r in found.json()["responders"]}
                assert "patrol" in kinds, found.json()["responders"]
                codes = {r["code"] for r in found.json()["responders"] if r["kind"] == "patrol"}
                assert codes <= set(units)
                health = client.get("/health").json()
                assert (health["status"], health["database"]) == ("degraded", "down")
            live = client.get("/v1/coverage/live")
            assert live.status_code == 200, live.text
            assert {p["unit"] for p in live.json()["patrols"]} >= set(units)
            # on disk before any answer: every position is in this server's journal
            segments = _segments(journal_dir)
            assert len(segments) == 1
            assert segments[0].read_bytes().count(b"\n") == len(posted)
            copy = tmp_path / "copy.jsonl"
            shutil.copyfile(segments[0], copy)
            assert _stored(owner) == []

            # past the journal's bound: a 503 "journal full", nothing of the body kept
            # (another database's positions filling the disk's share: they are not replayed)
            filler = journal_dir / "positions-000000000000-1-1.jsonl"
            filler.write_bytes(b"\n" * (MAX_MB * 1024 * 1024 - segments[0].stat().st_size - 50))
            extra = [{**posted[0], "time": (now - timedelta(seconds=1)).isoformat()}]
            full = client.post("/v1/patrols/positions", json={"positions": extra})
            assert full.status_code == 503, full.text
            assert full.headers["content-type"] == "application/problem+json"
            assert full.json()["title"] == "Journal full"
            assert "journal is full" in full.json()["detail"]
            assert segments[0].read_bytes() == copy.read_bytes()
            filler.unlink()

            restored_at = datetime.now(UTC)
            proxy.start()
            stored = _wait(lambda: len(_stored(owner)) >= len(posted) and _stored(owner), "replay")
            assert client.get("/v1/dispatch", params=dispatch).status_code == 200
            assert sorted(stored) == sorted(
                (p["unit"], datetime.fromisoformat(p["time"])) for p in posted
            )
            _wait(lambda: not _segments(journal_dir), "the journal emptied")
            _wait(lambda: client.get("/health").json()["status"] == "ok", "health ok again")

            # a crash between the commit and the delete leaves a segment replayed again:
            # nothing is written twice
            orphan = journal_dir / f"positions-{segments[0].name.split('-')[1]}-1-999999.jsonl"
            shutil.copyfile(copy, orphan)
            _wait(lambda: not orphan.exists(), "the orphan segment replayed")
            assert len(_stored(owner)) == len(posted)
            with owner.connect() as conn:
                received = conn.execute(
                    sa.text("SELECT max(received_at) FROM geoservice.patrol_position")
                ).scalar_one()
            assert received < restored_at  # when the server received them, not replayed them
            # and the database is written directly again
            again = [{**posted[0], "time": datetime.now(UTC).isoformat()}]
            answer = client.post("/v1/patrols/positions", json={"positions": again})
            assert answer.status_code == 200, answer.text
            assert len(_stored(owner)) == len(posted) + 1
            assert not _segments(journal_dir)
    finally:
        proxy.cut()
        owner.dispose()


# --- the journal itself ----------------------------------------------------------------------


def _entries(n: int, unit: str = "XD01-1") -> list[Entry]:
    at = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)
    return [
        Entry(unit, 114.41, 23.1, at + timedelta(seconds=i), at + timedelta(seconds=i))
        for i in range(n)
    ]


def test_the_journal_is_bounded_and_refuses_a_batch_whole(tmp_path) -> None:
    journal = PositionJournal(tmp_path, "db1", max_bytes=2_000)
    journal.append(_entries(5))
    used = journal.size()
    assert 0 < used < 2_000
    with pytest.raises(JournalFull, match="journal is full"):
        journal.append(_entries(50))
    assert journal.size() == used  # nothing of the refused batch
    written: list[Entry] = []
    assert journal.replay(written.extend) == 5
    assert written == _entries(5) and journal.size() == 0 and journal.pending() == 0


def test_a_replay_takes_no_segment_being_written_nor_another_databases(tmp_path) -> None:
    mine = PositionJournal(tmp_path, "db1", max_bytes=1 << 20)
    other = PositionJournal(tmp_path, "db2", max_bytes=1 << 20)
    other.append(_entries(3, "XD02-1"))
    # a segment another live process is writing: locked by it
    busy = tmp_path / "positions-db1-1-424242.jsonl"
    busy.write_bytes(b"")
    fd = os.open(busy, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    mine.append(_entries(2))
    written: list[Entry] = []
    try:
        assert mine.replay(written.extend) == 2
        assert busy.exists()
    finally:
        os.close(fd)
    assert other.pending() > 0  # another database's positions are left alone
    assert mine.replay(written.extend) == 0 and not busy.exists()
    assert written == _entries(2)


def test_a_cut_last_line_is_dropped_and_rejected_rows_are_kept(tmp_path) -> None:
    journal = PositionJournal(tmp_path, "db1", max_bytes=1 << 20)
    journal.append(_entries(2))
    journal.close()
    (segment,) = tmp_path.glob("positions-*.jsonl")
    with segment.open("ab") as handle:
        handle.write(b'{"unit": "XD01-1", "lon": 114.4')  # a crash mid-write, never answered

    def refuse(entries: list[Entry]) -> None:
        msg = "no partition for 2026-12-02"
        raise Rejected(msg)

    assert journal.replay(refuse) == 0
    assert not segment.exists()
    kept = (tmp_path / "rejected" / segment.name).read_bytes().splitlines()
    assert len(kept) == 2
