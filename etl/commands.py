"""Run loads for the CLI: report, diff, publish (or not, with --dry-run)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from etl.bundle import bundle_steps
from etl.changes import code_changes
from etl.context import Context
from etl.load import LayerLoad, Step, publish_loads
from etl.problems import write_problems
from etl.references import check_bundle
from etl.report import Report
from geoservice.audit import Actor
from geoservice.console import console, progress
from geoservice.crs import DEFAULT_TOLERANCE_M
from geoservice.datasets import current_version_id, resolve_version
from geoservice.errors import ValidationFailed
from geoservice.export import export_version
from geoservice.models import dataset_version


def show(load: LayerLoad, *, with_diff: bool) -> None:
    for line in load.report.lines():
        console.print(line)
    if with_diff and not load.report.errors:
        console.print("  change against the current version:")
        for line in load.diff():
            console.print(f"    {line}")


def _raise_all(reports: list[Report]) -> None:
    problems = [error for report in reports for error in report.errors]
    count = len(problems)
    subjects = ", ".join(report.subject for report in reports if report.errors)
    msg = f"{subjects}: {count} problem{'s' if count > 1 else ''}; nothing was published"
    raise ValidationFailed(msg, problems)


def run_loads(
    engine: Engine,
    steps: list[Step],
    *,
    dry_run: bool,
    note: str,
    with_diff: bool = True,
    actor: Actor | None = None,
    draft: bool = False,
    problems: Path | None = None,
    tolerance_m: float = DEFAULT_TOLERANCE_M,
    force: bool = False,
    base: int | None = None,
) -> int | None:
    """Prepare each step against the context (earlier steps staged), check the rules
    across layers on the result, then publish together, as one version, the parts that
    differ from the current version (every part with ``force``).

    Returns the new version, or None for a dry run or when nothing changed. Raises
    ``ValidationFailed`` naming every problem; then nothing is published (and
    ``problems``, when given, holds them as features).
    """
    began = time.perf_counter()
    context = Context(
        engine,
        bundle=frozenset(step.layer for step in steps),
        tolerance_m=tolerance_m,
        base=base,
        force=force,
    )
    if base is not None:
        with engine.connect() as conn:
            resolve_version(conn, base)
        console.print(f"made from version {base}: what was published since then is kept")
    reports = []
    loads = []
    try:
        with progress() as bar:
            failed = None
            for step in steps:
                task = bar.add_task(f"validating {step.description}")
                load = step.prepare(context)
                bar.remove_task(task)
                show(load, with_diff=with_diff)
                reports.append(load.report)
                context.staged[load.layer] = load
                loads.append(load)
                if load.report.problems and failed is None:
                    failed = load.report  # later parts are still read: what they fix counts
            task = bar.add_task("checking the rules across layers")
            # with a broken part only what still names retired codes is worth saying
            across = check_bundle(context, nesting=failed is None)
            bar.remove_task(task)
            reports.append(across)
            if across.problems:
                for line in across.lines():
                    console.print(line)
            if failed is not None:
                _raise_all(reports)
            across.raise_if_failed()
            changes = code_changes(context)
            if changes:
                console.print("code changes:")
                for line in changes:
                    console.print(f"  {line}")
            same = [load for load in loads if load.unchanged]
            for load in same:
                console.print(f"{load.layer}: no change against the current version")
            if not force:
                loads = [load for load in loads if not load.unchanged]
            if not loads:
                console.print(
                    "no change: nothing to publish (--force publishes a new version anyway) "
                    f"({time.perf_counter() - began:.1f} s)"
                )
                return None
            if dry_run:
                console.print(
                    f"dry run: valid, nothing published ({time.perf_counter() - began:.1f} s)"
                )
                return None
            bar.add_task("publishing")
            version = publish_loads(
                engine, loads, note=note, actor=actor, draft=draft, changes=changes
            )
    finally:
        if problems is not None:
            count = write_problems(problems, reports, context.place_of)
            console.print(f"{count} problem{'s' if count != 1 else ''} written to {problems}")
    what = "; ".join(load.summary for load in loads)
    files = ", ".join(sorted({Path(load.source.path).name for load in loads}))
    kind = f"draft dataset version {version} (`geoservice promote {version}` makes it current)"
    console.print(
        f"published {kind if draft else f'dataset version {version}'}: {what} from {files} "
        f"({time.perf_counter() - began:.1f} s)"
    )
    return version


def check_draft(
    engine: Engine, version: int, *, problems: Path | None = None, force: bool = False
) -> None:
    """Every rule of a bundle on draft ``version`` before it becomes current: the draft
    exported as ``geoservice export`` writes it and dry-run as a bundle made from the
    version it was opened on (so what was published since is a conflict, unless
    ``force``). Raises ``ValidationFailed`` naming every problem; a version that is not a
    draft, or a draft made on an older version without ``force``, is left to
    ``datasets.promote`` to refuse."""
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(dataset_version.c.status, dataset_version.c.parent_id).where(
                dataset_version.c.id == version
            )
        ).one_or_none()
        current = current_version_id(conn)
    if row is None or row.status != "draft" or (row.parent_id != current and not force):
        return
    console.print(f"checking draft {version} with every rule of a bundle")
    with tempfile.TemporaryDirectory(prefix="geoservice-draft-") as folder:
        path = Path(folder) / f"draft-{version}.gpkg"
        export_version(engine, path, version)
        run_loads(
            engine,
            bundle_steps(path),
            dry_run=True,
            note="",
            with_diff=False,
            problems=problems,
            force=force,
            base=row.parent_id,
        )
