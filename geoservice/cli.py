"""The ``geoservice`` command line (typer)."""

from __future__ import annotations

import json
import os
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import sqlalchemy as sa
import typer
from rich.console import Console
from rich.table import Table

from geoservice import datasets
from geoservice.audit import Actor
from geoservice.crs import DEFAULT_TOLERANCE_M
from geoservice.db import (
    create_engine,
    describe,
    downgrade,
    one_line,
    open_engine,
    require_current_schema,
    upgrade,
)
from geoservice.errors import (
    ConfigurationError,
    DatabaseUnavailable,
    GeoserviceError,
    InvalidInput,
)
from geoservice.settings import Settings

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
        "geoservice.api.app:create_app",
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


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Argument(help="Who or what the key is for (unique).")],
    role: Annotated[str, typer.Option(help="tracker, dispatch, planner, gis or admin.")],
    units: Annotated[
        str | None,
        typer.Option(
            help="Patrol unit codes, comma-separated (XD01-1,XD01-2): the only units whose "
            "positions the key may post (a tracker key needs them)."
        ),
    ] = None,
    rate: Annotated[
        float | None, typer.Option(help="Requests per second [GEOSERVICE_RATE_PER_S].")
    ] = None,
    burst: Annotated[int | None, typer.Option(help="Burst [GEOSERVICE_RATE_BURST].")] = None,
    by: By = None,
) -> None:
    """Create a key; it is printed once, alone on the last line (only its hash is kept)."""
    from geoservice.keys import create_key

    engine = open_engine(Settings(), "writer")
    codes = None if units is None else units.split(",")
    key = create_key(
        engine, name, role, actor=Actor.cli(by), rate_per_s=rate, burst=burst, units=codes
    )
    bound = f", units {units}" if units else ""
    stderr.print(
        f"key {name!r} ({role}{bound}) created; it is shown once, keep it:", highlight=False
    )
    typer.echo(key)


@keys_app.command("list")
def keys_list(as_json: Annotated[bool, typer.Option("--json", help="JSON.")] = False) -> None:
    """The keys: names, roles, dates (never the keys themselves)."""
    from geoservice.keys import list_keys

    with open_engine(Settings()).connect() as conn:
        infos = list_keys(conn)
    if as_json:
        rows = [
            {
                **k.__dict__,
                "created_at": k.created_at.isoformat(),
                "revoked_at": k.revoked_at.isoformat() if k.revoked_at else None,
            }
            for k in infos
        ]
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    table = Table("name", "role", "key id", "created", "by", "revoked", "rate/s", "units")
    for k in infos:
        table.add_row(
            k.name,
            k.role,
            k.key_id,
            f"{k.created_at:%Y-%m-%d %H:%M}",
            k.created_by,
            f"{k.revoked_at:%Y-%m-%d %H:%M}" if k.revoked_at else "",
            "" if k.rate_per_s is None else f"{k.rate_per_s:g}",
            ",".join(k.units or ()),
        )
    Console().print(table)


@keys_app.command("revoke")
def keys_revoke(name: str, by: By = None) -> None:
    """Revoke a key: every server refuses it within a second."""
    from geoservice.keys import revoke_key

    revoke_key(open_engine(Settings(), "writer"), name, actor=Actor.cli(by))
    typer.echo(f"key {name!r} revoked")


