"""What a proposal covers: the band grids are sized for, the scope of large grids, and
the scope's rows read at one version — grids, places, events and roads meeting its large
grids, never the whole layer."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import shapely
from shapely.geometry import MultiPolygon
from shapely.geometry.base import BaseGeometry

from geoservice.errors import InvalidInput
from geoservice.store import VersionReader

Measure = Literal["households", "residents"]
ROAD_CLASSES = (
    "motorway",
    "trunk",
    "primary",
    "secondary",
    "tertiary",
    "unclassified",
    "residential",
)
"""Roads that cut blocks and that a boundary may follow (every class a car uses from
residential up; service ways, footways and paths do not cut)."""


@dataclass(frozen=True)
class Band:
    measure: Measure
    low: int
    high: int

    @classmethod
    def parse(cls, measure: Measure, text: str) -> Band:
        """``300-500`` as a band of ``measure``."""
        match = re.fullmatch(r"\s*(\d+)\s*-\s*(\d+)\s*", text)
        if not match or int(match[1]) < 1 or int(match[1]) > int(match[2]):
            msg = f"--{measure} {text!r}: expected LOW-HIGH, whole numbers, 1 <= LOW <= HIGH"
            raise InvalidInput(msg)
        return cls(measure, int(match[1]), int(match[2]))

    def __str__(self) -> str:
        return f"{self.low}-{self.high} {self.measure}"


@dataclass(frozen=True)
class Scope:
    large_grids: tuple[str, ...] = ()
    units: tuple[str, ...] = ()
    towns: tuple[str, ...] = ()
    all: bool = False


def large_grids_in(reader: VersionReader, scope: Scope) -> list[str]:
    """The large grids a scope names (404-free: unknown codes are an ``InvalidInput``)."""
    given = [bool(scope.large_grids), bool(scope.units), bool(scope.towns), scope.all]
    if sum(given) != 1:
        msg = "name exactly one scope: --large-grid, --unit, --town or --all"
        raise InvalidInput(msg)
    rows = reader.all(
        "SELECT l.code, l.parent_code AS unit, u.parent_code AS town "
        "FROM {large_grid} l JOIN {unit} u ON u.code = l.parent_code ORDER BY l.code"
    )
    if scope.all:
        return [r.code for r in rows]
    for noun, codes, known in (
        ("large grid", scope.large_grids, {r.code for r in rows}),
        ("unit", scope.units, {r.unit for r in rows}),
        ("town", scope.towns, {r.town for r in rows}),
    ):
        unknown = sorted(set(codes) - known)
        if unknown:
            msg = f"no {noun} {', '.join(unknown)} in dataset version {reader.version}"
            raise InvalidInput(msg)
    return [
        r.code
        for r in rows
        if r.code in scope.large_grids or r.unit in scope.units or r.town in scope.towns
    ]


SCOPE = "(SELECT geom FROM {large_grid} s WHERE code = ANY(:scope)) l"
"""The large grids in scope, to join rows whose ``geom`` meets one (GiST index scans)."""


def read_grids(
    reader: VersionReader, parents: Sequence[str], *, outside: bool = False
) -> list[tuple[str, str, str, int | None, MultiPolygon]]:
    """The grids of the large grids ``parents`` (``outside``: of every other one) in code
    order: code, name, parent code, population, geometry."""
    rows = reader.all(
        "SELECT code, name, parent_code, population, ST_AsBinary(geom) AS wkb FROM {grid} g "
        f"WHERE {'NOT ' if outside else ''}parent_code = ANY(:scope) ORDER BY code",
        scope=list(parents),
    )
    return [
        (r.code, r.name, r.parent_code, r.population, shapely.from_wkb(bytes(r.wkb))) for r in rows
    ]


def read_places(
    reader: VersionReader, parents: Sequence[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The places of the population layer meeting the large grids ``parents``: their
    points (a point on each surface, lon/lat), residents and households."""
    rows = reader.all(
        "SELECT ST_X(p), ST_Y(p), residents, households FROM ("
        "SELECT DISTINCT ON (x.code) ST_PointOnSurface(x.geom) AS p, x.residents, "
        f"x.households FROM {SCOPE} JOIN {{population}} x ON ST_Intersects(l.geom, x.geom)) q",
        scope=list(parents),
    )
    table = np.array(rows, dtype=float).reshape(-1, 4)
    return table[:, :2], table[:, 2].astype(np.int64), table[:, 3].astype(np.int64)


def has_population(reader: VersionReader) -> bool:
    """Does the version have a population layer with any place?"""
    return bool(reader.scalar("SELECT EXISTS (SELECT 1 FROM {population} x)"))


def read_events(reader: VersionReader, parents: Sequence[str]) -> np.ndarray:
    """The grid events (the register holds every version's) inside the large grids
    ``parents``, lon/lat."""
    rows = reader.all(
        "SELECT DISTINCT ON (x.id) ST_X(x.geom), ST_Y(x.geom) "
        f"FROM {SCOPE} JOIN geoservice.event x ON ST_Intersects(l.geom, x.geom)",
        scope=list(parents),
    )
    return np.array(rows, dtype=float).reshape(-1, 2)


def read_road_lines(reader: VersionReader, parents: Sequence[str]) -> list[BaseGeometry]:
    """The roads of ``ROAD_CLASSES`` meeting the large grids ``parents`` (WGS84 lines)."""
    rows = reader.execute(
        "SELECT DISTINCT ON (x.id) ST_AsBinary(x.geom) "
        f"FROM {SCOPE} JOIN {{road_edge}} x ON ST_Intersects(l.geom, x.geom) "
        "WHERE x.highway = ANY(:classes)",
        classes=list(ROAD_CLASSES),
        scope=list(parents),
    ).scalars()
    return list(shapely.from_wkb([bytes(w) for w in rows]))
