"""The grid event register: events located at their time, routed by rules kept as data,
counted for planners.

- **Located at their time**: an event's grid, unit and town are those of the dataset
  version that was current when it happened (``current_history``), so an event of last
  spring stays in the grid it happened in after this autumn's boundary revision. An
  event older than the first version is located in the first version (the boundaries
  geoservice knew first) and the load says how many were.
- **Routing** (``geoservice/data/event_routing.json``): each category goes to the
  event's town, to a district department with a deadline, or to a lead department with
  helpers. An open event past its category's deadline is overdue.
- **Stats** by town, unit, grid, category or month: events, closed, open, closure rate,
  median handling hours (of closed events), overdue.
- **Bounds** (API and ETL alike): ids are strings of 1 to ``MAX_ID_CHARS`` characters of
  ``A-Z a-z 0-9 _ . : -``; a description is text of at most ``MAX_DESCRIPTION_CHARS``
  characters; category and status are those of the routing rules; times (and closing
  times) lie from ``SPAN_BEFORE_FIRST`` (ten years) before the first dataset version
  became current to ``AHEAD`` (one day) from now. The table itself refuses times outside
  [1900, 2200) (migration 0008), so no stored row can break a read. An id already
  recorded (``POST /v1/events``), also by a request racing this one, is a ``Conflict``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache
from importlib import resources
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from geoservice.audit import Actor, record
from geoservice.crs import parse_crs
from geoservice.datasets import current_version_id
from geoservice.errors import Conflict, InvalidInput, NoDataset, ValidationFailed, shown
from geoservice.locate import LocateIndex, build_index, named_items, to_wgs84_points
from geoservice.patrols import CHINA, in_china, parse_time

STATUS_NAMES = {
    "open": "open",
    "in_progress": "open",
    "in progress": "open",
    "在办": "open",
    "办理中": "open",
    "closed": "closed",
    "办结": "closed",
    "已办结": "closed",
}
"""Statuses as sources write them, to the two the register keeps."""
STATS_BY = ("town", "unit", "grid", "category", "month")
MAX_EVENTS_PER_REQUEST = 10_000
MAX_PROBLEMS = 50
COLUMNS = ("id", "time", "category", "status", "lon", "lat")
MAX_ID_CHARS = 64
ID_PATTERN = re.compile(rf"[A-Za-z0-9_.:-]{{1,{MAX_ID_CHARS}}}")
ID_EXPECTED = f"1 to {MAX_ID_CHARS} of the characters A-Z a-z 0-9 _ . : -"
MAX_DESCRIPTION_CHARS = 2_000
SPAN_BEFORE_FIRST = timedelta(days=3653)
"""Events may be this much (ten years) older than the first dataset version."""
AHEAD = timedelta(days=1)
"""Events (and closing times) may be this far ahead of the server's clock."""
OPTIONAL_COLUMNS = ("description", "closed_at")


@cache
def routing() -> dict[str, dict[str, Any]]:
    """The routing rules by category code (the shipped file)."""
    text = resources.files("geoservice.data").joinpath("event_routing.json").read_text("utf-8")
    return json.loads(text)["categories"]


@cache
def category_names() -> dict[str, str]:
    """Category codes and names (as sources write them) to codes."""
    return {
        **{rule["name"]: code for code, rule in routing().items()},
        **{code: code for code in routing()},
    }


def handler(category: str, town: str | None) -> dict[str, Any]:
    """Who an event of ``category`` in ``town`` goes to, and the deadline in days."""
    rule = routing()[category]
    route = rule["route"]
    out: dict[str, Any] = {"route": route, "deadline_days": rule["deadline_days"]}
    if route == "town":
        out["handler"] = town
    elif route == "department":
        out["handler"] = rule["department"]
    else:
        out["handler"] = rule["lead"]
        out["helpers"] = list(rule["helpers"])
    return out


@dataclass(frozen=True)
class Events:
    """Checked events, as columns (WGS84, aware times)."""

    ids: list[str]
    times: list[datetime]
    categories: list[str]
    statuses: list[str]
    closed_at: list[datetime | None]
    descriptions: list[str | None]
    lon: np.ndarray
    lat: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)


