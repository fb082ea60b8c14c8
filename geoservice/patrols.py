"""Patrol units and where they are: reported GPS positions, kept by day, and each unit's
last position in memory.

**Units.** The 340-officer team works the first-class patrol segments in teams
(``team_size`` per segment); each team rides out in units of ``OFFICERS_PER_UNIT``, coded
``<segment>-<n>`` (``XD01-1`` … ``XD01-6``): 102 units on the demo's 17 segments.

**Positions** (``POST /v1/patrols/positions``, read at the edge by
``server/models.PositionsRequest``; ``geoservice demo simulate-patrols``) arrive as
``Position`` values (WGS84, aware times) and are checked whole before any is kept: known
unit codes, inside the district, at most ``FUTURE_SLACK_S`` ahead. A position
older than ``Settings.position_max_age_s`` is ignored (counted, not stored). They go to
``patrol_position``, partitioned by day and kept ``Settings.positions_keep_days`` days.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time as clock
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from geoservice.db import one_line
from geoservice.errors import InvalidInput, shown
from geoservice.journal import Entry, Outage, PositionJournal, Rejected
from geoservice.locate import LocateIndex
from geoservice.metrics import POSITIONS_JOURNALED, POSITIONS_REPLAYED
from geoservice.store import VersionReader
from geoservice.times import CHINA

log = logging.getLogger(__name__)

OFFICERS_PER_UNIT = 3
FUTURE_SLACK_S = 60.0
"""A position may be this far ahead of the server's clock (GPS and server clocks differ)."""
REFRESH_S = 1.0
"""How often a server process re-reads the last positions others recorded."""
PRUNE_EVERY_S = 3600.0


@dataclass(frozen=True)
class PatrolUnit:
    code: str
    name: str
    segment: str


@dataclass(frozen=True)
class Position:
    """A unit's GPS fix: WGS84 longitude and latitude, an aware time."""

    unit: str
    lon: float
    lat: float
    time: datetime


