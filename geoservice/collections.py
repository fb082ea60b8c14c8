"""The dataset's layers as collections of features — for ``/v1/layers``, OGC API – Features
and vector tiles — read at any dataset version.

Each collection is one layer's rows at a version (a ``VersionReader`` placeholder), its
features keyed by a column with an index (``code``; a road edge's ``id``), so a page
of items is one index range scan (``key > the last key of the previous page``), never a
re-read of the layer. Officers are not a collection: their personal data stays out of
map answers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy.engine import Connection

from geoservice.errors import NotFound
from geoservice.models import BOUNDARY_LAYERS
from geoservice.store import VersionReader

BBox = tuple[float, float, float, float]


@dataclass(frozen=True)
class Collection:
    id: str
    title: str
    rows: str  # the VersionReader placeholder of its rows
    layer: str  # the snapshot layer
    key: str  # the unique, indexed key of a feature
    columns: tuple[str, ...]  # properties, SQL expressions named by ``AS`` where needed
    geometry_type: str
    where: str = ""  # extra SQL condition

    def select(self, extra: Sequence[str] = ()) -> str:
        """A ``VersionReader`` template's FROM clause of the collection's rows (``extra``
        conditions ANDed)."""
        conditions = [*extra, self.where] if self.where else list(extra)
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        return f"FROM {{{self.rows}}} t{where}"

    @property
    def property_names(self) -> list[str]:
        return [column.split(" AS ")[-1] for column in self.columns]


BOUNDARY_COLUMNS = ("code", "name", "parent_code", "kind", "population")
BOUNDARY_TITLES = {
    "district": "District",
    "town": "Towns and streets",
    "unit": "Police units (villages, communities, scenic areas)",
    "large_grid": "Large grids",
    "grid": "Base grids",
}
COLLECTIONS: dict[str, Collection] = {
    **{
        layer: Collection(
            id=layer,
            title=BOUNDARY_TITLES[layer],
            rows=layer,
            layer=layer,
            key="code",
            columns=BOUNDARY_COLUMNS,
            geometry_type="MultiPolygon",
        )
        for layer in BOUNDARY_LAYERS
    },
    "station": Collection(
        id="station",
        title="Police stations and unit posts",
        rows="station",
        layer="stations",
        key="code",
        columns=("code", "name", "area_code AS parent_code", "kind"),
        geometry_type="Point",
    ),
    "patrol_segment": Collection(
        id="patrol_segment",
        title="First-class patrol segments",
        rows="patrol_segment",
        layer="patrols",
        key="code",
        columns=("code", "name", "NULL::text AS parent_code", "level", "team", "team_size"),
        geometry_type="LineString",
    ),
    "road": Collection(
        id="road",
        title="Road network (directed edges, pgRouting's convention)",
        rows="road_edge",
        layer="roads",
        key="id",
        columns=("id", "name", "highway", "oneway", "maxspeed_kmh", "length_m"),
        geometry_type="LineString",
    ),
}
LAYERS = [c for c in COLLECTIONS if c != "road"]
"""What ``/v1/layers/{layer}`` serves (whole layers; the road network is too big)."""


def collection(
    name: str, choices: Sequence[str] | None = None, noun: str = "collection"
) -> Collection:
    """The collection ``name`` (404 naming the ones there are)."""
    allowed = list(choices if choices is not None else COLLECTIONS)
    if name not in allowed:
        msg = f"no {noun} {name!r}; expected one of {', '.join(allowed)}"
        raise NotFound(msg)
    return COLLECTIONS[name]


@dataclass(frozen=True)
class Page:
    features: list[dict[str, Any]]
    next_key: str | None  # the key to continue after, when there are more


def read_page(
    conn: Connection,
    source: Collection,
    version: int,
    *,
    bbox: BBox | None = None,
    after: str | None = None,
    limit: int | None = None,
    search: str | None = None,
    codes: Sequence[str] | None = None,
    decimals: int = 8,
) -> Page:
    """GeoJSON features of one collection at ``version``, in key order: those after
    ``after`` (keyset paging), at most ``limit``, within ``bbox``, whose code or name
    contains ``search``, or whose key is one of ``codes``; coordinates with ``decimals``
    (8: about 1 mm; 15, the most PostGIS writes, gives the stored doubles back exactly)."""
    extra: list[str] = []
    params: dict[str, object] = {}
    if bbox is not None:
        extra.append("t.geom && ST_MakeEnvelope(:minx, :miny, :maxx, :maxy, 4326)")
        params.update(zip(("minx", "miny", "maxx", "maxy"), bbox, strict=True))
    key = f"t.{source.key}"
    if after is not None:
        extra.append(f"{key} > :after")
        params["after"] = int(after) if source.key == "id" else after
    if search:
        extra.append(
            "(t.name ILIKE :search OR t.code ILIKE :search)"
            if source.key == "code"
            else "t.name ILIKE :search"
        )
        params["search"] = f"%{_escape_like(search)}%"
    if codes is not None:
        extra.append(f"{key}::text = ANY(:codes)")
        params["codes"] = list(codes)
    columns = ", ".join(c if " AS " in c else f"t.{c}" for c in source.columns)
    geometry = f"ST_AsGeoJSON(t.geom, {int(decimals)})"
    sql = f"SELECT {columns}, {geometry} {source.select(extra)} ORDER BY {key}"
    if limit is not None:
        sql += f" LIMIT {int(limit) + 1}"
    rows = VersionReader(conn, version).all(sql, **params)
    more = limit is not None and len(rows) > limit
    rows = rows[:limit] if limit is not None else rows
    names = source.property_names
    features = [
        {
            "type": "Feature",
            "id": str(row[0]),
            "geometry": orjson.Fragment(row[-1]),
            "properties": dict(zip(names, row[:-1], strict=True)),
        }
        for row in rows
    ]
    return Page(features, str(rows[-1][0]) if more and rows else None)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def extent(conn: Connection, source: Collection, version: int) -> list[float] | None:
    """The collection's bounding box at ``version`` (CRS84), or None when empty."""
    row = (
        VersionReader(conn, version)
        .execute(
            "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
            f"(SELECT ST_Extent(t.geom) AS e {source.select()}) q"
        )
        .one()
    )
    return None if row[0] is None else [round(float(v), 7) for v in row]
