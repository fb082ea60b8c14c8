"""What a bulletin says, gathered from the register, the coverage model and the dataset
versions: figures first, tables second (the renderers only lay them out).

Every count, closure rate, median and overdue figure comes from ``events.event_stats``
(the function behind ``GET /v1/events/stats``) or from the same SQL conditions
(``events.window_sql``, the deadline ``CASE`` of the routing rules), at one ``as_of`` time:
a bulletin's figures equal the API's for the same ``from``/``to``.

- **On time** (按时办结率): events of the period closed no later than their category's
  deadline, over the events whose outcome is known at ``as_of`` — those closed plus those
  still open past their deadline. Open events not yet due are left out.
- **Departments** (责任单位): each event's handler by the routing rules (a district
  department, the lead department of a joint category, or the town for town-routed ones),
  ranked by on-time rate (highest first), then by overdue count (fewest first).
- **Hot spots**: Getis-Ord Gi* (PySAL ``esda.G_Local``, ``star=True``, binary Queen
  contiguity from ``libpysal``) on the period's event count per base grid of the current
  dataset version, classed by the analytical z-score like ArcGIS's Gi_Bin: hot or cold at
  99%, 95% and 90% confidence. (``esda`` and ``libpysal`` install from PyPI as pure
  Python wheels, so the kernel-density fallback the issue allowed is not needed: Gi*
  says which clusters are significant, a density surface only where events are many.)
- **Coverage**: the 1/3/5-minute response coverage of the current version from every
  origin (``coverage.CoverageModel.response``), each grid classed by its minutes to reach.
- **Changes**: the versions made current within the period, and what the diff
  (``diff.diff_versions``) finds in boundaries and stations between the version current
  at the period's start and the one current at its end.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from geoservice.bands import Bands
from geoservice.coverage import Coverage, CoverageModel, OriginKind
from geoservice.datasets import current_version_id
from geoservice.diff import diff_versions, features_at
from geoservice.errors import InvalidInput
from geoservice.events import StatsBy, event_stats, events_per_grid, handler, routing
from geoservice.events.stats import deadline_sql, names_at, window_sql
from geoservice.patrols import CHINA
from geoservice.plots import class_names, minute_classes
from geoservice.reports.periods import Period

MINUTES = Bands((1.0, 3.0, 5.0))
CHANGE_LAYERS = {
    "district": "区界",
    "town": "镇街",
    "unit": "村(社区)",
    "large_grid": "大网格",
    "grid": "网格",
    "stations": "派出所/警务室",
}
CHANGE_NAMES = {
    "added": "新增",
    "removed": "撤销",
    "geometry": "边界调整",
    "attributes": "属性变更",
}
HOT_CLASSES = (
    (3, "热点（99%置信）"),
    (2, "热点（95%置信）"),
    (1, "热点（90%置信）"),
    (0, "不显著"),
    (-1, "冷点（90%置信）"),
    (-2, "冷点（95%置信）"),
    (-3, "冷点（99%置信）"),
)
Z_LIMITS = ((2.576, 3), (1.960, 2), (1.645, 1))
"""Two-sided normal critical values for 99%, 95% and 90% confidence."""
COVERAGE_CLASSES = class_names(MINUTES)  # ("1分钟内", "1—3分钟", "3—5分钟", "超过5分钟")
MAX_LISTED = 200
"""Overdue events and uncovered grids listed in a bulletin (the workbook lists all)."""

Kind = Literal["text", "int", "float", "percent", "datetime", "date"]


@dataclass(frozen=True)
class Column:
    title: str
    kind: Kind = "text"


@dataclass
class Table:
    """One table of the bulletin: a sheet of the workbook, a section of the CSV."""

    sheet: str
    title: str
    columns: list[Column]
    rows: list[list[Any]]
    note: str = ""


@dataclass
class Figures:
    """The headline figures of one period."""

    period: Period
    events: int
    closed: int
    open: int
    closure_rate: float | None
    median_handling_hours: float | None
    on_time: int
    due: int
    on_time_rate: float | None
    overdue: int
    by_category: dict[str, Any]
    by_town: dict[str, Any]
    by_area: dict[str, Any]  # by town; for one town's bulletin, by unit (村/社区)
    frame: pd.DataFrame = field(repr=False)


@dataclass
class HotSpots:
    codes: np.ndarray
    counts: np.ndarray
    z: np.ndarray | None  # None when the period has too few events to test
    classes: np.ndarray  # -3..3
    polygons: np.ndarray
    note: str


@dataclass
class Report:
    """A bulletin's content, ready for the renderers."""

    kind: str
    title: str
    area: str
    town: dict[str, str] | None
    current: Figures
    previous: Figures
    as_of: datetime
    dataset_version: int
    departments: list[dict[str, Any]]
    overdue: list[dict[str, Any]]
    hot_spots: HotSpots
    coverage: Coverage
    coverage_mask: np.ndarray
    towns: Any  # GeoDataFrame of the current town boundaries (WGS84)
    stations: Any  # GeoDataFrame of the current stations and posts (WGS84)
    changes: dict[str, Any]
    town_names: dict[str, str]
    grid_names: dict[str, str]
    tables: list[Table] = field(default_factory=list)


