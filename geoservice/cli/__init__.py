"""The ``geoservice`` command line (typer): one module per command group.

``base`` holds the app, its groups and the shared options; importing each module below
registers its commands. ``main`` is the console entry point (``geoservice.cli:main``).
"""

from __future__ import annotations

from typer.models import CommandInfo

from geoservice.cli import (  # noqa: F401  (each registers its commands)
    coverage,
    datasets,
    demo,
    etl,
    grids,
    keys,
    lookups,
    reports,
    server,
)
from geoservice.cli.base import app, main

ORDER = (
    "serve",
    "datasets",
    "rollback",
    "audit",
    "locate",
    "isochrones",
    "export",
    "diff",
    "promote",
    "report",
)
"""The order ``geoservice --help`` lists the commands in (as before the split)."""


def _name(command: CommandInfo) -> str:
    return str(command.name or getattr(command.callback, "__name__", ""))


app.registered_commands.sort(key=lambda command: ORDER.index(_name(command)))

__all__ = ["app", "main"]
