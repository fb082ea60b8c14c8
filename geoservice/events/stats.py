"""Reading the register: counts, closure rates, handling hours and overdue events by
town, unit, grid, category or month, and events per grid for the coverage weights."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from geoservice.datasets import current_version_id
from geoservice.events.register import named
from geoservice.events.rules import handler, routing
from geoservice.locate import LocateIndex
from geoservice.store import VersionReader
from geoservice.times import CHINA, in_china


class StatsBy(StrEnum):
    """What the stats group events by."""

    TOWN = "town"
    UNIT = "unit"
    GRID = "grid"
    CATEGORY = "category"
    MONTH = "month"


KEY_SQL = {
    StatsBy.TOWN: "e.town_code",
    StatsBy.UNIT: "e.unit_code",
    StatsBy.GRID: "e.grid_code",
    StatsBy.CATEGORY: "e.category",
    StatsBy.MONTH: "to_char(e.time AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM')",
}


def window_sql(
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


def deadline_sql() -> str:
    """Each category's deadline in days, as a SQL CASE."""
    cases = " ".join(
        f"WHEN '{code}' THEN {int(rule['deadline_days'])}" for code, rule in routing().items()
    )
    return f"(CASE e.category {cases} END)"


def event_stats(
    engine: Engine,
    by: StatsBy,
    start: datetime | None = None,
    end: datetime | None = None,
    *,
    as_of: datetime | None = None,
    town: str | None = None,
) -> dict[str, Any]:
    """Counts, closure rate, median handling hours and overdue per ``by`` value (with
    ``town``, of the events located in that town only)."""
    where, params = window_sql(start, end, town)
    params["as_of"] = as_of or datetime.now(UTC)
    sql = f"""
        SELECT {KEY_SQL[by]} AS key, count(*) AS events,
            count(*) FILTER (WHERE e.status = 'closed') AS closed,
            count(*) FILTER (WHERE e.status = 'open') AS open,
            percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM e.closed_at - e.time))
                FILTER (WHERE e.status = 'closed') / 3600 AS median_hours,
            count(*) FILTER (WHERE e.status = 'open' AND
                e.time + make_interval(days => {deadline_sql()}) < :as_of) AS overdue
        FROM geoservice.event e WHERE {where} GROUP BY 1 ORDER BY 1
    """
    with engine.connect() as conn:
        rows = conn.execute(sa.text(sql), params).mappings().all()
        version = current_version_id(conn)
        names = names_at(conn, by, version)
    groups = [
        {
            "code": r["key"],
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


def names_at(conn: Connection, by: StatsBy, version: int | None) -> dict[str, str]:
    """Display names for the keys of ``by`` (boundaries of ``version``; category names
    from the routing rules)."""
    if by == StatsBy.CATEGORY:
        return {code: rule["name"] for code, rule in routing().items()}
    if by == StatsBy.MONTH or version is None:
        return {}
    return VersionReader(conn, version).names(by)


def overdue_events(
    engine: Engine, as_of: datetime | None = None, limit: int = 1000
) -> dict[str, Any]:
    """Open events past their category's deadline at ``as_of`` (naive: China time;
    default: now), most overdue first; grid, unit and town named as in the current
    version."""
    as_of = datetime.now(UTC) if as_of is None else in_china(as_of)
    with engine.connect() as conn:
        rows = (
            conn.execute(
                sa.text(f"""
                SELECT * FROM (
                    SELECT e.id, e.time, e.category, e.grid_code, e.unit_code, e.town_code,
                        e.time + make_interval(days => {deadline_sql()}) AS deadline
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
                    AND e.time + make_interval(days => {deadline_sql()}) < :as_of
            """),
                {"as_of": as_of},
            ).scalar_one()
            if len(rows) == limit
            else len(rows)
        )
        version = current_version_id(conn)
        names = {
            by: names_at(conn, by, version) for by in (StatsBy.GRID, StatsBy.UNIT, StatsBy.TOWN)
        }
    return {
        "as_of": as_of.astimezone(CHINA).isoformat(),
        "overdue": total,
        "events": [
            {
                "id": r["id"],
                "time": r["time"].astimezone(CHINA).isoformat(),
                "category": r["category"],
                "grid": named(r["grid_code"], names[StatsBy.GRID].get(r["grid_code"])),
                "unit": named(r["unit_code"], names[StatsBy.UNIT].get(r["unit_code"])),
                "town": named(r["town_code"], names[StatsBy.TOWN].get(r["town_code"])),
                "deadline": r["deadline"].astimezone(CHINA).isoformat(),
                "days_overdue": round((as_of - r["deadline"]).total_seconds() / 86400, 1),
                **handler(r["category"], r["town_code"]),
            }
            for r in rows
        ],
        "dataset_version": version,
    }


def events_per_grid(
    engine: Engine, index: LocateIndex, start: datetime | None = None, end: datetime | None = None
) -> np.ndarray:
    """How many events happened in each grid of ``index`` (in ``index.codes`` order),
    placed by where they happened in that version's grids."""
    where, params = window_sql(start, end)
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
