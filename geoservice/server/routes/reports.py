"""``/v1/reports``: bulletins (daily, weekly, monthly, quarterly) as PDF, Excel or CSV.

The period, date and format are parsed here, on the server's loop, into a ``PeriodKind``,
a ``date`` and a ``Format``; the bulletin is gathered and rendered in a worker process on
the analysis lane (matplotlib and WeasyPrint take seconds of CPU), from the current
version's coverage model that worker keeps.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from geoservice.reports import MEDIA_TYPES, Format, PeriodKind, parse_date
from geoservice.server import handlers
from geoservice.server.deps import ask, requires
from geoservice.server.documents import BINARY
from geoservice.server.models import errors

router = APIRouter(prefix="/v1/reports", tags=["reports"], dependencies=[requires("planner")])


@router.get(
    "/{period}",
    response_class=Response,
    responses={
        200: {
            "content": {media: BINARY for media in MEDIA_TYPES.values()},
            "description": "The bulletin: PDF (Noto Sans CJK embedded), an Excel workbook "
            "with one sheet per table, or CSV (UTF-8 with BOM).",
        },
        **errors(401, 403, 404, 422, 429, 503),
    },
    operation_id="report",
)
async def report(
    request: Request,
    period: Annotated[
        PeriodKind,
        Path(description="daily, weekly (ISO week, Monday to Sunday), monthly or quarterly."),
    ],
    date: Annotated[
        str | None,
        Query(
            description="A day of the period, YYYY-MM-DD (default: today, China time).",
            examples=["2020-06-30"],
        ),
    ] = None,
    town: Annotated[
        str | None, Query(description="One town's code (default: the whole district).")
    ] = None,
    format: Annotated[Format, Query(description="pdf, xlsx or csv.")] = Format.pdf,
) -> Response:
    """A bulletin for the period holding ``date`` and the one before it: events by
    category and town, closed, open, closure rate, median handling time, on-time rate
    against the routing rules' deadlines, overdue events with their handlers, departments
    ranked, Getis-Ord Gi* hot spots, 1/3/5-minute coverage with the uncovered grids, and
    what changed in boundaries and stations. Figures equal ``/v1/events/stats`` for the
    same ``from``/``to``; Chinese text."""
    return await ask(request, handlers.report, period, parse_date(date), town, format)