# --- events ------------------------------------------------------------------------------


def period_events(engine: Engine, period: Period, town: str | None) -> pd.DataFrame:
    """The period's events, each with its deadline (China time)."""
    where, params = window_sql(period.start, period.end, town)
    sql = f"""
        SELECT e.id, e.time, e.category, e.status, e.closed_at, e.grid_code, e.unit_code,
            e.town_code, e.time + make_interval(days => {deadline_sql()}) AS deadline
        FROM geoservice.event e WHERE {where} ORDER BY e.time, e.id
    """
    with engine.connect() as conn:
        rows = conn.execute(sa.text(sql), params).mappings().all()
    columns = [
        "id",
        "time",
        "category",
        "status",
        "closed_at",
        "grid_code",
        "unit_code",
        "town_code",
        "deadline",
    ]
    frame = pd.DataFrame([dict(r) for r in rows], columns=columns)
    for column in ("time", "closed_at", "deadline"):
        frame[column] = pd.to_datetime(frame[column], utc=True).dt.tz_convert(CHINA)
    return frame


def figures(engine: Engine, period: Period, town: str | None, as_of: datetime) -> Figures:
    """The period's figures: ``event_stats`` by category and by town, and from the same
    events the on-time rate and the overall median."""
    by_category = event_stats(
        engine, StatsBy.CATEGORY, period.start, period.end, as_of=as_of, town=town
    )
    by_town = event_stats(engine, StatsBy.TOWN, period.start, period.end, as_of=as_of, town=town)
    by_area = (
        event_stats(engine, StatsBy.UNIT, period.start, period.end, as_of=as_of, town=town)
        if town
        else by_town
    )
    frame = period_events(engine, period, town)
    closed = frame["status"] == "closed"
    frame["overdue"] = ~closed & (frame["deadline"] < pd.Timestamp(as_of))
    frame["on_time"] = closed & (frame["closed_at"] <= frame["deadline"])
    frame["hours"] = (frame["closed_at"] - frame["time"]).dt.total_seconds() / 3600
    hours = frame.loc[closed, "hours"]
    due = int(closed.sum() + frame["overdue"].sum())
    on_time = int(frame["on_time"].sum())
    return Figures(
        period=period,
        events=by_category["events"],
        closed=by_category["closed"],
        open=by_category["open"],
        closure_rate=by_category["closure_rate"],
        median_handling_hours=round(float(hours.median()), 2) if len(hours) else None,
        on_time=on_time,
        due=due,
        on_time_rate=round(on_time / due, 4) if due else None,
        overdue=by_category["overdue"],
        by_category=by_category,
        by_town=by_town,
        by_area=by_area,
        frame=frame,
    )


def with_previous(current: dict[str, Any], previous: dict[str, Any]) -> list[dict[str, Any]]:
    """The groups of ``current`` and, with zero events, those only ``previous`` has (a town
    whose events fell to none still shows, beside its previous count)."""
    seen = {g["code"] for g in current["groups"]}
    zero = {"events": 0, "closed": 0, "open": 0, "closure_rate": None}
    extra = [
        {**g, **zero, "median_handling_hours": None, "overdue": 0}
        for g in previous["groups"]
        if g["code"] not in seen
    ]
    return [*current["groups"], *extra]


def responsible(category: str, town: str | None, town_names: dict[str, str]) -> dict[str, Any]:
    """Who answers for an event: its handler's name, kind and helpers."""
    rule = handler(category, town)
    if rule["route"] == "town":
        name = town_names.get(town or "", town or "未定位镇街")
        return {"name": name, "kind": "镇街", "helpers": []}
    kind = "区直部门（牵头）" if rule["route"] == "lead_department" else "区直部门"
    return {"name": rule["handler"], "kind": kind, "helpers": rule.get("helpers", [])}


