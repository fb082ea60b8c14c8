"""Writing the register: events located in the dataset version current at their time,
routed, and stored all or none (an id already recorded is a ``Conflict``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from geoservice.audit import Actor, record
from geoservice.errors import Conflict, NoDataset, ValidationFailed
from geoservice.events.parse import MAX_PROBLEMS, Events, check_times, is_blank, read_events_csv
from geoservice.events.rules import handler
from geoservice.locate import LocateIndex, build_index


def versions_at(conn: Connection, times: Sequence[datetime]) -> tuple[np.ndarray, int]:
    """The version current at each time (the first version before it), and how many times
    came before the first version."""
    history = conn.execute(
        sa.text("SELECT since, version_id FROM geoservice.current_history ORDER BY since, id")
    ).all()
    if not history:
        msg = "no dataset version is published yet: events are located in one"
        raise NoDataset(msg)
    since = np.array([h[0].timestamp() for h in history])
    moment = np.array([t.timestamp() for t in times])
    position = np.searchsorted(since, moment, side="right") - 1
    early = int((position < 0).sum())
    return np.array([h[1] for h in history])[np.maximum(position, 0)], early


def locate_events(
    engine: Engine, events: Events, index_of: Callable[[int], LocateIndex] | None = None
) -> tuple[pd.DataFrame, int]:
    """Each event with the grid, unit and town of the version current at its time, and
    how many predate the first version; ``ValidationFailed`` for events outside the
    district. ``index_of`` gives a version's locate index (default: built now)."""
    with engine.connect() as conn:
        first = conn.execute(
            sa.text("SELECT min(since) FROM geoservice.current_history")
        ).scalar_one()
        if first is not None:
            check_times(events, first, datetime.now(UTC))
        version, early = versions_at(conn, events.times)
    levels = ("grid", "unit", "town")
    codes = {level: np.full(len(events), None, dtype=object) for level in levels}
    names = {level: np.full(len(events), None, dtype=object) for level in levels}
    problems = []
    for v in np.unique(version).tolist():
        rows = np.flatnonzero(version == v)
        index = index_of(v) if index_of is not None else build_index(engine, v)
        batch = index.locate_many(events.lon[rows], events.lat[rows], nearest=False)
        for row, g, status in zip(
            rows.tolist(), batch.grid.tolist(), batch.status.tolist(), strict=True
        ):
            if status == 2:
                problems.append(
                    f"event {events.ids[row]} ({events.lon[row]:.6f}, {events.lat[row]:.6f}) "
                    f"is outside the district in dataset version {v}"
                )
                continue
            hierarchy = index.grids[g].hierarchy
            for level in levels:
                named = hierarchy.get(level) or {}
                codes[level][row] = named.get("code")
                names[level][row] = named.get("name")
    if problems:
        msg = f"{len(problems)} event(s) outside the district; nothing was recorded"
        raise ValidationFailed(msg, problems[:MAX_PROBLEMS])
    frame = pd.DataFrame(
        {
            "id": events.ids,
            "time": events.times,
            "category": events.categories,
            "status": events.statuses,
            "closed_at": events.closed_at,
            "description": events.descriptions,
            "lon": events.lon,
            "lat": events.lat,
            **{f"{level}_code": codes[level] for level in levels},
            **{f"{level}_name": names[level] for level in levels},
            "dataset_version": version,
        }
    )
    return frame, early


INSERT = """
INSERT INTO geoservice.event (id, time, category, status, closed_at, description, geom,
    grid_code, unit_code, town_code, dataset_version, recorded_by)
VALUES (:id, :time, :category, :status, :closed_at, :description,
    ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), :grid_code, :unit_code, :town_code,
    :dataset_version, :by)
"""
REPLACE = (
    INSERT
    + """
ON CONFLICT (id) DO UPDATE SET time = EXCLUDED.time, category = EXCLUDED.category,
    status = EXCLUDED.status, closed_at = EXCLUDED.closed_at,
    description = EXCLUDED.description, geom = EXCLUDED.geom, grid_code = EXCLUDED.grid_code,
    unit_code = EXCLUDED.unit_code, town_code = EXCLUDED.town_code,
    dataset_version = EXCLUDED.dataset_version, recorded_at = now(),
    recorded_by = EXCLUDED.recorded_by
"""
)


def store_events(
    engine: Engine, frame: pd.DataFrame, by: str, *, replace: bool, audit: Actor | None = None
) -> int:
    """Insert located events in one transaction. ``replace`` (the ETL) updates events
    already stored under the same id; otherwise (the API) such an id is refused. With
    ``audit``, an audit log entry in the same transaction."""
    records = [
        {
            **{k: None if is_blank(v) or v is pd.NaT else v for k, v in row.items()},
            "by": by,
            "dataset_version": int(row["dataset_version"]),
        }
        for row in frame.astype(object).to_dict("records")
    ]
    with engine.begin() as conn:
        if not replace:
            taken = (
                conn.execute(
                    sa.text("SELECT id FROM geoservice.event WHERE id = ANY(:ids)"),
                    {"ids": list(frame["id"])},
                )
                .scalars()
                .all()
            )
            if taken:
                msg = f"event id(s) {sorted(taken)[:5]} already recorded; ids are unique"
                raise Conflict(msg)
        for start in range(0, len(records), 5_000):
            try:
                conn.execute(
                    sa.text(REPLACE if replace else INSERT), records[start : start + 5_000]
                )
            except sa.exc.IntegrityError as exc:  # recorded meanwhile, by a racing request
                if getattr(exc.orig, "sqlstate", None) != "23505":
                    raise
                detail = getattr(getattr(exc.orig, "diag", None), "message_detail", None)
                msg = f"event id already recorded ({detail or exc.orig}); ids are unique"
                raise Conflict(msg) from None
        if audit is not None:
            record(conn, audit, "events_loaded", detail={"events": len(records)})
    return len(records)


def load_events_file(
    engine: Engine, path: Any, actor: Actor, *, dry_run: bool = False
) -> tuple[pd.DataFrame, int]:
    """Read, check, locate and (unless ``dry_run``) store an events CSV as the ETL does:
    ids already stored are replaced. The located events and how many predate the first
    version."""
    frame, early = locate_events(engine, read_events_csv(path))
    if not dry_run:
        store_events(engine, frame, actor.name, replace=True, audit=actor)
    return frame, early


def answer_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Located events as the API answers them: grid, unit and town as ``{code, name}`` of
    the version the event was located in (``None`` where the grid has no such parent)."""
    return [
        {
            "id": r.id,
            "grid": named(r.grid_code, r.grid_name),
            "unit": named(r.unit_code, r.unit_name),
            "town": named(r.town_code, r.town_name),
            "dataset_version": int(r.dataset_version),
            **handler(r.category, r.town_code),
        }
        for r in frame.itertuples()
    ]


def named(code: str | None, name: str | None) -> dict[str, str | None] | None:
    """A feature as answers name it, ``{code, name}``; ``None`` without a code."""
    return None if code is None else {"code": code, "name": name}