def patrol_units(engine: Engine, version: int) -> list[PatrolUnit]:
    """The patrol units of a dataset version's patrol segments."""
    with engine.connect() as conn:
        rows = VersionReader(conn, version).patrol_segments()
    return [
        PatrolUnit(f"{row.code}-{n}", f"{row.name} {n}组", row.code)
        for row in rows
        for n in range(1, max(1, int(row.team_size) // OFFICERS_PER_UNIT) + 1)
    ]


def check_positions(
    positions: Sequence[Position], units: set[str], index: LocateIndex, *, now: datetime
) -> None:
    """Refuse the whole of ``positions`` (WGS84, aware times) when one is not acceptable:
    a unit not in ``units``, a time more than ``FUTURE_SLACK_S`` ahead of ``now``, or a
    point outside the district. Raises ``InvalidInput`` naming ``positions[i]``."""
    for i, p in enumerate(positions):
        if p.unit not in units:
            msg = (
                f"positions[{i}].unit {shown(p.unit)} is not a patrol unit; "
                f"expected one of the {len(units)} units such as {min(units, default='none')}"
            )
            raise InvalidInput(msg)
        if (p.time - now).total_seconds() > FUTURE_SLACK_S:
            msg = f"positions[{i}].time {p.time.isoformat()} is ahead of the server's clock ({now})"
            raise InvalidInput(msg)
    lon = np.array([p.lon for p in positions], dtype=np.float64)
    lat = np.array([p.lat for p in positions], dtype=np.float64)
    outside = np.flatnonzero(index.locate_many(lon, lat, nearest=False).status == 2)
    if len(outside):
        i = int(outside[0])
        msg = f"positions[{i}] ({lon[i]:.6f}, {lat[i]:.6f}) is outside the district"
        raise InvalidInput(msg)


def split_by_age(
    positions: Sequence[Position], now: datetime, max_age_s: float
) -> tuple[list[Position], int]:
    """The positions not older than ``max_age_s`` at ``now``, and how many were."""
    fresh = [p for p in positions if (now - p.time).total_seconds() <= max_age_s]
    return fresh, len(positions) - len(fresh)


JITTER_M = 100.0
"""Two positions of a unit this close never count as a jump, however close in time (GPS
noise, repeated fixes)."""
EARTH_RADIUS_M = 6_371_008.8


def distance_m(a: Position, b: Position) -> float:
    """Great-circle metres between two positions (haversine)."""
    lon1, lat1, lon2, lat2 = map(math.radians, (a.lon, a.lat, b.lon, b.lat))
    h = math.sin((lat2 - lat1) / 2) ** 2
    h += math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(min(1.0, h)))


@dataclass(frozen=True)
class Refused:
    """A position not kept: its unit, its time, and why."""

    unit: str
    time: str
    reason: str


def refuse_jumps(
    positions: list[Position], last: dict[str, Position], max_speed_kmh: float
) -> tuple[list[Position], list[Refused]]:
    """The positions a unit could have driven to, and those refused: each is compared, in
    time order, with the unit's last kept position (``last``, then the request's own) and
    refused when going there would take more than ``max_speed_kmh`` (beyond ``JITTER_M``).
    """
    refused: list[Refused] = []
    known = dict(last)
    order = sorted(range(len(positions)), key=lambda i: positions[i].time)
    keep = [True] * len(positions)
    for i in order:
        p = positions[i]
        before = known.get(p.unit)
        if before is not None:
            metres = distance_m(before, p)
            seconds = abs((p.time - before.time).total_seconds())
            if metres > JITTER_M and metres > max_speed_kmh / 3.6 * seconds:
                speed = "an instant" if seconds == 0 else f"{metres / seconds * 3.6:,.0f} km/h"
                refused.append(
                    Refused(
                        p.unit,
                        p.time.isoformat(),
                        f"{metres:,.0f} m from its last position ({before.time.isoformat()}) "
                        f"in {seconds:g} s: {speed}, over the limit of {max_speed_kmh:g} km/h",
                    )
                )
                keep[i] = False
                continue
        if before is None or before.time <= p.time:
            known[p.unit] = p
    kept = [p for p, ok in zip(positions, keep, strict=True) if ok]
    return kept, refused


INSERT_POSITION = (
    "INSERT INTO geoservice.patrol_position (unit, time, geom{received}) "
    "VALUES (:unit, :time, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326){received_value}) "
    "ON CONFLICT (unit, time) DO NOTHING"
)
"""A unit reports one position per instant (the unique key ``(unit, time)``, migration
0010): the same position written again — a journal replayed twice, a device resending —
is stored once."""


def is_outage(exc: BaseException) -> bool:
    """Whether a database error means the database is away (connection refused, lost,
    timed out), not that it refused what was sent."""
    return isinstance(
        exc, sa.exc.OperationalError | sa.exc.InterfaceError | sa.exc.TimeoutError
    ) or bool(getattr(exc, "connection_invalidated", False))


class PositionStore:
    """Positions in PostGIS (the recorder's engine, on the primary)."""

    def __init__(self, engine: Engine, keep_days: int) -> None:
        self.engine = engine
        self.keep_days = keep_days
        self._pruned_at = -np.inf

    def record(self, positions: list[Position]) -> None:
        """Insert positions (each ``(unit, time)`` once), making the day partitions they
        need (and, once an hour, dropping days older than ``keep_days``)."""
        if not positions:
            return
        with self.engine.begin() as conn:
            self._make_days(conn, positions)
            conn.execute(
                sa.text(INSERT_POSITION.format(received="", received_value="")),
                [p.__dict__ for p in positions],
            )
            if clock.monotonic() - self._pruned_at > PRUNE_EVERY_S:
                self._pruned_at = clock.monotonic()
                try:  # a refused prune (fewer days than the database's minimum) keeps them
                    with conn.begin_nested():
                        conn.execute(
                            sa.text("SELECT geoservice.drop_position_days(:k)"),
                            {"k": self.keep_days},
                        )
                except sa.exc.DBAPIError as exc:
                    log.warning("old position days kept: %s", one_line(exc))

    def replay(self, entries: list[Entry]) -> None:
        """Write journaled positions with the time they were received; a day whose
        partition is gone and may not be made any more raises :class:`Rejected`, the
        database going away :class:`Outage`."""
        try:
            with self.engine.begin() as conn:
                self._make_days(conn, entries)
                conn.execute(
                    sa.text(
                        INSERT_POSITION.format(received=", received_at", received_value=", :rec")
                    ),
                    [
                        {
                            "unit": e.unit,
                            "time": e.time,
                            "lon": e.lon,
                            "lat": e.lat,
                            "rec": e.received_at,
                        }
                        for e in entries
                    ],
                )
        except sa.exc.SQLAlchemyError as exc:
            if is_outage(exc):
                raise Outage(one_line(exc)) from exc
            if isinstance(exc, sa.exc.DataError | sa.exc.IntegrityError):
                raise Rejected(one_line(exc)) from exc
            raise Outage(one_line(exc)) from exc  # a grant missing, say: kept for later

    def probe(self) -> None:
        """Raise :class:`Outage` unless the database answers."""
        try:
            with self.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        except sa.exc.SQLAlchemyError as exc:
            raise Outage(one_line(exc)) from exc

    @staticmethod
    def _make_days(conn: sa.Connection, positions: list[Position] | list[Entry]) -> None:
        """The day partitions the positions need, made when missing (an existing one of
        any age is used as it is)."""
        for day in sorted({p.time.astimezone(CHINA).date() for p in positions}):
            conn.execute(
                sa.text(
                    "SELECT geoservice.ensure_position_day(:d) WHERE to_regclass(:name) IS NULL"
                ),
                {"d": day, "name": f"geoservice.patrol_position_{day:%Y%m%d}"},
            )


def read_last_positions(engine: Engine, max_age_s: float) -> list[Position]:
    """Each unit's latest position not older than ``max_age_s``."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT DISTINCT ON (unit) unit, ST_X(geom), ST_Y(geom), time "
                "FROM geoservice.patrol_position "
                "WHERE time > now() - make_interval(secs => :age) ORDER BY unit, time DESC"
            ),
            {"age": max_age_s},
        ).all()
    return [Position(unit, float(x), float(y), when) for unit, x, y, when in rows]


class LivePositions:
    """A server process's view of each unit's last position: updated at once by what this
    process records, and by :meth:`refresh` (the position keeper, every ``REFRESH_S``) with
    what the other processes recorded. Reading it never waits for the database, so it
    answers through an outage with what the process knows."""

    def __init__(self, engine: Engine, max_age_s: float) -> None:
        self.engine = engine
        self.max_age_s = max_age_s
        self._last: dict[str, Position] = {}
        self._lock = threading.Lock()

    def update(self, positions: list[Position]) -> None:
        with self._lock:
            for p in positions:
                if p.unit not in self._last or self._last[p.unit].time <= p.time:
                    self._last[p.unit] = p

    def refresh(self) -> None:
        """Re-read the last positions from the database (raises its errors)."""
        self.update(read_last_positions(self.engine, self.max_age_s))

    def current(self) -> list[Position]:
        """The units' last positions still young enough, from memory."""
        oldest = datetime.now(UTC) - timedelta(seconds=self.max_age_s)
        with self._lock:
            return sorted(
                (p for p in self._last.values() if p.time >= oldest), key=lambda p: p.unit
            )


class PositionRecorder:
    """Where a server process's positions go, and the keeper thread behind it.

    :meth:`record` writes to PostGIS; when the database is away (or was, and the journal
    still holds positions) it appends them to the :class:`PositionJournal` instead
    (fsync'ed before the answer). Either way :class:`LivePositions` knows them at once, so
    dispatch and live coverage answer from memory. The keeper thread, every
    ``REFRESH_S``, replays the journal once the database answers, then re-reads the last
    positions the other servers recorded.
    """

    def __init__(self, store: PositionStore, journal: PositionJournal, live: LivePositions) -> None:
        self.store = store
        self.journal = journal
        self.live = live
        self._outage = False
        self._live_down = False
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def degraded(self) -> bool:
        """PostgreSQL refused this process's last write of positions or last re-read, or
        positions still wait in the journal."""
        return self._outage or self._live_down or self.journal.pending() > 0

    def record(self, positions: list[Position]) -> None:
        """Keep ``positions`` in PostGIS, else in the journal (raises ``JournalFull`` when
        neither takes them: nothing kept)."""
        if not positions:
            return
        if not self._outage:
            try:
                self.store.record(positions)
            except sa.exc.SQLAlchemyError as exc:
                if not is_outage(exc):
                    raise
                self._outage = True
                log.warning("database unavailable (%s): positions go to the journal", one_line(exc))
            else:
                self.live.update(positions)
                return
        received = datetime.now(UTC)
        self.journal.append([Entry(p.unit, p.lon, p.lat, p.time, received) for p in positions])
        POSITIONS_JOURNALED.inc(len(positions))
        self.live.update(positions)
        self._wake.set()

    def tick(self) -> None:
        """Replay the journal if the database answers, then re-read the last positions."""
        if self._outage or self.journal.pending():
            try:
                self.store.probe()  # before sealing the segment being written
                replayed = self.journal.replay(self.store.replay)
            except Outage as exc:
                if not self._outage:
                    log.warning("journal not replayed yet: %s", exc)
                self._outage = True
            else:
                if replayed:
                    POSITIONS_REPLAYED.inc(replayed)
                    log.info("%d journaled positions written to the database", replayed)
                self._outage = False
        try:
            self.live.refresh()
        except sa.exc.SQLAlchemyError as exc:
            if not self._live_down:
                log.warning("last positions not re-read (%s); answering from memory", one_line(exc))
            self._live_down = True
        else:
            self._live_down = False

    def start(self) -> None:
        """The keeper thread (a first re-read now, so a new server knows where units are)."""
        with contextlib.suppress(Exception):
            self.tick()
        self._thread = threading.Thread(target=self._run, name="position-keeper", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(REFRESH_S)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.tick()
            except Exception:  # the keeper must outlive any one surprise
                log.exception("position keeper")

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(10)
        self.journal.close()
