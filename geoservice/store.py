"""One dataset version's layers: the only module that knows how a version maps to its
snapshots (``geoservice.snapshot_of``) and which table holds which layer.

Everything else reads a version through a :class:`VersionReader`. Its SQL names the rows
of a layer at that version by placeholder — ``{grid}``, ``{large_grid}``, ``{unit}``,
``{town}``, ``{district}``, ``{station}``, ``{officer}``, ``{officer_unit}``,
``{patrol_segment}``, ``{population}``, ``{road_node}``, ``{road_edge}`` — and never a
snapshot id::

    with VersionReader.open(engine, version) as reader:
        rows = reader.all("SELECT g.code, u.name FROM {grid} g "
                          "JOIN {large_grid} lg ON lg.code = g.parent_code "
                          "JOIN {unit} u ON u.code = lg.parent_code")

Each placeholder becomes a subquery of one table filtered to the layer's snapshot of the
reader's version; PostgreSQL pulls such subqueries up, so the plan is the one a join on
``snapshot_id`` would get (the snapshot indexes are used). Literal braces in a template are
doubled, as in ``str.format``. ``open`` reads in one
REPEATABLE READ transaction, so every query of one reader sees one state of the database.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, Result, Row

from geoservice.datasets import layers_of, resolve_version
from geoservice.models import BOUNDARY_LAYERS

SOURCES: Final[dict[str, tuple[str, str]]] = {
    **{layer: ("boundary", layer) for layer in BOUNDARY_LAYERS},
    "station": ("station", "stations"),
    "officer": ("officer", "officers"),
    "officer_unit": ("officer_unit", "officers"),
    "patrol_segment": ("patrol_segment", "patrols"),
    "population": ("population", "population"),
    "road_node": ("road_node", "roads"),
    "road_edge": ("road_edge", "roads"),
}
"""Each placeholder's table and the snapshot layer its rows belong to."""
COLUMNS: Final[dict[str, str]] = {"officer": "snapshot_id, code, name, rank, station_code"}
"""A placeholder's columns where not all: officers without ``phone``, personal data the
API's login may not read (a ``*`` would name it, and be refused)."""


def layer_rows(name: str) -> str:
    """The placeholder ``name``'s rows at the version bound as ``:v`` (a FROM item)."""
    table, layer = SOURCES[name]
    return (
        f"(SELECT {COLUMNS.get(name, '*')} FROM geoservice.{table} "
        f"WHERE snapshot_id = geoservice.snapshot_of(:v, '{layer}'))"
    )


class _FromItems(dict[str, str]):
    """Placeholder -> FROM item; an unknown placeholder is a ``ValueError`` naming it."""

    def __missing__(self, name: str) -> str:
        known = ", ".join(f"{{{known}}}" for known in self)
        msg = f"store template names an unknown placeholder {{{name}}}; the known ones: {known}"
        raise ValueError(msg)


_FROM_ITEMS: Final = _FromItems({name: layer_rows(name) for name in SOURCES})


@dataclass(frozen=True)
class VersionReader:
    """Reads one dataset version's layers through one connection."""

    connection: Connection
    version: int

    @classmethod
    @contextmanager
    def open(cls, engine: Engine, version: int | None = None) -> Iterator[VersionReader]:
        """A reader of ``version`` (default: the current one) in one REPEATABLE READ
        transaction; ``NotFound``/``NoDataset`` when there is no such version."""
        with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn:
            yield cls(conn, resolve_version(conn, version))

    @staticmethod
    def sql(template: str) -> str:
        """``template`` with its layer placeholders filled in; ``ValueError`` naming an
        unknown placeholder and the known ones."""
        return template.format_map(_FROM_ITEMS)

    def execute(self, template: str, **params: Any) -> Result[Any]:
        """Runs ``template`` (layer placeholders, ``:name`` parameters) at this version."""
        return self.connection.execute(sa.text(self.sql(template)), {"v": self.version, **params})

    def all(self, template: str, **params: Any) -> Sequence[Row[Any]]:
        return self.execute(template, **params).all()

    def scalar(self, template: str, **params: Any) -> Any:
        return self.execute(template, **params).scalar()

    def snapshot_id(self, layer: str) -> int | None:
        """The snapshot of ``layer`` (``roads``, ``grid``, ``officers``, …) this version uses."""
        return self.connection.execute(
            sa.text("SELECT geoservice.snapshot_of(:v, :layer)"),
            {"v": self.version, "layer": layer},
        ).scalar()

    def snapshots(self) -> dict[str, int]:
        """Layer -> snapshot id, for every layer this version has."""
        return layers_of(self.connection, self.version)

    def earlier_snapshots(self, layer: str) -> list[tuple[int, int]]:
        """(version, snapshot id) of ``layer`` in the published versions before this one,
        newest first."""
        rows = self.connection.execute(
            sa.text(
                "SELECT l.version_id, l.snapshot_id FROM geoservice.dataset_version_layer l "
                "JOIN geoservice.dataset_version d ON d.id = l.version_id "
                "WHERE l.layer = :layer AND l.version_id < :v AND d.status <> 'draft' "
                "ORDER BY l.version_id DESC"
            ),
            {"layer": layer, "v": self.version},
        ).all()
        return [(int(version), int(snapshot)) for version, snapshot in rows]

    def names(self, placeholder: str) -> dict[str, str]:
        """Code → name of a boundary level's (or stations', patrol segments') features."""
        rows = self.all(f"SELECT code, name FROM {{{placeholder}}} t")
        return {row.code: row.name for row in rows}

    def stations(self, kind: str | None = None) -> Sequence[Row[Any]]:
        """Stations and unit posts in code order: kind, code, name, area_code, lon, lat."""
        where = "" if kind is None else " WHERE kind = :kind"
        return self.all(
            "SELECT kind, code, name, area_code, ST_X(geom) AS lon, ST_Y(geom) AS lat "
            f"FROM {{station}} s{where} ORDER BY code",
            kind=kind,
        )

    def patrol_segments(self) -> Sequence[Row[Any]]:
        """Patrol segments in code order: code, name, team_size and the line as WKB."""
        return self.all(
            "SELECT code, name, team_size, ST_AsBinary(geom) AS wkb "
            "FROM {patrol_segment} p ORDER BY code"
        )
