"""What every command group shares: the typer app and its groups, the options several
commands take, and ``main`` (domain errors become one line on stderr and exit code 2)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import sqlalchemy as sa
import typer
from rich.console import Console

from geoservice.db import (
    one_line,
)
from geoservice.errors import (
    GeoserviceError,
)

app = typer.Typer(
    help="Grid governance and police coverage GIS for Huicheng District.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
db_app = typer.Typer(help="Database connection and migrations.", no_args_is_help=True)
app.add_typer(db_app, name="db")
etl_app = typer.Typer(
    help="Validate and publish GIS files as a new dataset version.", no_args_is_help=True
)
app.add_typer(etl_app, name="etl")
keys_app = typer.Typer(help="API keys: create, list, revoke.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
coverage_app = typer.Typer(
    help="Officer and response coverage; patrol point planning.", no_args_is_help=True
)
app.add_typer(coverage_app, name="coverage")
grids_app = typer.Typer(
    help="Grid design: propose base grids of the right size.", no_args_is_help=True
)
app.add_typer(grids_app, name="grids")

demo_app = typer.Typer(help="The synthetic demo dataset, and its patrol team on the move.")
app.add_typer(demo_app, name="demo")

DryRun = Annotated[
    bool, typer.Option("--dry-run", help="Validate and show the diff; publish nothing.")
]
ReplaceNetwork = Annotated[
    bool,
    typer.Option(
        "--replace-network", help="Accept a network with far fewer edges than the current one."
    ),
]
AllowOutside = Annotated[
    bool, typer.Option("--allow-outside", help="Accept data away from the district.")
]
Note = Annotated[str, typer.Option(help="A note stored with the new dataset version.")]
By = Annotated[
    str | None,
    typer.Option("--by", help="Who does this, for the audit log [the OS user]."),
]
CrsOption = Annotated[
    str | None,
    typer.Option("--crs", help="CRS of the file: wgs84, cgcs2000, gcj02, bd09 or EPSG:NNNN."),
]
InputFile = Annotated[Path, typer.Argument(help="The file to load.")]

stderr = Console(stderr=True)
LOOPBACK = ("127.0.0.1", "::1", "localhost")

Draft = Annotated[
    bool,
    typer.Option("--draft", help="Publish a version that is not current: `geoservice promote N`."),
]
Problems = Annotated[
    Path | None,
    typer.Option("--problems", help="Write every problem as a feature to this GeoPackage."),
]
ToleranceM = Annotated[
    float,
    typer.Option(
        "--tolerance-m",
        min=0.0,
        max=1.0,
        help="Linear tolerance, metres: features equal to the current ones within it are "
        "kept as stored, vertices within it of the current boundaries are snapped onto them.",
    ),
]
Base = Annotated[
    int | None,
    typer.Option(
        "--base",
        min=1,
        help="The version the input was made from (an export's GeoPackage says it): "
        "what changed since is kept, conflicts are refused.",
    ),
]
Force = Annotated[
    bool, typer.Option("--force", help="Publish even when nothing changed, or over conflicts.")
]
Encoding = Annotated[
    str | None,
    typer.Option(help="Text encoding of a Shapefile without .cpg or of a CSV (e.g. gbk)."),
]

JsonFlag = Annotated[bool, typer.Option("--json", help="Print the answer as JSON.")]


def main() -> None:
    """Entry point: domain errors become one line on stderr and exit code 2."""
    try:
        app()
    except GeoserviceError as exc:
        fail(str(exc), getattr(exc, "problems", []))
    except sa.exc.SQLAlchemyError as exc:
        fail(f"database error: {one_line(exc)}")
    except Exception as exc:
        if os.environ.get("GEOSERVICE_DEBUG"):
            raise
        fail(
            f"internal error: {type(exc).__name__}: {exc} (GEOSERVICE_DEBUG=1 shows the traceback)"
        )


def fail(message: str, problems: list[str] | None = None) -> None:
    """Print ``error: message`` (and each problem) on stderr; exit 2."""
    stderr.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    for item in problems or []:
        stderr.print(f"  - {item}", highlight=False, soft_wrap=True)
    sys.exit(2)