def department_ranking(frame: pd.DataFrame, town_names: dict[str, str]) -> list[dict[str, Any]]:
    """Handlers ranked by on-time rate (highest first), then overdue count (fewest)."""
    if frame.empty:
        return []
    who = [
        responsible(c, t, town_names) for c, t in zip(frame.category, frame.town_code, strict=True)
    ]
    work = frame.assign(department=[w["name"] for w in who], kind=[w["kind"] for w in who])
    work["due"] = (work["status"] == "closed") | work["overdue"]
    rows: list[dict[str, Any]] = []
    for (name, kind), group in work.groupby(["department", "kind"], sort=True):
        closed = group["status"] == "closed"
        due = int(group["due"].sum())
        hours = group.loc[closed, "hours"]
        rows.append(
            {
                "department": str(name),
                "kind": str(kind),
                "events": len(group),
                "closed": int(closed.sum()),
                "on_time": int(group["on_time"].sum()),
                "overdue": int(group["overdue"].sum()),
                "on_time_rate": round(int(group["on_time"].sum()) / due, 4) if due else None,
                "median_handling_hours": round(float(hours.median()), 2) if len(hours) else None,
            }
        )
    rows.sort(
        key=lambda r: (
            -(r["on_time_rate"] if r["on_time_rate"] is not None else -1.0),
            r["overdue"],
            -r["events"],
            r["department"],
        )
    )
    for rank, row in enumerate(rows, 1):
        row["rank"] = rank
    return rows


def overdue_list(
    frame: pd.DataFrame,
    as_of: datetime,
    town_names: dict[str, str],
    grid_names: dict[str, str],
) -> list[dict[str, Any]]:
    """The period's open events past their deadline, most overdue first, with handlers."""
    late = frame[frame["overdue"]].sort_values(["deadline", "id"])
    out = []
    for row in late.itertuples():
        who = responsible(row.category, row.town_code, town_names)
        out.append(
            {
                "id": row.id,
                "time": row.time.to_pydatetime(),
                "category": routing()[row.category]["name"],
                "town": town_names.get(row.town_code, row.town_code),
                "grid": row.grid_code,
                "grid_name": grid_names.get(row.grid_code),
                "department": who["name"],
                "helpers": "、".join(who["helpers"]),
                "deadline": row.deadline.to_pydatetime(),
                "days_overdue": round((as_of - row.deadline).total_seconds() / 86400, 1),
            }
        )
    return out


# --- hot spots ---------------------------------------------------------------------------


def hot_spots(counts: np.ndarray, polygons: np.ndarray, codes: np.ndarray) -> HotSpots:
    """Getis-Ord Gi* of ``counts`` over Queen contiguity of ``polygons``."""
    import geopandas as gpd
    import libpysal
    from esda import G_Local

    classes = np.zeros(len(counts), dtype=int)
    if len(counts) < 3 or counts.sum() < 3 or np.all(counts == counts[0]):
        note = "本期事件过少或分布均匀，不做热点分析。"
        return HotSpots(codes, counts, None, classes, polygons, note)
    with warnings.catch_warnings():
        # grids on islands of their own (no neighbour) are allowed: Gi* uses self-weight
        warnings.filterwarnings(
            "ignore", message="The weights matrix is not fully connected", category=UserWarning
        )
        weights = libpysal.weights.Queen.from_dataframe(
            gpd.GeoDataFrame(geometry=list(polygons)), use_index=False, silence_warnings=True
        )
        gi = G_Local(counts.astype(float), weights, transform="B", permutations=0, star=True)
    z = np.asarray(gi.Zs, dtype=float)
    z = np.where(np.isfinite(z), z, 0.0)
    for limit, level in reversed(Z_LIMITS):
        classes[z >= limit] = level
        classes[z <= -limit] = -level
    note = (
        "Getis-Ord Gi*（PySAL esda，Queen 邻接，含自身），按网格事件数计算；"
        "以 z 值划分 99%/95%/90% 置信的热点与冷点。"
    )
    return HotSpots(codes, counts, z, classes, polygons, note)


# --- changes in boundaries and stations ----------------------------------------------------


