"""A durable local journal of patrol positions accepted while PostgreSQL is away.

A server answers ``POST /v1/patrols/positions`` with 200 only once the positions are in
PostGIS or in this journal, on disk: each batch is one ``write`` of JSON lines to the
process's own segment file, then ``fsync``. When the database is back the server's
position keeper replays every segment of its database and deletes it; rows go in with
``ON CONFLICT (unit, time) DO NOTHING``, so a replay cut short (a crash between the commit
and the delete) and replayed again never writes a position twice.

**Files.** ``<dir>/positions-<database>-<time_ns>-<pid>.jsonl``: ``<database>`` is a digest of
the host, port and database name, so servers of different databases sharing a directory
never replay each other's positions. A process holds an exclusive ``flock`` on the segment
it is writing; any process of the same database replays a segment nobody holds (its own
sealed ones, and those of a process that died). Rows whose day can no longer be stored
(a partition that is gone or may not be made any more) are moved to ``<dir>/rejected/``
and logged, never dropped.

**Bound.** The segments of the directory together stay under ``max_bytes``
(``GEOSERVICE_JOURNAL_MAX_MB``); a batch that would pass it is refused whole
(:class:`JournalFull`: the API's 503 "journal full"), as is one the disk refuses.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import orjson

from geoservice.errors import DatabaseUnavailable

log = logging.getLogger(__name__)

PREFIX = "positions-"
SUFFIX = ".jsonl"


class JournalFull(DatabaseUnavailable):
    """PostgreSQL is away and the journal cannot take the positions either."""

    title = "Journal full"


@dataclass(frozen=True)
class Entry:
    """One journaled position: the unit, WGS84 lon/lat, its time, when it was received."""

    unit: str
    lon: float
    lat: float
    time: datetime
    received_at: datetime


def database_key(host: str | None, port: int | None, database: str | None) -> str:
    """A short digest naming one database (the journal's files carry it)."""
    text = f"{host or ''}:{port or ''}/{database or ''}"
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def encode(entries: Iterable[Entry]) -> bytes:
    return b"".join(
        orjson.dumps(
            {
                "unit": e.unit,
                "lon": e.lon,
                "lat": e.lat,
                "time": e.time.isoformat(),
                "received_at": e.received_at.isoformat(),
            }
        )
        + b"\n"
        for e in entries
    )


def decode(line: bytes) -> Entry:
    item = orjson.loads(line)
    return Entry(
        str(item["unit"]),
        float(item["lon"]),
        float(item["lat"]),
        datetime.fromisoformat(item["time"]),
        datetime.fromisoformat(item["received_at"]),
    )


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Outage(Exception):
    """Raised by a replay's writer when the database went away again: keep the segment."""


class Rejected(Exception):
    """Raised by a replay's writer for entries the database will never take."""


class PositionJournal:
    """The journal directory as one process sees it (thread-safe).

    Parameters
    ----------
    directory
        Where the segments live (made, mode 700, on first use).
    database
        :func:`database_key` of the database the positions belong to.
    max_bytes
        The bound on all segments of the directory together.
    """

    def __init__(self, directory: Path, database: str, max_bytes: int) -> None:
        self.directory = directory
        self.database = database
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._path: Path | None = None
        self._size = 0

    # --- writing ------------------------------------------------------------------------

    def append(self, entries: list[Entry]) -> None:
        """Write ``entries`` durably (fsync) or raise :class:`JournalFull`, keeping none."""
        if not entries:
            return
        data = encode(entries)
        with self._lock:
            used = self.size()
            if used + len(data) > self.max_bytes:
                msg = (
                    f"the database is unavailable and the position journal is full "
                    f"({used:,} of {self.max_bytes:,} bytes in {self.directory}); "
                    "positions not kept, send them again later"
                )
                raise JournalFull(msg)
            try:
                fd = self._segment()
                written = 0
                while written < len(data):
                    written += os.write(fd, data[written:])
                os.fsync(fd)
            except OSError as exc:
                self._undo()
                msg = (
                    f"the database is unavailable and the position journal in "
                    f"{self.directory} cannot be written ({exc.strerror}); positions not kept"
                )
                raise JournalFull(msg) from None
            self._size += len(data)

    def _segment(self) -> int:
        """This process's open segment (made, locked and its directory entry synced)."""
        if self._fd is not None:
            return self._fd
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self.directory / f"{PREFIX}{self.database}-{time.time_ns()}-{os.getpid()}{SUFFIX}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        _fsync_dir(self.directory)
        self._fd, self._path, self._size = fd, path, 0
        return fd

    def _undo(self) -> None:
        """Cut a failed write off the open segment (what was written before stays)."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self._size)
                os.fsync(self._fd)

    def _seal(self) -> None:
        """Close this process's segment: from now on a replay may take it."""
        if self._fd is not None:
            os.close(self._fd)  # releases the flock
            if self._size == 0 and self._path is not None:
                with contextlib.suppress(OSError):
                    self._path.unlink()
            self._fd, self._path, self._size = None, None, 0

    # --- reading ------------------------------------------------------------------------

    def segments(self) -> list[Path]:
        """This database's segments, oldest first."""
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return []
        mine = f"{PREFIX}{self.database}-"
        return sorted(
            (self.directory / n for n in names if n.startswith(mine) and n.endswith(SUFFIX)),
            key=lambda p: int(p.name.split("-")[2]),
        )

    def size(self) -> int:
        """Bytes in every segment of the directory (all databases: one disk bound)."""
        total = 0
        try:
            entries = list(os.scandir(self.directory))
        except FileNotFoundError:
            return 0
        for entry in entries:
            if entry.name.startswith(PREFIX) and entry.name.endswith(SUFFIX):
                with contextlib.suppress(FileNotFoundError):
                    total += entry.stat().st_size
        return total

    def pending(self) -> int:
        """Bytes of this database's positions waiting in the journal."""
        total = 0
        for path in self.segments():
            with contextlib.suppress(FileNotFoundError):
                total += path.stat().st_size
        return total

    def replay(self, write: Callable[[list[Entry]], None], chunk: int = 10_000) -> int:
        """Hand every segment nobody is writing to ``write`` (in chunks of ``chunk``
        entries), deleting each once all of it is written; this process's own segment is
        sealed first. ``write`` raises :class:`Outage` to stop (the segment stays) or
        :class:`Rejected` for a chunk that is moved to ``rejected/``. Returns the entries
        written."""
        with self._lock:
            self._seal()
        done = 0
        for path in self.segments():
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                continue
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # a live process is writing it
                if os.fstat(fd).st_nlink == 0:
                    continue  # replayed by another process meanwhile
                with os.fdopen(os.dup(fd), "rb") as handle:
                    data = handle.read()
                entries, broken = _parse(data, path)
                for start in range(0, len(entries), chunk):
                    part = entries[start : start + chunk]
                    try:
                        write(part)
                    except Rejected as exc:
                        self._reject(path, part, str(exc))
                    else:
                        done += len(part)
                if broken:
                    self._keep_broken(path, broken)
                path.unlink()
                _fsync_dir(self.directory)
            finally:
                os.close(fd)
        return done

    def _reject(self, path: Path, entries: list[Entry], why: str) -> None:
        where = self.directory / "rejected"
        where.mkdir(exist_ok=True, mode=0o700)
        with open(where / path.name, "ab") as handle:
            handle.write(encode(entries))
            handle.flush()
            os.fsync(handle.fileno())
        log.error(
            "%d journaled positions the database will not take (%s) kept in %s",
            len(entries),
            why,
            where / path.name,
        )

    def _keep_broken(self, path: Path, lines: list[bytes]) -> None:
        where = self.directory / "rejected"
        where.mkdir(exist_ok=True, mode=0o700)
        with open(where / (path.name + ".broken"), "ab") as handle:
            handle.write(b"\n".join(lines) + b"\n")
            handle.flush()
            os.fsync(handle.fileno())
        log.error("%d unreadable journal lines kept in %s", len(lines), where)

    def close(self) -> None:
        with self._lock:
            self._seal()


def _parse(data: bytes, path: Path) -> tuple[list[Entry], list[bytes]]:
    """The entries of a segment, and lines that are not entries. A last line without its
    newline is a write cut short by a crash before its fsync (never answered 200):
    dropped."""
    lines = data.split(b"\n")
    tail = lines.pop()  # b"" after a final newline
    if tail:
        log.warning("%s: an unfinished last line (a write cut short) dropped", path.name)
    entries, broken = [], []
    for line in lines:
        if not line:
            continue
        try:
            entries.append(decode(line))
        except (ValueError, KeyError, TypeError):
            broken.append(line)
    return entries, broken
