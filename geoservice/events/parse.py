"""Events as sources send them (a JSON body, a CSV file) checked into ``Events``: every
row's problems named, the bounds of ``geoservice.events`` enforced, the points taken to
WGS84."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from geoservice.crs import parse_crs
from geoservice.errors import InvalidInput, ValidationFailed, shown
from geoservice.events.rules import STATUS_NAMES, category_names, routing
from geoservice.points import named_items, to_wgs84_points
from geoservice.times import CHINA, parse_time

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
        missing = [c for c in COLUMNS if is_blank(row.get(c))]
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
        if not is_blank(description) and not isinstance(description, str):
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
        if not is_blank(row.get("closed_at")):
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
        [None if is_blank(r.get("description")) else str(r["description"]) for r in rows],
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


def is_blank(value: Any) -> bool:
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
