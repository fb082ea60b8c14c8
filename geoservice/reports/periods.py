"""Bulletin periods: a day, an ISO week (Monday to Sunday), a month or a quarter in China
time, and the period before it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum

from geoservice.errors import InvalidInput
from geoservice.patrols import CHINA

QUARTER_NAMES = ("一", "二", "三", "四")
FIRST_DAY = date(1970, 1, 1)
LAST_DAY = date(2999, 12, 31)
"""Bulletins are made for days in this range (and their periods stay in the calendar)."""


class PeriodKind(StrEnum):
    daily = "daily"
    weekly = "weekly"
    monthly = "monthly"
    quarterly = "quarterly"


TITLES = {
    PeriodKind.daily: "日汇总",
    PeriodKind.weekly: "周研判",
    PeriodKind.monthly: "月通报",
    PeriodKind.quarterly: "季度分析",
}
"""The bulletin's name by period (towns: 日汇总、周研判; the district: 月通报、季分析)."""
PREVIOUS = {
    PeriodKind.daily: "前一日",
    PeriodKind.weekly: "上周",
    PeriodKind.monthly: "上月",
    PeriodKind.quarterly: "上季度",
}


@dataclass(frozen=True)
class Period:
    """``[start, end)`` in China time; ``first`` and ``last`` are the calendar days."""

    kind: PeriodKind
    first: date
    last: date

    @property
    def start(self) -> datetime:
        return datetime(self.first.year, self.first.month, self.first.day, tzinfo=CHINA)

    @property
    def end(self) -> datetime:
        after = self.last + timedelta(days=1)
        return datetime(after.year, after.month, after.day, tzinfo=CHINA)

    @property
    def label(self) -> str:
        """The period as a bulletin names it, e.g. 2020年6月, 2020年第二季度."""
        f, t = self.first, self.last
        if self.kind is PeriodKind.daily:
            return f"{f.year}年{f.month}月{f.day}日"
        if self.kind is PeriodKind.weekly:
            year, week, _ = f.isocalendar()
            return f"{year}年第{week}周（{_day(f)}—{_day(t)}）"
        if self.kind is PeriodKind.monthly:
            return f"{f.year}年{f.month}月"
        return f"{f.year}年第{QUARTER_NAMES[(f.month - 1) // 3]}季度"

    @property
    def span(self) -> str:
        """The calendar days, e.g. 2020年6月1日—2020年6月30日."""
        if self.first == self.last:
            return _day(self.first)
        return f"{_day(self.first)}—{_day(self.last)}"

    def previous(self) -> Period:
        """The period of the same kind just before this one."""
        return period_of(self.kind, self.first - timedelta(days=1))


def _day(d: date) -> str:
    return f"{d.year}年{d.month}月{d.day}日"


def parse_kind(value: str) -> PeriodKind:
    """A period's name (``daily``, ``weekly``, ``monthly`` or ``quarterly``) as its kind."""
    try:
        return PeriodKind(value)
    except ValueError:
        msg = f"period {value!r} is unknown; expected one of {', '.join(PeriodKind)}"
        raise InvalidInput(msg) from None


def parse_date(value: str | None) -> date:
    """A day given as ``YYYY-MM-DD`` in ``FIRST_DAY`` to ``LAST_DAY``; None is today in China."""
    if value is None:
        return datetime.now(CHINA).date()
    try:
        day = date.fromisoformat(value.strip())
    except ValueError:
        msg = f"date {value!r} is not a calendar date; expected YYYY-MM-DD such as 2020-06-30"
        raise InvalidInput(msg) from None
    if not FIRST_DAY <= day <= LAST_DAY:
        msg = f"date {value!r} is outside {FIRST_DAY} to {LAST_DAY}"
        raise InvalidInput(msg)
    return day


def period_of(kind: PeriodKind, day: date) -> Period:
    """The period of ``kind`` holding ``day``."""
    if kind is PeriodKind.daily:
        return Period(kind, day, day)
    if kind is PeriodKind.weekly:
        monday = day - timedelta(days=day.weekday())
        return Period(kind, monday, monday + timedelta(days=6))
    if kind is PeriodKind.monthly:
        first = day.replace(day=1)
    else:
        first = date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    months = 1 if kind is PeriodKind.monthly else 3
    year, month = divmod(first.month - 1 + months, 12)
    return Period(kind, first, date(first.year + year, month + 1, 1) - timedelta(days=1))
