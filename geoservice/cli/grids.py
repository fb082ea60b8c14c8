"""``geoservice grids``: grid design."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from geoservice.cli.base import (
    JsonFlag,
    grids_app,
    stderr,
)
from geoservice.db import (
    open_engine,
)
from geoservice.errors import (
    InvalidInput,
)
from geoservice.settings import Settings


@grids_app.command("propose")
def grids_propose(
    out: Annotated[Path, typer.Option("--out", help="The bundle folder to write.")],
    large_grid: Annotated[
        list[str] | None, typer.Option("--large-grid", help="Large grid codes (repeatable).")
    ] = None,
    unit: Annotated[
        list[str] | None, typer.Option("--unit", help="Every large grid of these units.")
    ] = None,
    town: Annotated[
        list[str] | None, typer.Option("--town", help="Every large grid of these towns.")
    ] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every large grid.")] = False,
    households: Annotated[
        str | None, typer.Option(help="The band in households, LOW-HIGH [300-500].")
    ] = None,
    residents: Annotated[
        str | None, typer.Option(help="The band in residents instead, LOW-HIGH.")
    ] = None,
    weight: Annotated[
        str | None, typer.Option(help="events: each grid event counts as one more.")
    ] = None,
    keep_fitting: Annotated[
        bool,
        typer.Option(
            "--keep-fitting/--redraw-all", help="Keep the grids already in the band exactly."
        ),
    ] = True,
    version: Annotated[
        int | None, typer.Option(min=1, help="The dataset version [the current one].")
    ] = None,
    rivers: Annotated[
        Path | None,
        typer.Option(
            help="Rivers that cut blocks too: an OSM file (its waterway ways) or any "
            "line/polygon file GDAL reads [none: the database holds no water layer]."
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Propose base grids whose size lies in the band, nested in their large grids, the
    fitting ones kept: a bundle folder for `geoservice etl bundle DIR --draft`."""
    from geoservice import grid_design
    from geoservice.coverage import Weight
    from geoservice.datasets import resolve_version

    if households is not None and residents is not None:
        msg = "give --households or --residents, not both"
        raise InvalidInput(msg)
    band = (
        grid_design.Band.parse("residents", residents)
        if residents is not None
        else grid_design.Band.parse("households", households or "300-500")
    )
    scope = grid_design.Scope(tuple(large_grid or ()), tuple(unit or ()), tuple(town or ()), all_)
    if weight not in (None, Weight.EVENTS):
        msg = f"weight {weight!r}: expected events (or none)"
        raise InvalidInput(msg)
    engine = open_engine(Settings())
    with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn:
        chosen = resolve_version(conn, version)
        proposal = grid_design.propose(
            conn, chosen, scope, band, keep_fitting=keep_fitting,
            weight=None if weight is None else Weight(weight),
            rivers=grid_design.read_rivers(rivers) if rivers is not None else (),
        )  # fmt: skip
        grid_design.write_bundle(conn, proposal, out)
    report = proposal.report()
    if as_json:
        typer.echo(json.dumps(report, ensure_ascii=False, indent=2))
        return
    table = Table("large grid", "before", "after", "kept", "min", "median", "max", "outside band")
    for plan in report["per_large_grid"]:
        sizes = plan["sizes_after"]
        table.add_row(
            plan["large_grid"],
            str(plan["grids_before"]),
            str(plan["grids_after"]),
            str(plan["kept"]),
            *(str(sizes[k]) for k in ("min", "median", "max")),
            "; ".join(f"{o['code']} ({o['size']}): {o['reason']}" for o in plan["outside_band"]),
        )
    Console().print(table)
    stderr.print(
        f"{report['large_grids']} large grids: {report['grids_before']} grids -> "
        f"{report['grids_after']} ({report['kept']} kept, {report['in_band']} in {band}); "
        f"wrote {out}/grid.gpkg, population.gpkg, report.json — next: "
        f"`geoservice etl bundle {out} --draft`",
        highlight=False,
    )
