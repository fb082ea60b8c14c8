"""Run loads for the CLI: report, diff, publish (or not, with --dry-run)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from sqlalchemy.engine import Engine

from etl.context import Context
from etl.load import LayerLoad, publish_loads
from geoservice.audit import Actor

console = Console(stderr=True, highlight=False, soft_wrap=True)


def progress() -> Progress:
    return Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
        console=console, transient=True,
    )  # fmt: skip


def show(load: LayerLoad, *, with_diff: bool) -> None:
    for line in load.report.lines():
        console.print(line)
    if with_diff and not load.report.errors:
        console.print("  change against the current version:")
        for line in load.diff():
            console.print(f"    {line}")


def run_loads(
    engine: Engine,
    steps: list[tuple[str, Callable[[Context], LayerLoad]]],
    *,
    dry_run: bool,
    note: str,
    with_diff: bool = True,
    actor: Actor | None = None,
) -> int | None:
    """Prepare each step against the context (earlier steps staged), then publish them together.

    Returns the new version, or None for a dry run. Raises ``ValidationFailed`` naming
    every problem; then nothing is published.
    """
    began = time.perf_counter()
    context = Context(engine)
    loads = []
    with progress() as bar:
        for description, prepare in steps:
            task = bar.add_task(f"validating {description}")
            load = prepare(context)
            bar.remove_task(task)
            show(load, with_diff=with_diff)
            load.report.raise_if_failed()
            context.staged[load.layer] = load
            loads.append(load)
        if dry_run:
            console.print(
                f"dry run: valid, nothing published ({time.perf_counter() - began:.1f} s)"
            )
            return None
        bar.add_task("publishing")
        version = publish_loads(engine, loads, note=note, actor=actor)
    what = "; ".join(load.summary for load in loads)
    files = ", ".join(sorted({Path(load.source.path).name for load in loads}))
    console.print(
        f"published dataset version {version}: {what} from {files} "
        f"({time.perf_counter() - began:.1f} s)"
    )
    return version
