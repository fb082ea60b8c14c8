"""``geoservice serve`` and ``geoservice db``: the HTTP API, the database and its migrations."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from geoservice.cli.base import (
    LOOPBACK,
    app,
    db_app,
    stderr,
)
from geoservice.db import (
    describe,
    downgrade,
    open_engine,
    require_current_schema,
    upgrade,
)
from geoservice.errors import (
    ConfigurationError,
    DatabaseUnavailable,
)
from geoservice.settings import Settings


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address [GEOSERVICE_HOST].")] = None,
    port: Annotated[int | None, typer.Option(help="Port [GEOSERVICE_PORT].")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Server processes.")] = 1,
    analysis_workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Worker processes per server process for heavy requests "
            "[GEOSERVICE_ANALYSIS_WORKERS, 2].",
        ),
    ] = None,
) -> None:
    """Serve the HTTP API."""
    import uvicorn

    if analysis_workers is not None:  # read by every server process's settings
        os.environ["GEOSERVICE_ANALYSIS_WORKERS"] = str(analysis_workers)
    settings = Settings()
    host = host or settings.host
    port = port or settings.port
    # every server process's settings know the listen address (the default public URL)
    os.environ["GEOSERVICE_HOST"], os.environ["GEOSERVICE_PORT"] = host, str(port)
    if not settings.auth and host not in LOOPBACK:
        msg = (
            f"GEOSERVICE_AUTH=off is refused when serving on {host}: keys may only be off on "
            f"loopback ({', '.join(LOOPBACK)})"
        )
        raise ConfigurationError(msg)
    try:
        engine = open_engine(settings)
    except DatabaseUnavailable as exc:  # it serves what it can and follows once it is back
        stderr.print(f"warning: {exc}; starting anyway", highlight=False)
    else:
        require_current_schema(engine)  # migrations are the deploy step's, never the server's
        engine.dispose()
    database = describe(settings.login("reader")[0])
    stderr.print(f"geoservice on http://{host}:{port} (database {database})")
    uvicorn.run(
        "geoservice.server.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
    )


@db_app.command("url")
def db_url(
    show_password: Annotated[
        bool, typer.Option("--show-password", help="Print the password instead of ***.")
    ] = False,
) -> None:
    """Print the SQLAlchemy URL of the database in use (the password as *** unless
    ``--show-password``)."""
    url = Settings().sqlalchemy_url()
    typer.echo(url.render_as_string(hide_password=not show_password))


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply migrations (``alembic upgrade``)."""
    engine = open_engine(Settings(), "owner")
    upgrade(engine, revision)
    typer.echo(f"database {describe(engine.url)} at revision {revision}")


@db_app.command("downgrade")
def db_downgrade(revision: str) -> None:
    """Revert migrations (``base`` drops every geoservice table)."""
    engine = open_engine(Settings(), "owner")
    downgrade(engine, revision)
    typer.echo(f"database {describe(engine.url)} at revision {revision}")
