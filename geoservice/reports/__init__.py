"""Bulletins for leaders: daily, weekly, monthly and quarterly reports on the grid event
register, as PDF, Excel or CSV (``geoservice report``, ``GET /v1/reports/{period}``).

- ``periods``: the period holding a date (ISO weeks Monday to Sunday) and the one before.
- ``data``: what the bulletin says — figures from ``events.event_stats`` (so they equal
  ``GET /v1/events/stats``), on-time rates and the departments ranked, overdue events
  with their handlers, Getis-Ord Gi* hot spots, 1/3/5-minute coverage, the changes in
  boundaries and stations — and the tables made of it.
- ``tables``: the workbook (openpyxl, one sheet per table) and the CSV (UTF-8 with BOM).
- ``figures`` and ``pdf``: matplotlib figures laid out by WeasyPrint (see ``pdf`` for why).
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from pathlib import Path

from sqlalchemy.engine import Engine

from geoservice.coverage import CoverageModel
from geoservice.errors import InvalidInput
from geoservice.reports.data import Report, check_town, gather
from geoservice.reports.periods import Period, PeriodKind, parse_date, parse_kind, period_of


class Format(StrEnum):
    pdf = "pdf"
    xlsx = "xlsx"
    csv = "csv"


MEDIA_TYPES = {
    Format.pdf: "application/pdf",
    Format.xlsx: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    Format.csv: "text/csv; charset=utf-8",
}


def format_of(path: Path) -> Format:
    """The format a file name asks for (``.pdf``, ``.xlsx`` or ``.csv``)."""
    try:
        return Format(path.suffix.lower().lstrip("."))
    except ValueError:
        msg = f"{path}: expected a file name ending in .pdf, .xlsx or .csv"
        raise InvalidInput(msg) from None


def render(report: Report, fmt: Format) -> bytes:
    """The bulletin in one format."""
    if fmt is Format.pdf:
        from geoservice.reports.pdf import pdf_bytes

        return pdf_bytes(report)
    from geoservice.reports.tables import csv_bytes, workbook_bytes

    return workbook_bytes(report) if fmt is Format.xlsx else csv_bytes(report)


def file_name(period: Period, town: str | None, fmt: Format) -> str:
    """e.g. ``bulletin-monthly-2020-06-01.pdf`` (``-TOWN`` before the suffix)."""
    where = f"-{town}" if town else ""
    return f"bulletin-{period.kind}-{period.first.isoformat()}{where}.{fmt}"


def bulletin(
    engine: Engine,
    model: CoverageModel,
    kind: PeriodKind,
    day: date,
    town: str | None = None,
    fmt: Format = Format.pdf,
    *,
    as_of: datetime | None = None,
) -> tuple[Period, bytes]:
    """The bulletin of the ``kind`` period holding ``day``, for the district or one
    ``town``; its period and its bytes."""
    period = period_of(kind, day)
    report = gather(engine, model, period, town, as_of=as_of)
    return period, render(report, fmt)


__all__ = [
    "MEDIA_TYPES",
    "Format",
    "Period",
    "PeriodKind",
    "Report",
    "bulletin",
    "check_town",
    "file_name",
    "format_of",
    "gather",
    "parse_date",
    "parse_kind",
    "period_of",
]
