"""The patrol team on the move (SYNTHETIC): each unit rides its segment back and forth.

Unit ``n`` of a segment with ``m`` units starts at ``n / m`` of the way along and moves
at ``speed_kmh``, turning at the ends; positions depend only on the elapsed time, so a
run is reproducible. ``geoservice demo simulate-patrols`` records them as the GPS feed
would (``POST /v1/patrols/positions`` checks the same way).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime

import numpy as np
import shapely
from sqlalchemy.engine import Engine

from geoservice.crs import from_metric, to_metric
from geoservice.locate import LocateIndex
from geoservice.patrols import (
    PatrolUnit,
    Position,
    PositionStore,
    check_positions,
    split_by_age,
)
from geoservice.store import VersionReader

PATROL_SPEED_KMH = 20.0


class PatrolSimulator:
    """Positions of every unit ``t`` seconds after the start."""

    def __init__(
        self, engine: Engine, version: int, units: list[PatrolUnit], speed_kmh: float
    ) -> None:
        with engine.connect() as conn:
            rows = VersionReader(conn, version).patrol_segments()
        lines = {row.code: shapely.from_wkb(bytes(row.wkb)) for row in rows}
        self.units = units
        self.metric = {
            code: shapely.linestrings(np.column_stack(to_metric(*np.asarray(line.coords).T)))
            for code, line in lines.items()
        }
        count = {code: sum(u.segment == code for u in units) for code in lines}
        rank: dict[str, int] = {}
        self.start = []
        for unit in units:
            rank[unit.segment] = rank.get(unit.segment, 0) + 1
            self.start.append((rank[unit.segment] - 1) / count[unit.segment])
        self.speed_mps = speed_kmh / 3.6

    def positions(self, t_s: float, now: datetime) -> list[Position]:
        out = []
        for unit, start in zip(self.units, self.start, strict=True):
            line = self.metric[unit.segment]
            length = line.length
            travelled = (start * 2 * length + self.speed_mps * t_s) % (2 * length)
            along = travelled if travelled <= length else 2 * length - travelled  # turn back
            point = shapely.line_interpolate_point(line, along)
            lon, lat = from_metric(np.array([point.x]), np.array([point.y]))
            out.append(Position(unit.code, float(lon[0]), float(lat[0]), now))
        return out


def drive(
    simulator: PatrolSimulator,
    store: PositionStore,
    index: LocateIndex,
    max_age_s: float,
    seconds: float,
    every_s: float,
) -> Iterator[tuple[datetime, int]]:
    """Record every unit's position every ``every_s`` seconds for ``seconds`` (at least
    once), checked as ``POST /v1/patrols/positions`` checks them; yields (time, count)."""
    codes = {u.code for u in simulator.units}
    began = time.monotonic()
    while True:
        elapsed = time.monotonic() - began
        now = datetime.now(UTC)
        positions = simulator.positions(elapsed, now)
        check_positions(positions, codes, index, now=now)
        positions, _ = split_by_age(positions, now, max_age_s)
        store.record(positions)
        yield now, len(positions)
        if elapsed >= seconds:
            return
        time.sleep(max(0.0, every_s - (time.monotonic() - began - elapsed)))
