"""``geoservice etl``: validate GIS files and publish them as a dataset version."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from geoservice.audit import Actor
from geoservice.cli.base import (
    AllowOutside,
    Base,
    By,
    CrsOption,
    Draft,
    DryRun,
    Encoding,
    Force,
    InputFile,
    Note,
    Problems,
    ReplaceNetwork,
    ToleranceM,
    etl_app,
)
from geoservice.crs import DEFAULT_TOLERANCE_M
from geoservice.db import (
    open_engine,
)
from geoservice.settings import Settings


@dataclass(frozen=True)
class Publishing:
    """What every ETL command takes besides its input."""

    dry_run: bool
    note: str
    by: str | None
    draft: bool
    problems: Path | None
    tolerance_m: float
    force: bool
    base: int | None


def _publish(steps: list, how: Publishing, *, with_diff: bool = True) -> None:
    """Validate ETL input and publish it as one new dataset version (or not: a dry run)."""
    from etl.commands import run_loads

    run_loads(
        open_engine(Settings(), "writer"),
        steps,
        dry_run=how.dry_run,
        note=how.note,
        actor=Actor.cli(how.by),
        draft=how.draft,
        problems=how.problems,
        with_diff=with_diff,
        tolerance_m=how.tolerance_m,
        force=how.force,
        base=how.base,
    )


@etl_app.command("boundaries")
def etl_boundaries(
    file: InputFile,
    layer: Annotated[str, typer.Option(help="district, town, unit, large_grid or grid.")],
    crs: CrsOption = None,
    code_field: Annotated[str, typer.Option(help="Field holding the code.")] = "code",
    name_field: Annotated[str, typer.Option(help="Field holding the name.")] = "name",
    parent_field: Annotated[
        str, typer.Option(help="Field holding the parent's code (`parent` is read too).")
    ] = "parent_code",
    layer_name: Annotated[
        str | None, typer.Option(help="Layer inside a GeoPackage holding several.")
    ] = None,
    encoding: Encoding = None,
    repair: Annotated[
        bool, typer.Option("--repair", help="make_valid and snap edges; each repair listed.")
    ] = False,
    allow_outside: AllowOutside = False,
    dry_run: DryRun = False,
    note: Note = "",
    by: By = None,
    draft: Draft = False,
    problems: Problems = None,
    tolerance_m: ToleranceM = DEFAULT_TOLERANCE_M,
    base: Base = None,
    force: Force = False,
) -> None:
    """Validate and publish one boundary layer."""
    from etl.boundaries import BoundaryOptions, prepare_boundaries
    from etl.load import Step

    options = BoundaryOptions(
        layer=layer,
        crs=crs,
        code_field=code_field,
        name_field=name_field,
        parent_field=parent_field,
        layer_name=layer_name,
        encoding=encoding,
        repair=repair,
        allow_outside=allow_outside,
    )
    step = Step(layer, f"{layer} layer", lambda ctx: prepare_boundaries(file, options, ctx))
    _publish([step], Publishing(dry_run, note, by, draft, problems, tolerance_m, force, base))


@etl_app.command("officers")
def etl_officers(
    file: InputFile,
    encoding: Encoding = None,
    dry_run: DryRun = False,
    note: Note = "",
    by: By = None,
    draft: Draft = False,
    problems: Problems = None,
    tolerance_m: ToleranceM = DEFAULT_TOLERANCE_M,
    base: Base = None,
    force: Force = False,
) -> None:
    """Validate and publish officers and their unit assignments (CSV)."""
    from etl.load import Step
    from etl.police import prepare_officers

    step = Step("officers", "officers", lambda ctx: prepare_officers(file, ctx, encoding=encoding))
    _publish([step], Publishing(dry_run, note, by, draft, problems, tolerance_m, force, base))


@etl_app.command("stations")
def etl_stations(
    file: InputFile,
    crs: CrsOption = None,
    encoding: Encoding = None,
    allow_outside: AllowOutside = False,
    dry_run: DryRun = False,
    note: Note = "",
    by: By = None,
    draft: Draft = False,
    problems: Problems = None,
    tolerance_m: ToleranceM = DEFAULT_TOLERANCE_M,
    base: Base = None,
    force: Force = False,
) -> None:
    """Validate and publish police stations and posts (points)."""
    from etl.load import Step
    from etl.police import prepare_stations

    step = Step(
        "stations",
        "stations",
        lambda ctx: prepare_stations(
            file, ctx, crs=crs, allow_outside=allow_outside, encoding=encoding
        ),
    )
    _publish([step], Publishing(dry_run, note, by, draft, problems, tolerance_m, force, base))


@etl_app.command("patrols")
def etl_patrols(
    file: InputFile,
    crs: CrsOption = None,
    allow_outside: AllowOutside = False,
    dry_run: DryRun = False,
    note: Note = "",
    by: By = None,
    draft: Draft = False,
    problems: Problems = None,
    tolerance_m: ToleranceM = DEFAULT_TOLERANCE_M,
    base: Base = None,
    force: Force = False,
) -> None:
    """Validate and publish patrol segments (lines with level and team size)."""
    from etl.load import Step
    from etl.police import prepare_patrols

    step = Step(
        "patrols",
        "patrol segments",
        lambda ctx: prepare_patrols(file, ctx, crs=crs, allow_outside=allow_outside),
    )
    _publish([step], Publishing(dry_run, note, by, draft, problems, tolerance_m, force, base))


@etl_app.command("population")
def etl_population(
    file: InputFile,
    crs: CrsOption = None,
    encoding: Encoding = None,
    allow_outside: AllowOutside = False,
    dry_run: DryRun = False,
    note: Note = "",
    by: By = None,
    draft: Draft = False,
    problems: Problems = None,
    tolerance_m: ToleranceM = DEFAULT_TOLERANCE_M,
    base: Base = None,
    force: Force = False,
) -> None:
    """Validate and publish where people live: points or footprints with residents and
    households (an optional unique code), for grid design."""
    from etl.load import Step
    from etl.population import prepare_population

    step = Step(
        "population",
        "population",
        lambda ctx: prepare_population(
            file, ctx, crs=crs, allow_outside=allow_outside, encoding=encoding
        ),
    )
    _publish([step], Publishing(dry_run, note, by, draft, problems, tolerance_m, force, base))


@etl_app.command("roads")
def etl_roads(
    file: InputFile,
    profile: Annotated[str, typer.Option(help="Speed profile: car, foot or a .json file.")] = "car",
    allow_outside: AllowOutside = False,
    replace_network: ReplaceNetwork = False,
    dry_run: DryRun = False,
    note: Note = "",
    by: By = None,
    draft: Draft = False,
    problems: Problems = None,
    tolerance_m: ToleranceM = DEFAULT_TOLERANCE_M,
    base: Base = None,
    force: Force = False,
) -> None:
    """Validate and publish a road network (.osm, .osm.bz2, .osm.pbf, osmnx .graphml)."""
    from etl.load import Step
    from etl.roads import prepare_roads

    step = Step(
        "roads",
        "roads",
        lambda ctx: prepare_roads(
            file,
            ctx,
            profile=profile,
            allow_outside=allow_outside,
            replace_network=replace_network,
        ),
    )
    _publish([step], Publishing(dry_run, note, by, draft, problems, tolerance_m, force, base))


@etl_app.command("events")
def etl_events(
    file: InputFile,
    dry_run: DryRun = False,
    by: By = None,
    tolerance_m: Annotated[
        float,
        typer.Option(
            "--tolerance-m",
            min=0.0,
            max=1.0,
            help="Taken as by every ETL command; events are points located exactly in the "
            "version current at their time, so nothing is snapped.",
        ),
    ] = DEFAULT_TOLERANCE_M,
) -> None:
    """Load grid events from a CSV (id, time, category, status, lon, lat, and optionally
    description, closed_at): every row checked, each located in the dataset version
    current at its time; all or none stored. An id already stored is replaced."""
    from collections import Counter

    from geoservice.console import console, progress
    from geoservice.events import load_events_file, store_events

    engine = open_engine(Settings(), "writer")
    with progress() as bar:
        bar.add_task(f"checking and locating the events of {file}")
        frame, early = load_events_file(engine, file, Actor.cli(by), dry_run=True)
    categories = Counter(frame["category"])
    statuses = Counter(frame["status"])
    versions = Counter(int(v) for v in frame["dataset_version"])
    console.print(
        f"{len(frame):,} events: "
        + ", ".join(f"{k} {v:,}" for k, v in sorted(categories.items()))
        + "; "
        + ", ".join(f"{k} {v:,}" for k, v in sorted(statuses.items()))
        + "; located in dataset version(s) "
        + ", ".join(f"{k} ({v:,})" for k, v in sorted(versions.items()))
    )
    if early:
        console.print(
            f"{early:,} events predate the first dataset version: located in that version"
        )
    if dry_run:
        console.print("dry run: nothing stored")
        return
    with progress() as bar:
        bar.add_task("storing")
        stored = store_events(engine, frame, Actor.cli(by).name, replace=True, audit=Actor.cli(by))
    console.print(f"stored {stored:,} events from {file}")


@etl_app.command("bundle")
def etl_bundle(
    path: Annotated[Path, typer.Argument(help="A folder of layer files, or one GeoPackage.")],
    crs: CrsOption = None,
    encoding: Encoding = None,
    repair: Annotated[
        bool, typer.Option("--repair", help="make_valid and snap edges; each repair listed.")
    ] = False,
    allow_outside: AllowOutside = False,
    replace_network: ReplaceNetwork = False,
    dry_run: DryRun = False,
    note: Note = "",
    by: By = None,
    draft: Draft = False,
    problems: Problems = None,
    tolerance_m: ToleranceM = DEFAULT_TOLERANCE_M,
    base: Base = None,
    force: Force = False,
) -> None:
    """Several layers at once (a merge, a split, a redrawn area), checked together and
    published as one version: files named district, town, unit, large_grid, grid,
    stations, patrols (GeoJSON, GeoPackage, Shapefile), officers.csv, roads.osm…"""
    from etl.bundle import BundleOptions, bundle_base, bundle_steps

    options = BundleOptions(
        crs=crs,
        encoding=encoding,
        repair=repair,
        allow_outside=allow_outside,
        replace_network=replace_network,
    )
    base = base if base is not None else bundle_base(path)
    how = Publishing(dry_run, note, by, draft, problems, tolerance_m, force, base)
    _publish(bundle_steps(path, options), how)