def changes(engine: Engine, period: Period) -> dict[str, Any]:
    """Versions made current within the period and what changed in boundaries and
    stations from the version current at its start (or, when the first version came within
    the period, from that one) to the one current at its end."""
    with engine.connect() as conn:
        history = conn.execute(
            sa.text(
                "SELECT h.since, h.version_id, v.note, v.created_by "
                "FROM geoservice.current_history h "
                "JOIN geoservice.dataset_version v ON v.id = h.version_id "
                "WHERE h.since >= :start AND h.since < :end ORDER BY h.since, h.id"
            ),
            {"start": period.start, "end": period.end},
        ).all()
        before = _version_before(conn, period.start)
        after = _version_before(conn, period.end)
    if before is None and history:  # the first version came within the period: from it
        before = int(history[0][1])
    versions = [
        {
            "since": since.astimezone(CHINA),
            "version": int(version),
            "note": note or "",
            "by": by or "",
        }
        for since, version, note, by in history
    ]
    layers: list[dict[str, Any]] = []
    if before is not None and after is not None and before != after:
        diff = diff_versions(engine, before, after)
        for layer, title in CHANGE_LAYERS.items():
            found = diff.layers.get(layer)
            if found is None:
                continue
            for change, name in CHANGE_NAMES.items():
                codes = getattr(found, change)
                if codes:
                    layers.append(
                        {"layer": title, "change": name, "count": len(codes), "codes": codes}
                    )
    return {"from_version": before, "to_version": after, "versions": versions, "layers": layers}


def _version_before(conn: sa.Connection, when: datetime) -> int | None:
    """The version current just before ``when`` (None before the first)."""
    return conn.execute(
        sa.text(
            "SELECT version_id FROM geoservice.current_history WHERE since < :t "
            "ORDER BY since DESC, id DESC LIMIT 1"
        ),
        {"t": when},
    ).scalar_one_or_none()


# --- the whole bulletin --------------------------------------------------------------------


def check_town(engine: Engine, town: str | None) -> dict[str, str] | None:
    """The town of ``--town``/``town=`` (code and name); ``InvalidInput`` naming it."""
    if town is None:
        return None
    with engine.connect() as conn:
        names = names_at(conn, StatsBy.TOWN, current_version_id(conn))
    code = town.strip()
    if code not in names:
        known = ", ".join(f"{c} ({n})" for c, n in sorted(names.items()))
        msg = f"town {town!r} is unknown; expected a town code of the current version: {known}"
        raise InvalidInput(msg)
    return {"code": code, "name": names[code]}


def gather(
    engine: Engine,
    model: CoverageModel,
    period: Period,
    town: str | None = None,
    *,
    district: str = "惠城区",
    as_of: datetime | None = None,
) -> Report:
    """Everything a bulletin for ``period`` (and the one before it) says, from the
    register and ``model`` (the current version's coverage model)."""
    from geoservice.reports.periods import TITLES
    from geoservice.reports.tables import tables_of

    chosen = check_town(engine, town)
    as_of = (as_of or datetime.now(UTC)).astimezone(CHINA)
    code = chosen["code"] if chosen else None
    with engine.connect() as conn:
        town_names = names_at(conn, StatsBy.TOWN, model.version)
        grid_names = names_at(conn, StatsBy.GRID, model.version)
        towns = features_at(conn, "town", model.version)
        stations = features_at(conn, "stations", model.version)
    current = figures(engine, period, code, as_of)
    previous = figures(engine, period.previous(), code, as_of)
    mask = (
        np.asarray(model.grids.towns == code, dtype=bool)
        if code
        else np.ones(len(model.grids.codes), dtype=bool)
    )
    counts = events_per_grid(engine, model.index, period.start, period.end)
    spots = hot_spots(counts[mask], model.grids.polygons[mask], model.grids.codes[mask])
    coverage = model.response(MINUTES, OriginKind.ALL)
    area = chosen["name"] if chosen else district
    report = Report(
        kind=str(period.kind),
        title=f"{area}网格事件{TITLES[period.kind]}",
        area=area,
        town=chosen,
        current=current,
        previous=previous,
        as_of=as_of,
        dataset_version=model.version,
        departments=department_ranking(current.frame, town_names),
        overdue=overdue_list(current.frame, as_of, town_names, grid_names),
        hot_spots=spots,
        coverage=coverage,
        coverage_mask=mask,
        towns=towns if not code else towns[towns["code"] == code],
        stations=stations,
        changes=changes(engine, period),
        town_names=town_names,
        grid_names=grid_names,
    )
    report.tables = tables_of(report)
    return report


def coverage_classes(minutes: np.ndarray) -> np.ndarray:
    """0: within 1 minute, 1: within 3, 2: within 5, 3: beyond 5 (or unreached)."""
    return minute_classes(minutes, MINUTES)
