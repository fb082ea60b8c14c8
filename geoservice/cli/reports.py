"""``geoservice report``: bulletins as PDF, workbook or CSV."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from geoservice.cli.base import (
    app,
    stderr,
)
from geoservice.db import (
    open_engine,
)
from geoservice.settings import Settings


@app.command()
def report(
    period: Annotated[str, typer.Argument(help="daily, weekly (ISO week), monthly or quarterly.")],
    out: Annotated[Path, typer.Option("--out", help="The file to write: .pdf, .xlsx or .csv.")],
    date: Annotated[
        str | None,
        typer.Option("--date", help="A day of the period, YYYY-MM-DD [today, China time]."),
    ] = None,
    town: Annotated[
        str | None, typer.Option("--town", help="One town's code [the whole district].")
    ] = None,
) -> None:
    """A bulletin (日汇总、周研判、月通报、季度分析) for the period holding --date and the
    one before it: events by category and town, closure, handling times, on-time rates,
    overdue events with their handlers, departments ranked, hot spots, 1/3/5-minute
    coverage, changes in boundaries and stations. Chinese text."""
    from geoservice.coverage import CoverageModel
    from geoservice.reports import bulletin, check_town, format_of, parse_date, parse_kind

    fmt = format_of(out)  # bad input is refused before any work
    kind, day = parse_kind(period), parse_date(date)
    engine = open_engine(Settings())
    check_town(engine, town)
    model = CoverageModel.load(engine)
    chosen, data = bulletin(engine, model, kind, day, town, fmt)
    out.write_bytes(data)
    stderr.print(
        f"wrote the {chosen.kind} bulletin of {chosen.first} to {chosen.last} to {out} "
        f"({len(data):,} bytes)",
        highlight=False,
    )