@keys_app.command("local-admin")
def keys_local_admin(by: By = None) -> None:
    """The local demo's admin key in <data dir>/admin.key (mode 600), created the first
    time; prints where it is (``make run`` calls this)."""
    from geoservice.keys import create_key

    settings = Settings()
    path = settings.resolved_data_dir / "admin.key"
    if not path.exists():
        key = create_key(
            open_engine(settings, "writer"),
            f"local-admin-{secrets.token_hex(3)}",
            "admin",
            actor=Actor.cli(by),
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(key + "\n")
    typer.echo(f'admin key in {path}: curl -H "Authorization: Bearer $(cat {path})" ...')


@app.command("audit")
def audit_command(
    as_json: Annotated[bool, typer.Option("--json", help="JSON.")] = False,
    limit: Annotated[int, typer.Option(min=1, help="Newest entries first.")] = 50,
) -> None:
    """The audit log: publishes, promotions, rollbacks, keys created and revoked."""
    from geoservice import audit

    with open_engine(Settings()).connect() as conn:
        entries = audit.entries(conn, limit=limit)
    if as_json:
        typer.echo(json.dumps([e.to_json() for e in entries], ensure_ascii=False, indent=2))
        return
    table = Table("at", "who", "via", "action", "version", "detail", "note")
    for e in entries:
        who = e.actor if e.os_user in (None, e.actor) else f"{e.actor} ({e.os_user})"
        detail = ", ".join(f"{k}={v}" for k, v in e.detail.items() if k != "sources")
        table.add_row(
            f"{e.at:%Y-%m-%d %H:%M:%S}",
            who,
            e.via,
            e.action,
            str(e.version_id or ""),
            detail,
            e.note,
        )
    Console().print(table)


@app.command()
def locate(
    lon: Annotated[str, typer.Argument(help="Longitude (or easting).")],
    lat: Annotated[str, typer.Argument(help="Latitude (or northing).")],
    crs: CrsOption = None,
) -> None:
    """One locate result as JSON on stdout (the same answer as GET /v1/locate)."""
    from geoservice.locate import build_index, parse_point

    x, y = parse_point(lon, lat, crs)
    index = build_index(open_engine(Settings()))
    typer.echo(json.dumps(index.locate(x, y), ensure_ascii=False, indent=2))


@app.command()
def isochrones(
    lon: Annotated[str, typer.Argument(help="Longitude (or easting) of the origin.")],
    lat: Annotated[str, typer.Argument(help="Latitude (or northing) of the origin.")],
    minutes: Annotated[str, typer.Option(help="Band limits, each in (0, 60].")] = "1,3,5",
    crs: CrsOption = None,
    profile: Annotated[str, typer.Option(help="car, foot, or a profile .json file.")] = "car",
    buffer_m: Annotated[float, typer.Option(help="Band half-width around roads, m.")] = 30.0,
) -> None:
    """Isochrone bands as GeoJSON on stdout (the same answer as GET /v1/isochrones)."""
    import orjson

    from geoservice.isochrones import check_buffer
    from geoservice.isochrones import isochrones as bands
    from geoservice.locate import parse_point
    from geoservice.network import load_network

    x, y = parse_point(lon, lat, crs)
    network = load_network(open_engine(Settings()), profile)
    result = bands(network, x, y, minutes, buffer_m=check_buffer(buffer_m))
    typer.echo(orjson.dumps(result.to_geojson()).decode())


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


demo_app = typer.Typer(help="The synthetic demo dataset, and its patrol team on the move.")
app.add_typer(demo_app, name="demo")


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


JsonFlag = Annotated[bool, typer.Option("--json", help="Print the answer as JSON.")]


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
    engine = open_engine(Settings())
    with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn:
        chosen = resolve_version(conn, version)
        proposal = grid_design.propose(
            conn, chosen, scope, band, keep_fitting=keep_fitting, weight=weight,
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


@coverage_app.command("officers")
def coverage_officers(as_json: JsonFlag = False) -> None:
    """Does every unit have its own officer? Exit 0 when yes, 1 when not."""
    from geoservice.coverage import officer_coverage

    report = officer_coverage(open_engine(Settings()))
    if as_json:
        typer.echo(json.dumps(report, ensure_ascii=False, indent=2))
    else:
        console = Console()
        table = Table("town", "units", "covered", "officers", "residents/officer")
        for town in report["by_town"]:
            table.add_row(
                f"{town['code']} {town['name']}",
                str(town["units"]),
                str(town["units_covered"]),
                str(town["officers"]),
                str(town["residents_per_officer"]),
            )
        console.print(table)
        console.print(
            f"{report['units_covered']}/{report['units_total']} units covered, "
            f"{report['officers_assigned']}/{report['officers_total']} officers assigned "
            f"(dataset version {report['dataset_version']})"
        )
        for unit in report["uncovered_units"]:
            stderr.print(f"uncovered unit: {unit['code']} {unit['name']}", highlight=False)
        for link in report["unknown_unit_assignments"]:
            stderr.print(
                f"officer {link['officer_code']} is assigned to unknown unit {link['unit_code']}",
                highlight=False,
            )
        for officer in report["unassigned_officers"]:
            stderr.print(f"officer without unit: {officer['code']} {officer['name']}")
    if not report["ok"]:
        raise typer.Exit(1)


@coverage_app.command("response")
def coverage_response(
    minutes: Annotated[str, typer.Option(help="Band limits in minutes.")] = "1,3,5",
    origins: Annotated[str, typer.Option(help="stations, posts, patrols or all.")] = "all",
    weight: Annotated[
        str, typer.Option(help="What a grid weighs: residents, or the grid events in it.")
    ] = "residents",
    as_json: JsonFlag = False,
    csv: Annotated[Path | None, typer.Option(help="Write the per-grid table as CSV.")] = None,
    geojson: Annotated[
        Path | None, typer.Option(help="Write the per-grid table as GeoJSON.")
    ] = None,
) -> None:
    """Share of grids, area and residents reached within each band along the roads."""
    from geoservice.coverage import CoverageModel

    model = CoverageModel.load(open_engine(Settings())).weighted(weight)
    result = model.response(minutes, origins)
    if csv is not None:
        result.table().to_csv(csv, index=False)
    if geojson is not None:
        result.geodataframe().to_file(geojson, driver="GeoJSON")
    answer = result.to_json()
    if as_json:
        typer.echo(json.dumps(answer, ensure_ascii=False, indent=2))
        return
    share = "population share" if weight == "residents" else "event share"
    table = Table("minutes", "grids covered", "grid share", "area share", share)
    for band in answer["bands"]:
        table.add_row(
            str(band["minutes"]),
            f"{band['grids_covered']}/{band['grids_total']}",
            f"{band['grid_share']:.1%}",
            f"{band['area_share']:.1%}",
            f"{band['population_share']:.1%}",
        )
    console = Console()
    console.print(table)
    console.print(
        f"origins: {answer['origins']}; {len(answer['uncovered_grids'])} grids not reached "
        f"within {answer['minutes'][-1]} min (dataset version {answer['dataset_version']})"
    )


@coverage_app.command("plan")
def coverage_plan(
    minutes: Annotated[float, typer.Option(help="Response time limit.")] = 3.0,
    k: Annotated[
        int | None, typer.Option(help="Patrol points to place (maximal covering).")
    ] = None,
    set_cover: Annotated[
        bool, typer.Option("--set-cover", help="The fewest points reaching all demand.")
    ] = False,
    time_limit: Annotated[float, typer.Option(help="Solver time limit, seconds.")] = 60.0,
    weight: Annotated[
        str, typer.Option(help="What to cover: residents, or the register's grid events.")
    ] = "residents",
    as_json: JsonFlag = False,
) -> None:
    """Where patrol points should stand in the central city (HiGHS MILP beside greedy)."""
    from geoservice import planning
    from geoservice.coverage import CoverageModel

    if (k is None) == (not set_cover):
        msg = "give either --k N (maximal covering) or --set-cover"
        raise typer.BadParameter(msg)
    model = CoverageModel.load(open_engine(Settings())).weighted(weight)
    instance = planning.build_instance(model, minutes)
    if set_cover:
        solutions = [
            planning.set_covering(instance, time_limit_s=time_limit),
            planning.greedy_set_cover(instance),
        ]
    else:
        assert k is not None
        solutions = [
            planning.maximal_covering(instance, k, time_limit_s=time_limit),
            planning.greedy_maximal(instance, k),
        ]
    answer: dict[str, Any] = {
        "minutes": minutes,
        "problem": "set_covering" if set_cover else "maximal_covering",
        "k": k,
        "candidates": int(instance.cover.shape[1]),
        "demand_points": instance.demand_points,
        "weight": weight,
        weight: round(float(instance.weight.sum()) + instance.uncoverable_weight),
        "solutions": [
            {
                "method": s.method,
                "status": s.status,
                "objective": s.objective,
                f"{weight}_covered": round(s.covered_weight),
                "gap": None if s.gap != s.gap else s.gap,
                "seconds": round(s.seconds, 3),
                "points": [
                    {"lon": round(float(x), 7), "lat": round(float(y), 7)}
                    for x, y in instance.candidate_lonlat[s.chosen]
                ],
            }
            for s in solutions
        ],
    }
    if as_json:
        typer.echo(json.dumps(answer, ensure_ascii=False, indent=2))
        return
    table = Table("method", "status", "objective", f"{weight} covered", "gap", "seconds")
    for s in answer["solutions"]:
        gap = "-" if s["gap"] is None else f"{s['gap']:.2%}"
        table.add_row(
            s["method"],
            s["status"],
            f"{s['objective']:,.0f}",
            f"{s[f'{weight}_covered']:,}",
            gap,
            f"{s['seconds']:.2f}",
        )
    console = Console()
    console.print(table)
    console.print(
        f"{answer['problem']} within {minutes:g} min: {answer['candidates']} candidates, "
        f"{answer['demand_points']} demand points, {answer[weight]:,} {weight}"
    )


@app.command()
def report(
    period: Annotated[str, typer.Argument(help="daily, weekly (ISO week), monthly or quarterly.")],
    out: Annotated[Path, typer.Option("--out", help="The file to write: .pdf, .xlsx or .csv.")],
    date: Annotated[
        str | None,
        typer.Option("--date", help="A day of the period, YYYY-MM-DD [today, China time]."),
    ] = None,
    town: Annotated[
        str | None, typer.Option("--town", help="One town's code [the whole district].")
    ] = None,
) -> None:
    """A bulletin (日汇总、周研判、月通报、季度分析) for the period holding --date and the
    one before it: events by category and town, closure, handling times, on-time rates,
    overdue events with their handlers, departments ranked, hot spots, 1/3/5-minute
    coverage, changes in boundaries and stations. Chinese text."""
    from geoservice.coverage import CoverageModel
    from geoservice.reports import bulletin, check_town, format_of, parse_date, parse_kind

    fmt = format_of(out)  # bad input is refused before any work
    parse_kind(period)
    parse_date(date)
    engine = open_engine(Settings())
    check_town(engine, town)
    model = CoverageModel.load(engine)
    chosen, data = bulletin(engine, model, period, date, town, fmt)
    out.write_bytes(data)
    stderr.print(
        f"wrote the {chosen.kind} bulletin of {chosen.first} to {chosen.last} to {out} "
        f"({len(data):,} bytes)",
        highlight=False,
    )


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