def parse_events(rows: Sequence[dict[str, Any]], where: str, crs: str | None = None) -> Events:
    """Events from records (CSV rows or JSON objects); every problem is collected and
    ``ValidationFailed`` names each (the first ``MAX_PROBLEMS``)."""
    problems: list[str] = []
    category_of = category_names()
    ids: list[str] = []
    categories: list[str] = []
    statuses: list[str] = []
    times: list[datetime] = []
    closed: list[datetime | None] = []
    points: list[list[float]] = []
    seen: dict[str, int] = {}
    for n, row in enumerate(rows):
        at = f"{where} {n + 1}" if where == "row" else f"{where}[{n}]"
        missing = [c for c in COLUMNS if _blank(row.get(c))]
        if missing:
            problems.append(f"{at}: {', '.join(missing)} missing")
            ids.append("")
            times.append(datetime.now(UTC))
            closed.append(None)
            categories.append("")
            statuses.append("")
            points.append([0.0, 0.0])
            continue
        if not isinstance(row["id"], str):
            problems.append(f"{at}: id {shown(row['id'])} is not a string; expected {ID_EXPECTED}")
        key = row["id"].strip() if isinstance(row["id"], str) else shown(row["id"])
        if isinstance(row["id"], str) and not ID_PATTERN.fullmatch(key):
            cut = key if len(key) <= 80 else f"{key[:80]}… ({len(key):,} characters)"
            problems.append(f"{at}: id {cut!r}; expected {ID_EXPECTED}")
        description = row.get("description")
        if not _blank(description) and not isinstance(description, str):
            problems.append(f"{at}: description {shown(description)} is not text")
        elif isinstance(description, str) and len(description) > MAX_DESCRIPTION_CHARS:
            problems.append(
                f"{at}: description of {len(description):,} characters is over the limit of "
                f"{MAX_DESCRIPTION_CHARS:,}"
            )
        if key in seen:
            problems.append(f"{at}: id {shown(key)} repeats {where} {seen[key] + 1}")
        seen[key] = n
        ids.append(key)
        when = closed_when = None
        try:
            when = parse_time(_as_text(row["time"]), f"{at}: time")
        except InvalidInput as exc:
            problems.append(str(exc))
        category = (
            category_of.get(row["category"].strip()) if isinstance(row["category"], str) else None
        )
        if category is None:
            problems.append(
                f"{at}: category {shown(row['category'])} is unknown; expected one of "
                f"{', '.join(routing())} (or their names "
                f"{', '.join(rule['name'] for rule in routing().values())})"
            )
        status = (
            STATUS_NAMES.get(row["status"].strip().lower())
            if isinstance(row["status"], str)
            else None
        )
        if status is None:
            problems.append(
                f"{at}: status {shown(row['status'])}; expected open (in_progress, 在办) or "
                "closed (办结)"
            )
        categories.append(category or "")
        statuses.append(status or "")
        if not _blank(row.get("closed_at")):
            try:
                closed_when = parse_time(_as_text(row["closed_at"]), f"{at}: closed_at")
            except InvalidInput as exc:
                problems.append(str(exc))
        if status == "open" and closed_when is not None:
            problems.append(
                f"{at}: status open with closed_at {shown(row['closed_at'])}; one or other"
            )
        if when and closed_when and closed_when < when:
            problems.append(f"{at}: closed_at {row['closed_at']} is before time {row['time']}")
        times.append(when or datetime.now(UTC))
        closed.append(closed_when)
        values = []
        for axis in ("lon", "lat"):
            try:
                values.append(float(row[axis]))
            except (TypeError, ValueError):
                problems.append(f"{at}: {axis} {shown(row[axis])} is not a number")
                values.append(float("nan"))
        points.append(values)
    lon = lat = np.zeros(0)
    if points and not problems:
        try:
            lon, lat = to_wgs84_points(points, parse_crs(crs))
        except InvalidInput as exc:
            problems.append(named_items(str(exc), where))
    if problems:
        count = len(problems)
        msg = f"{count} problem{'s' if count > 1 else ''} in the events; nothing was recorded"
        raise ValidationFailed(msg, problems[:MAX_PROBLEMS])
    return Events(
        ids,
        times,
        categories,
        statuses,
        closed,
        [None if _blank(r.get("description")) else str(r["description"]) for r in rows],
        lon,
        lat,
    )


def _as_text(value: Any) -> Any:
    """A time cell as text: a string stripped, a number or a spreadsheet's date written
    out; anything else (a list, an object) as it is, for ``parse_time`` to refuse."""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, int | float | date):
        return str(value)
    return value


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value)) or value == ""


