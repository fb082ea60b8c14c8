"""Dataset versions: ``datasets``, ``rollback``, ``promote``, ``diff``, ``export``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from geoservice import datasets
from geoservice.audit import Actor
from geoservice.cli.base import (
    By,
    Note,
    Problems,
    app,
    stderr,
)
from geoservice.db import (
    open_engine,
)
from geoservice.errors import (
    InvalidInput,
)
from geoservice.settings import Settings


@app.command("datasets")
def list_datasets(
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table.")] = False,
) -> None:
    """List dataset versions: the current one is marked (*), drafts say so."""
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
    table = Table("", "version", "status", "created", "by", "layers changed", "note")
    for version in versions:
        changed = ", ".join(sorted({s["layer"] for s in version.sources})) or "-"
        table.add_row(
            "*" if version.current else "",
            str(version.id),
            version.status,
            version.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            version.created_by,
            changed,
            version.note,
        )
    Console().print(table)


@app.command()
def rollback(version: int, by: By = None, note: Note = "") -> None:
    """Make an earlier dataset version current again."""
    engine = open_engine(Settings(), "writer")
    datasets.rollback(engine, version, actor=Actor.cli(by), note=note)
    typer.echo(f"dataset version {version} is current")


@app.command()
def export(
    out: Annotated[Path, typer.Argument(help="The GeoPackage to write (replaced).")],
    version: Annotated[
        int | None, typer.Option(min=1, help="The dataset version [the current one].")
    ] = None,
) -> None:
    """Every layer of a dataset version as one GeoPackage bundle (officers as a table,
    without personal columns; `base_version` in its metadata): edit it in QGIS and load
    it back with `geoservice etl bundle OUT.gpkg`."""
    from geoservice.export import export_version

    if out.suffix.lower() != ".gpkg":
        msg = f"{out}: expected a .gpkg file name"
        raise InvalidInput(msg)
    done = export_version(open_engine(Settings(), "writer"), out, version)
    layers = ", ".join(f"{layer} {count:,}" for layer, count in done.layers.items())
    stderr.print(f"wrote dataset version {done.version} to {out}: {layers}")


@app.command()
def diff(
    a: Annotated[int, typer.Argument(help="The earlier dataset version.")],
    b: Annotated[int, typer.Argument(help="The later dataset version.")],
    as_json: Annotated[bool, typer.Option("--json", help="JSON.")] = False,
    out: Annotated[
        Path | None,
        typer.Option(help="A GeoPackage for QGIS: one layer per changed layer, with `change`."),
    ] = None,
) -> None:
    """What changed from version A to version B: per layer, codes added, removed, with
    changed geometry, with changed attributes."""
    from geoservice.diff import diff_versions

    result = diff_versions(open_engine(Settings()), a, b)
    if out is not None:
        written = result.write_gpkg(out)
        stderr.print(f"wrote {out}: layers {', '.join(written) or 'none (no change)'}")
    if as_json:
        typer.echo(json.dumps(result.to_json(), ensure_ascii=False, indent=2))
        return
    table = Table("layer", "added", "removed", "geometry", "attributes")
    for name, layer in result.layers.items():
        if name == "roads":
            roads = f"{layer.summary['edges_a']:,} -> {layer.summary['edges_b']:,} edges"
            table.add_row(name, roads, "", "", "")
            continue
        table.add_row(
            name,
            *(_codes(getattr(layer, k)) for k in ("added", "removed", "geometry", "attributes")),
        )
    Console().print(table)
    if not result.layers:
        typer.echo(f"versions {result.a} and {result.b} hold the same data")


def _codes(codes: list[str], limit: int = 4) -> str:
    if not codes:
        return ""
    more = f" (+{len(codes) - limit})" if len(codes) > limit else ""
    return f"{len(codes)}: " + ", ".join(codes[:limit]) + more


@app.command()
def promote(
    version: int,
    by: By = None,
    note: Note = "",
    force: Annotated[
        bool, typer.Option("--force", help="Also when the draft was made on an older version.")
    ] = False,
    problems: Problems = None,
) -> None:
    """Make a draft dataset version current, once the whole draft passes every rule of a
    bundle (a draft edited over the OGC API was checked one feature at a time)."""
    from etl.commands import check_draft

    engine = open_engine(Settings(), "writer")
    check_draft(engine, version, problems=problems, force=force)
    datasets.promote(engine, version, actor=Actor.cli(by), note=note, force=force)
    typer.echo(f"dataset version {version} is current")
