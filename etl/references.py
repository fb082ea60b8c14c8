"""Rules across layers, checked on what the whole bundle leaves.

Each part of a bundle is checked against its parents as the bundle leaves them (earlier
parts staged). What remains is what the bundle does *not* load: current children, posts,
stations and officer assignments must still name codes that exist, and current children
must still nest in changed parents. A code that disappears while something left still
names it is refused, naming both.
"""

from __future__ import annotations

import pandas as pd

from etl.boundaries import NOUNS, PARENT, check_nesting
from etl.context import Context
from etl.load import few
from etl.report import Report

LAYER_NOUNS = {**NOUNS, "stations": "station"}


def check_bundle(context: Context, *, nesting: bool = True) -> Report:
    """Every reference (and, with ``nesting``, nesting) rule the bundle's changes could
    break."""
    report = Report("across the layers")
    changed = set(context.staged)
    for child, parent in PARENT.items():
        if parent not in changed or child in changed:
            continue
        children = context.current_boundary(child)
        parents = context.boundary(parent)
        if children is None or parents is None:
            continue
        _still_named(
            report, context, parent, children["parent_code"], children["code"], NOUNS[child]
        )
        if nesting:
            check_nesting(children, parents, child, report)
    if "stations" not in changed:
        stations = context.stations(staged=False)
        for kind, layer in (("station", "town"), ("post", "unit")):
            if layer in changed:
                mine = stations[stations["kind"] == kind]
                _still_named(report, context, layer, mine["area_code"], mine["code"], kind)
    if "officers" not in changed:
        if "unit" in changed:
            links = context.assignments(staged=False)
            _still_named(
                report, context, "unit", links["unit_code"], links["officer_code"], "officer"
            )
        if "stations" in changed:
            officers = context.officer_stations(staged=False)
            officers = officers[officers["station_code"].fillna("") != ""]
            _still_named(
                report, context, "stations", officers["station_code"], officers["code"], "officer"
            )
    return report


def _still_named(
    report: Report,
    context: Context,
    layer: str,
    named: pd.Series,
    by: pd.Series,
    noun: str,
) -> None:
    """Refuse each code of ``layer`` the bundle retires while ``by`` still names it."""
    if layer == "stations":
        kept = context.station_codes() or set()
        old = None
    else:
        kept = context.codes(layer)
        old = context.current_boundary(layer)
    missing = ~named.isin(kept).to_numpy()
    if not missing.any():
        return
    where = {}
    if old is not None:
        where = dict(zip(old["code"], old.geometry.values, strict=True))
    groups = pd.DataFrame({"code": named[missing].to_numpy(), "by": by[missing].to_numpy()})
    for code, group in groups.groupby("code", sort=True):
        names = sorted(group["by"])
        count = len(names)
        plural = count > 1
        report.error(
            f"{LAYER_NOUNS[layer]} {code!r} is retired but {count} {noun}{'s' if plural else ''} "
            f"still name{'' if plural else 's'} it: {few(names)}; change "
            f"{'them' if plural else 'it'} in the same bundle",
            where.get(code),
            code=code,
            kind="retired_but_named",
        )