def read_events_csv(path: Any) -> Events:
    """An events CSV (UTF-8, with or without BOM): ``id, time, category, status, lon, lat``
    and optionally ``description, closed_at``."""
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        msg = f"{path}: not a readable UTF-8 CSV ({exc})"
        raise InvalidInput(msg) from None
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        msg = (
            f"{path}: column(s) {', '.join(missing)} missing; expected "
            f"{', '.join(COLUMNS)} and optionally {', '.join(OPTIONAL_COLUMNS)}"
        )
        raise InvalidInput(msg)
    return parse_events(frame.to_dict("records"), "row")


def check_times(events: Events, first: datetime, now: datetime) -> None:
    """``ValidationFailed`` naming each event whose time or closing time lies outside
    ``SPAN_BEFORE_FIRST`` before ``first`` (when the first version became current) to
    ``AHEAD`` of ``now``."""
    earliest, latest = first - SPAN_BEFORE_FIRST, now + AHEAD
    bounds = (
        f"expected {earliest.astimezone(CHINA):%Y-%m-%d} (ten years before the first dataset "
        f"version) to {latest.astimezone(CHINA):%Y-%m-%d %H:%M} (a day from now)"
    )
    problems = []
    for key, when, closed in zip(events.ids, events.times, events.closed_at, strict=True):
        if not earliest <= when <= latest:
            problems.append(f"event {key!r}: time {when.isoformat()} is out of range; {bounds}")
        if closed is not None and not closed <= latest:
            problems.append(
                f"event {key!r}: closed_at {closed.isoformat()} is out of range; {bounds}"
            )
    if problems:
        msg = f"{len(problems)} event time(s) out of range; nothing was recorded"
        raise ValidationFailed(msg, problems[:MAX_PROBLEMS])


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
    grid = np.empty(len(events), dtype=object)
    unit = np.empty(len(events), dtype=object)
    town = np.empty(len(events), dtype=object)
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
            grid[row] = hierarchy["grid"]["code"]
            unit[row] = (hierarchy.get("unit") or {}).get("code")
            town[row] = (hierarchy.get("town") or {}).get("code")
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
            "grid_code": grid,
            "unit_code": unit,
            "town_code": town,
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
            **{k: None if _blank(v) or v is pd.NaT else v for k, v in row.items()},
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
    """Located events as the API answers them."""
    return [
        {
            "id": r.id,
            "grid": r.grid_code,
            "unit": r.unit_code,
            "town": r.town_code,
            "dataset_version": int(r.dataset_version),
            **handler(r.category, r.town_code),
        }
        for r in frame.itertuples()
    ]


# --- reading the register ------------------------------------------------------------------

KEY_SQL = {
    "town": "e.town_code",
    "unit": "e.unit_code",
    "grid": "e.grid_code",
    "category": "e.category",
    "month": "to_char(e.time AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM')",
}


def _window(
    start: datetime | None, end: datetime | None, town: str | None = None
) -> tuple[str, dict[str, Any]]:
    """The SQL condition (on ``e``) and parameters for events in ``[start, end)`` (naive
    times: China time), and with ``town``, located in that town."""
    where: list[str] = []
    params: dict[str, Any] = {}
    if town is not None:
        where.append("e.town_code = :town")
        params["town"] = town
    if start is not None:
        where.append("e.time >= :start")
        params["start"] = in_china(start)
    if end is not None:
        where.append("e.time < :end")
        params["end"] = in_china(end)
    return (" AND ".join(where) or "TRUE"), params


def _deadline_sql() -> str:
    """Each category's deadline in days, as a SQL CASE."""
    cases = " ".join(
        f"WHEN '{code}' THEN {int(rule['deadline_days'])}" for code, rule in routing().items()
    )
    return f"(CASE e.category {cases} END)"


