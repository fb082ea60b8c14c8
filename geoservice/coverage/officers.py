"""Officers per unit ("一村(居)一警"): does every unit have its own officer?"""

from __future__ import annotations

from typing import Any

import pandas as pd
from sqlalchemy.engine import Engine

from geoservice.store import VersionReader


def officer_coverage(engine: Engine, version: int | None = None) -> dict[str, Any]:
    """Every unit has at least one assigned officer? Per town, the heaviest units, and
    every assignment that does not fit (answer of ``GET /v1/coverage/officers``); of one
    dataset version (default: the current one)."""
    with VersionReader.open(engine, version) as reader:
        units = _frame(reader, "SELECT code, name, parent_code, population FROM {unit} u")
        towns = _frame(reader, "SELECT code, name FROM {town} t")
        officers = _frame(reader, "SELECT code, name FROM {officer} o")
        links = _frame(reader, "SELECT officer_code, unit_code FROM {officer_unit} l")
    known = links["unit_code"].isin(units["code"])
    unknown = links[~known].sort_values(["unit_code", "officer_code"])
    links = links[known]
    per_unit = links.groupby("unit_code")["officer_code"].nunique()
    units = units.assign(officers=units["code"].map(per_unit).fillna(0).astype(int))
    uncovered = units[units["officers"] == 0].sort_values("code")
    unassigned = officers[~officers["code"].isin(links["officer_code"])].sort_values("code")
    town_of = dict(zip(units["code"], units["parent_code"], strict=True))
    links = links.assign(town=links["unit_code"].map(town_of))
    by_town = []
    for town in towns.sort_values("code").itertuples():
        mine = units[units["parent_code"] == town.code]
        staff = int(links.loc[links["town"] == town.code, "officer_code"].nunique())
        residents = int(mine["population"].fillna(0).sum())
        by_town.append(
            {
                "code": town.code,
                "name": town.name,
                "units": len(mine),
                "units_covered": int((mine["officers"] > 0).sum()),
                "officers": staff,
                "residents": residents,
                "residents_per_officer": round(residents / staff, 1) if staff else None,
            }
        )
    load = units[units["officers"] > 0].assign(
        residents_per_officer=lambda f: f["population"].fillna(0) / f["officers"]
    )
    heaviest = load.sort_values(["residents_per_officer", "code"], ascending=[False, True])
    town_name = dict(zip(towns["code"], towns["name"], strict=True))
    return {
        "ok": uncovered.empty and unknown.empty,
        "units_total": len(units),
        "units_covered": int((units["officers"] > 0).sum()),
        "uncovered_units": _records(uncovered, ["code", "name"]),
        "officers_total": len(officers),
        "officers_assigned": int(officers["code"].isin(links["officer_code"]).sum()),
        "unassigned_officers": _records(unassigned, ["code", "name"]),
        "unknown_unit_assignments": _records(unknown, ["officer_code", "unit_code"]),
        "by_town": by_town,
        "heaviest_units": [
            {
                "code": u.code,
                "name": u.name,
                "town": {"code": u.parent_code, "name": town_name[u.parent_code]},
                "officers": int(u.officers),
                "residents": int(u.population or 0),
                "residents_per_officer": round(float(u.residents_per_officer), 1),
            }
            for u in heaviest.head(10).itertuples()
        ],
        "dataset_version": reader.version,
    }


def _frame(reader: VersionReader, template: str) -> pd.DataFrame:
    """The rows of ``template`` at the reader's version, with its column names."""
    result = reader.execute(template)
    return pd.DataFrame(result.all(), columns=list(result.keys()))


def _records(frame: pd.DataFrame, columns: list[str]) -> list[dict[str, Any]]:
    return [dict(zip(columns, row, strict=True)) for row in frame[columns].itertuples(index=False)]
