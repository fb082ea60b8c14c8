"""The proposal: grids as proposed per large grid, its report, its GeoJSON, and the
bundle folder that loads it as a draft."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
from shapely.geometry import MultiPolygon, mapping
from sqlalchemy.engine import Connection

from geoservice.coverage import Weight
from geoservice.diff import features_at
from geoservice.errors import InvalidInput
from geoservice.export import BASE_KEY, creation_options
from geoservice.grid_design.scope import Band, read_grids
from geoservice.store import VersionReader


@dataclass(frozen=True)
class Grid:
    """A base grid, as stored or as proposed; ``size`` in the band's measure."""

    code: str
    name: str
    parent_code: str
    geometry: MultiPolygon
    size: int
    population: int | None
    """The grid's ``population`` attribute: as stored for a grid left as it was, else the
    residents of the places inside it."""


@dataclass(frozen=True)
class Outside:
    """A proposed grid outside the band, and why."""

    code: str
    size: int
    reason: str


@dataclass(frozen=True)
class LargeGridPlan:
    """One large grid's grids before and after, the codes kept and the grids outside the
    band."""

    code: str
    before: list[Grid]
    after: list[Grid]
    kept: list[str]
    outside: list[Outside]

    def to_json(self) -> dict[str, Any]:
        return {
            "large_grid": self.code,
            "grids_before": len(self.before),
            "grids_after": len(self.after),
            "kept": len(self.kept),
            "sizes_before": _sizes([g.size for g in self.before]),
            "sizes_after": _sizes([g.size for g in self.after]),
            "outside_band": [o.__dict__ for o in self.outside],
        }


@dataclass(frozen=True)
class Proposal:
    """The proposal for the large grids in scope at ``version``."""

    version: int
    band: Band
    keep_fitting: bool
    weight: Weight | None
    plans: list[LargeGridPlan]
    grids: list[Grid]
    """The grids of the large grids in scope as proposed (``write_bundle`` adds the others,
    as stored)."""

    def geojson(self) -> dict[str, Any]:
        """The proposed grids of the large grids in scope, as a FeatureCollection (WGS84)."""
        kept = {code for p in self.plans for code in p.kept}
        return {
            "type": "FeatureCollection",
            "features": [
                {
                    "type": "Feature",
                    "id": g.code,
                    "geometry": mapping(g.geometry),
                    "properties": {
                        "code": g.code,
                        "name": g.name,
                        "parent_code": g.parent_code,
                        self.band.measure: g.size,
                        "kept": g.code in kept,
                        "in_band": self.band.low <= g.size <= self.band.high,
                    },
                }
                for g in self.grids
            ],
            "dataset_version": self.version,
        }

    def report(self) -> dict[str, Any]:
        """Counts and sizes before and after, overall and per large grid (``report.json``)."""
        after = [g for p in self.plans for g in p.after]
        return {
            "dataset_version": self.version,
            "band": {"measure": self.band.measure, "low": self.band.low, "high": self.band.high},
            "keep_fitting": self.keep_fitting,
            "weight": self.weight,
            "large_grids": len(self.plans),
            "grids_before": sum(len(p.before) for p in self.plans),
            "grids_after": len(after),
            "kept": sum(len(p.kept) for p in self.plans),
            "in_band": sum(self.band.low <= g.size <= self.band.high for g in after),
            "sizes_after": _sizes([g.size for g in after]),
            "per_large_grid": [p.to_json() for p in self.plans],
        }


def _sizes(values: Sequence[int]) -> dict[str, float | None]:
    """The smallest, median and largest of ``values`` (None for each when empty)."""
    if not values:
        return {"min": None, "median": None, "max": None}
    return {
        "min": int(min(values)),
        "median": float(np.median(values)),
        "max": int(max(values)),
    }


BUNDLE_FILES = ("grid.gpkg", "population.gpkg", "report.json")


def write_bundle(conn: Connection, proposal: Proposal, out: Path) -> None:
    """``out`` as a bundle folder: ``grid.gpkg`` (the whole grid layer as proposed, made
    from ``proposal.version``: its ``base_version``), ``population.gpkg`` (the places it
    sized grids by) and ``report.json``. Files of an earlier proposal are replaced; a
    folder holding anything else is refused."""
    if out.exists() and not out.is_dir():
        msg = f"--out {out}: not a folder"
        raise InvalidInput(msg)
    others = (
        sorted(p.name for p in out.iterdir() if p.name not in BUNDLE_FILES) if out.exists() else []
    )
    if others:
        msg = f"--out {out} holds {', '.join(others[:5])}: choose an empty folder"
        raise InvalidInput(msg)
    out.mkdir(parents=True, exist_ok=True)
    metadata = {BASE_KEY: str(proposal.version), "made_by": "geoservice grids propose"}
    rest = [
        Grid(code, name, parent, geom, 0, population)
        for code, name, parent, population, geom in read_grids(
            VersionReader(conn, proposal.version), [p.code for p in proposal.plans], outside=True
        )
    ]  # the grids of every other large grid, as stored
    layer = sorted([*rest, *proposal.grids], key=lambda g: g.code)
    grids = gpd.GeoDataFrame(
        {
            "code": [g.code for g in layer],
            "name": [g.name for g in layer],
            "parent_code": [g.parent_code for g in layer],
            "population": pd.array([g.population for g in layer], dtype="Int64"),
        },
        geometry=[g.geometry for g in layer],
        crs="EPSG:4326",
    )
    for name in BUNDLE_FILES:
        (out / name).unlink(missing_ok=True)
    pyogrio.write_dataframe(
        grids,
        out / "grid.gpkg",
        layer="grid",
        driver="GPKG",
        promote_to_multi=True,
        **creation_options(metadata),
    )
    people = features_at(conn, "population", proposal.version)
    pyogrio.write_dataframe(
        people, out / "population.gpkg", layer="population", driver="GPKG",
        **creation_options(metadata),
    )  # fmt: skip
    (out / "report.json").write_text(
        json.dumps(proposal.report(), ensure_ascii=False, indent=2), encoding="utf-8"
    )