def event_stats(
    engine: Engine,
    by: str,
    start: datetime | None = None,
    end: datetime | None = None,
    *,
    as_of: datetime | None = None,
    town: str | None = None,
) -> dict[str, Any]:
    """Counts, closure rate, median handling hours and overdue per ``by`` value (with
    ``town``, of the events located in that town only)."""
    if by not in STATS_BY:
        msg = f"by={by!r}; expected one of {', '.join(STATS_BY)}"
        raise InvalidInput(msg)
    where, params = _window(start, end, town)
    params["as_of"] = as_of or datetime.now(UTC)
    sql = f"""
        SELECT {KEY_SQL[by]} AS key, count(*) AS events,
            count(*) FILTER (WHERE e.status = 'closed') AS closed,
            count(*) FILTER (WHERE e.status = 'open') AS open,
            percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM e.closed_at - e.time))
                FILTER (WHERE e.status = 'closed') / 3600 AS median_hours,
            count(*) FILTER (WHERE e.status = 'open' AND
                e.time + make_interval(days => {_deadline_sql()}) < :as_of) AS overdue
        FROM geoservice.event e WHERE {where} GROUP BY 1 ORDER BY 1
    """
    with engine.connect() as conn:
        rows = conn.execute(sa.text(sql), params).mappings().all()
        version = current_version_id(conn)
        names = _names(conn, by, version)
    groups = [
        {
            "key": r["key"],
            "name": names.get(r["key"]),
            "events": r["events"],
            "closed": r["closed"],
            "open": r["open"],
            "closure_rate": round(r["closed"] / r["events"], 4),
            "median_handling_hours": None
            if r["median_hours"] is None
            else round(float(r["median_hours"]), 2),
            "overdue": r["overdue"],
        }
        for r in rows
    ]
    total = sum(g["events"] for g in groups)
    closed = sum(g["closed"] for g in groups)
    return {
        "by": by,
        "from": in_china(start).isoformat() if start else None,
        "to": in_china(end).isoformat() if end else None,
        "events": total,
        "closed": closed,
        "open": total - closed,
        "closure_rate": round(closed / total, 4) if total else None,
        "overdue": sum(g["overdue"] for g in groups),
        "groups": groups,
        "dataset_version": version,
    }


def _names(conn: Connection, by: str, version: int | None) -> dict[str, str]:
    """Display names for the keys of ``by`` (boundaries of ``version``; category names
    from the routing rules)."""
    if by == "category":
        return {code: rule["name"] for code, rule in routing().items()}
    if by == "month":
        return {}
    rows = conn.execute(
        sa.text(
            "SELECT code, name FROM geoservice.boundary "
            "WHERE snapshot_id = geoservice.snapshot_of(:v, :l)"
        ),
        {"v": version, "l": by},
    ).all()
    return dict(rows)


def overdue_events(
    engine: Engine, as_of: datetime | None = None, limit: int = 1000
) -> dict[str, Any]:
    """Open events past their category's deadline at ``as_of`` (naive: China time;
    default: now), most overdue first."""
    as_of = datetime.now(UTC) if as_of is None else in_china(as_of)
    with engine.connect() as conn:
        rows = (
            conn.execute(
                sa.text(f"""
                SELECT * FROM (
                    SELECT e.id, e.time, e.category, e.grid_code, e.unit_code, e.town_code,
                        e.time + make_interval(days => {_deadline_sql()}) AS deadline
                    FROM geoservice.event e WHERE e.status = 'open'
                ) open_events
                WHERE deadline < :as_of
                ORDER BY deadline, id LIMIT :limit
            """),
                {"as_of": as_of, "limit": limit},
            )
            .mappings()
            .all()
        )
        total = (  # the whole count, the list above being limited
            conn.execute(
                sa.text(f"""
                SELECT count(*) FROM geoservice.event e WHERE e.status = 'open'
                    AND e.time + make_interval(days => {_deadline_sql()}) < :as_of
            """),
                {"as_of": as_of},
            ).scalar_one()
            if len(rows) == limit
            else len(rows)
        )
    return {
        "as_of": as_of.astimezone(CHINA).isoformat(),
        "overdue": total,
        "events": [
            {
                "id": r["id"],
                "time": r["time"].astimezone(CHINA).isoformat(),
                "category": r["category"],
                "grid": r["grid_code"],
                "unit": r["unit_code"],
                "town": r["town_code"],
                "deadline": r["deadline"].astimezone(CHINA).isoformat(),
                "days_overdue": round((as_of - r["deadline"]).total_seconds() / 86400, 1),
                **handler(r["category"], r["town_code"]),
            }
            for r in rows
        ],
    }


def events_per_grid(
    engine: Engine, index: LocateIndex, start: datetime | None = None, end: datetime | None = None
) -> np.ndarray:
    """How many events happened in each grid of ``index`` (in ``index.codes`` order),
    placed by where they happened in that version's grids."""
    where, params = _window(start, end)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(f"SELECT ST_X(e.geom), ST_Y(e.geom) FROM geoservice.event e WHERE {where}"),
            params,
        ).all()
    counts = np.zeros(len(index.codes))
    if rows:
        lon, lat = np.array(rows, dtype=float).T
        batch = index.locate_many(lon, lat, nearest=False)
        np.add.at(counts, batch.grid[batch.status != 2], 1.0)
    return counts
