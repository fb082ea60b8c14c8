"""``geoservice demo``: the synthetic dataset, and its patrol team on the move."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from geoservice import datasets
from geoservice.audit import Actor
from geoservice.cli.base import (
    By,
    demo_app,
    fail,
)
from geoservice.db import (
    create_engine,
    open_engine,
)
from geoservice.settings import Settings


@demo_app.callback(invoke_without_command=True)
def demo(
    ctx: typer.Context,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same data.")] = (
        2020
    ),
    out: Annotated[
        Path | None, typer.Option(help="Where to write the files [GEOSERVICE_DATA_DIR/demo].")
    ] = None,
    no_load: Annotated[bool, typer.Option("--no-load", help="Only write the files.")] = False,
    if_empty: Annotated[
        bool, typer.Option("--if-empty", help="Do nothing when a dataset is already published.")
    ] = False,
    revisions: Annotated[
        Path | None,
        typer.Option(help="Also write example revision bundles (merge/, split/) here."),
    ] = None,
    scale: Annotated[
        int,
        typer.Option(
            min=1,
            help="Districts: N copies of the synthetic district (20 ≈ Huizhou and "
            "neighbours, 122 ≈ Guangdong).",
        ),
    ] = 1,
    by: By = None,
) -> None:
    """Write the synthetic Huicheng dataset as GIS files (one bundle folder and a year of
    grid events), then load it through the ETL."""
    if ctx.invoked_subcommand is not None:
        return
    from geoservice.console import console, progress
    from geoservice.demo import demo_steps
    from geoservice.synthetic import write_demo

    settings = Settings()
    engine = None
    if not no_load:
        engine = open_engine(settings, "writer")
        with engine.connect() as conn:
            current = datasets.current_version_id(conn)
        if if_empty and current is not None:
            typer.echo(f"dataset version {current} is current; demo not loaded")
            return
    out = out or settings.resolved_data_dir / ("demo" if scale == 1 else f"demo-scale-{scale}")
    with progress() as bar:
        bar.add_task(
            f"generating the synthetic dataset (seed {seed}, {scale} district(s)) into {out}"
        )
        if scale == 1:
            files = write_demo(out, seed=seed)
        else:
            from geoservice.synthetic.scale import write_scaled_demo

            files = write_scaled_demo(out, scale, seed=seed)
    console.print(f"wrote the synthetic Huicheng dataset to {out}")
    if revisions is not None:
        from geoservice.synthetic.revisions import write_revisions

        for name, revision in write_revisions(files, revisions).items():
            console.print(
                f"wrote the {name} revision bundle to {revision.folder}: {revision.summary}"
            )
    if engine is not None:
        from etl.commands import run_loads

        run_loads(
            engine,
            demo_steps(files, allow_outside=scale > 1),
            dry_run=False,
            with_diff=False,
            note=f"synthetic Huicheng demo, seed {seed}"
            + (f", {scale} districts" if scale > 1 else ""),
            actor=Actor.cli(by),
        )
        if files.events is not None:
            from geoservice.events import load_events_file

            with progress() as bar:
                bar.add_task(f"loading the grid events of {files.events}")
                stored = len(load_events_file(engine, files.events, Actor.cli(by))[0])
            console.print(f"stored {stored:,} synthetic grid events from {files.events}")


@demo_app.command("simulate-patrols")
def simulate_patrols(
    minutes: Annotated[
        float, typer.Option(help="How long to run (0: one set of positions, then stop).")
    ] = 10.0,
    every: Annotated[float, typer.Option(help="Seconds between reports.", min=0.5)] = 5.0,
    speed: Annotated[float, typer.Option(help="Patrol speed, km/h.", min=1.0)] = 20.0,
) -> None:
    """Drive the patrol units along their segments, recording a position for each every
    few seconds (as their GPS feed would); the service's live coverage and dispatch
    follow them."""
    from geoservice.console import console
    from geoservice.locate import build_index
    from geoservice.patrols import PositionStore, patrol_units
    from geoservice.synthetic.patrols import PatrolSimulator, drive

    settings = Settings()
    reader = open_engine(settings)
    index = build_index(reader)
    units = patrol_units(reader, index.version)
    if not units:
        fail(f"dataset version {index.version} has no patrol segments, so no patrol units")
    simulator = PatrolSimulator(reader, index.version, units, speed)
    store = PositionStore(create_engine(settings, "recorder"), settings.positions_keep_days)
    console.print(
        f"{len(units)} patrol units on {len(simulator.metric)} segments, reporting every "
        f"{every:g} s at {speed:g} km/h (Ctrl-C stops)"
    )
    try:
        for when, count in drive(
            simulator, store, index, settings.position_max_age_s, minutes * 60, every
        ):
            console.print(f"{when:%H:%M:%S} recorded {count} positions")
    except KeyboardInterrupt:
        console.print("stopped")
