"""``geoservice coverage``: officer and response coverage, patrol point planning."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from geoservice.cli.base import (
    JsonFlag,
    coverage_app,
    stderr,
)
from geoservice.db import (
    open_engine,
)
from geoservice.errors import InvalidInput
from geoservice.settings import Settings


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
    by_district: Annotated[
        bool,
        typer.Option(
            "--by-district",
            help="Evaluate district by district on Dask (GEOSERVICE_DASK_SCHEDULER, else a "
            "local cluster); grids beyond the largest band are reported as not reached.",
        ),
    ] = False,
    workers: Annotated[
        int | None,
        typer.Option(min=1, help="Worker processes of the local cluster (default: one per core)."),
    ] = None,
) -> None:
    """Share of grids, area and residents reached within each band along the roads."""
    from geoservice.bands import Bands
    from geoservice.coverage import CoverageModel, OriginKind, Weight

    bands = Bands.parse(minutes)
    kind = OriginKind.parse(origins, "origins")
    weighed = Weight.parse(weight, "weight")
    if by_district:
        if weighed is not Weight.RESIDENTS:
            msg = f"--by-district weighs grids by residents only, not --weight {weight!r}"
            raise InvalidInput(msg)
        from geoservice.coverage.partitioned import response_by_district

        result = response_by_district(Settings(), bands, kind, n_workers=workers)
    else:
        result = CoverageModel.load(open_engine(Settings())).weighted(weighed).response(bands, kind)
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
    from geoservice.coverage import CoverageModel, Weight

    if (k is None) == (not set_cover):
        msg = "give either --k N (maximal covering) or --set-cover"
        raise typer.BadParameter(msg)
    model = CoverageModel.load(open_engine(Settings())).weighted(Weight.parse(weight, "weight"))
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
