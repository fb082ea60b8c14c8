"""The ``geoservice`` command line (typer)."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import sqlalchemy as sa
import typer
from rich.console import Console
from rich.table import Table

from geoservice import datasets
from geoservice.db import create_engine, describe, downgrade, one_line, open_engine, upgrade
from geoservice.errors import GeoserviceError
from geoservice.settings import Settings

app = typer.Typer(
    help="Grid governance and police coverage GIS for Huicheng District.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
db_app = typer.Typer(help="Database connection and migrations.", no_args_is_help=True)
app.add_typer(db_app, name="db")

stderr = Console(stderr=True)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address [GEOSERVICE_HOST].")] = None,
    port: Annotated[int | None, typer.Option(help="Port [GEOSERVICE_PORT].")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
) -> None:
    """Serve the HTTP API."""
    import uvicorn

    settings = Settings()
    engine = create_engine(settings)
    upgrade(engine)  # never serve an old schema
    engine.dispose()
    host = host or settings.host
    port = port or settings.port
    stderr.print(f"geoservice on http://{host}:{port} (database {describe(engine.url)})")
    uvicorn.run(
        "geoservice.api.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
    )


@db_app.command("url")
def db_url() -> None:
    """Print the SQLAlchemy URL of the database in use."""
    url = Settings().sqlalchemy_url()
    typer.echo(url.render_as_string(hide_password=False))


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply migrations (``alembic upgrade``)."""
    engine = open_engine(Settings())
    upgrade(engine, revision)
    typer.echo(f"database {describe(engine.url)} at revision {revision}")


@db_app.command("downgrade")
def db_downgrade(revision: str) -> None:
    """Revert migrations (``base`` drops every geoservice table)."""
    engine = open_engine(Settings())
    downgrade(engine, revision)
    typer.echo(f"database {describe(engine.url)} at revision {revision}")


@app.command("datasets")
def list_datasets(
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table.")] = False,
) -> None:
    """List published dataset versions; the current one is marked."""
    engine = open_engine(Settings())
    with engine.connect() as conn:
        versions = datasets.list_versions(conn)
    if as_json:
        rows = [{**v.__dict__, "created_at": v.created_at.isoformat()} for v in versions]
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    if not versions:
        typer.echo("no dataset published yet (run `geoservice demo` or an `etl` command)")
        return
    table = Table("", "version", "created", "by", "layers changed", "note")
    for version in versions:
        changed = ", ".join(sorted({s["layer"] for s in version.sources})) or "-"
        table.add_row(
            "*" if version.current else "",
            str(version.id),
            version.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            version.created_by,
            changed,
            version.note,
        )
    Console().print(table)


@app.command()
def rollback(version: int) -> None:
    """Make an earlier dataset version current again."""
    engine = open_engine(Settings())
    datasets.rollback(engine, version)
    typer.echo(f"dataset version {version} is current")


def main() -> None:
    """Entry point: domain errors become one line on stderr and exit code 2."""
    try:
        app()
    except GeoserviceError as exc:
        fail(str(exc), getattr(exc, "problems", []))
    except sa.exc.SQLAlchemyError as exc:
        fail(f"database error: {one_line(exc)}")


def fail(message: str, problems: list[str] | None = None) -> None:
    """Print ``error: message`` (and each problem) on stderr; exit 2."""
    stderr.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    for item in problems or []:
        stderr.print(f"  - {item}", highlight=False, soft_wrap=True)
    sys.exit(2)
