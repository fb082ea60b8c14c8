"""Drafts edited feature by feature: what OGC API – Features Part 4 does to a draft.

``open_draft`` makes a draft version holding the current version's layers. Each edit of
a boundary feature (create, replace, update, delete) is one transaction on the writer's
login: lock the draft's row for the layer, compare ``If-Match`` with the feature's ETag,
check the edited feature against the draft, write a new snapshot of the layer (the other
features copied in SQL, the edited one written) and repoint the draft at it, and record
the edit in the audit log. Feature tables stay append-only, and a trigger refuses to
repoint any version that is not a draft (migration 0007).

Checked at once, against the draft: the parent code names a feature of the layer above;
the feature lies inside that parent and overlaps none of its layer (pieces larger than
``AREA_TOLERANCE_M2`` and wider than the tolerance); a deleted feature is named by no
child. Gaps are not refused here: every move of a shared edge passes through a gap or an
overlap, and edits pass through gaps — shrink a feature first, then grow its neighbour.
``geoservice promote`` checks the whole draft with the bundle's rules (gaps, children
inside their parents, codes still named) before it becomes current.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import shapely
import sqlalchemy as sa
from shapely.geometry import MultiPolygon
from sqlalchemy.engine import Connection, Engine

from geoservice import audit, datasets
from geoservice.audit import Actor
from geoservice.crs import AREA_TOLERANCE_M2, DEFAULT_TOLERANCE_M, METRIC_EPSG
from geoservice.errors import Conflict, InvalidInput, NotFound, PreconditionFailed
from geoservice.models import BOUNDARY_LAYERS, dataset_version, dataset_version_layer
from geoservice.store import VersionReader

EDITABLE = BOUNDARY_LAYERS
"""The collections a draft's OGC API edits: the boundary layers."""
NOUNS = {
    "district": "district",
    "town": "town",
    "unit": "police unit",
    "large_grid": "large grid",
    "grid": "grid",
}


@dataclass(frozen=True)
class BoundaryFeature:
    """One boundary feature as an edit writes it (parsed and checked at the edge)."""

    code: str
    name: str
    parent_code: str | None
    kind: str | None
    population: int | None
    geometry: MultiPolygon


Change = Callable[[BoundaryFeature | None], BoundaryFeature | None]
"""What an edit does to the stored feature (None: there is none / delete it)."""


def open_draft(engine: Engine, *, actor: Actor, note: str = "") -> int:
    """A new draft holding the current version's layers; its id."""
    return datasets.publish(
        engine, {}, sources=[], note=note or "opened for editing", actor=actor, draft=True
    )


def require_draft(conn: Connection, version: int) -> None:
    """``NotFound`` for an unknown version, ``Conflict`` for one that is not a draft."""
    status = conn.execute(
        sa.select(dataset_version.c.status).where(dataset_version.c.id == version)
    ).scalar_one_or_none()
    if status is None:
        msg = f"there is no draft {version}: open one with POST /v1/datasets/drafts"
        raise NotFound(msg)
    if status != "draft":
        msg = (
            f"dataset version {version} is {status}, not a draft: its features are as "
            "published; open a draft with POST /v1/datasets/drafts"
        )
        raise Conflict(msg)


def etag(row: Any) -> str:
    """A feature's ETag: a digest of its attributes and its geometry's WKB."""
    digest = hashlib.sha256()
    for value in (row.code, row.name, row.parent_code, row.kind, row.population):
        digest.update(repr(value).encode())
    digest.update(bytes(row.wkb))
    return f'"{digest.hexdigest()[:32]}"'


def feature_etag(conn: Connection, version: int, layer: str, code: str) -> str | None:
    """The ETag of ``code`` in the draft's ``layer`` (None when there is no such feature)."""
    row = (
        VersionReader(conn, version)
        .execute(_FEATURE_COLUMNS + f"FROM {{{layer}}} b WHERE code = :code", code=code)
        .one_or_none()
    )
    return None if row is None else etag(row)


_FEATURE_COLUMNS = "SELECT code, name, parent_code, kind, population, ST_AsBinary(geom) AS wkb "
_FEATURE_SQL = _FEATURE_COLUMNS + "FROM geoservice.boundary WHERE snapshot_id = :s AND code = :code"


def edit(
    engine: Engine,
    version: int,
    layer: str,
    code: str,
    change: Change,
    *,
    action: str,
    actor: Actor,
    if_match: str | None = None,
    tolerance_m: float = DEFAULT_TOLERANCE_M,
) -> str | None:
    """Apply ``change`` to feature ``code`` of the draft's ``layer``; the new ETag (None
    after a delete). Raises ``NotFound``, ``Conflict`` (not a draft), ``PreconditionFailed``
    (``if_match`` is not the feature's ETag) or ``InvalidInput`` naming the problem; then
    nothing changed."""
    if layer not in EDITABLE:
        msg = f"collection {layer!r} is read-only in a draft; editable: {', '.join(EDITABLE)}"
        raise InvalidInput(msg)
    with engine.begin() as conn:
        require_draft(conn, version)
        old_snapshot = conn.execute(
            sa.select(dataset_version_layer.c.snapshot_id)
            .where(
                dataset_version_layer.c.version_id == version,
                dataset_version_layer.c.layer == layer,
            )
            .with_for_update()
        ).scalar_one_or_none()
        stored = (
            None
            if old_snapshot is None
            else conn.execute(
                sa.text(_FEATURE_SQL),
                {"s": old_snapshot, "code": code},
            ).one_or_none()
        )
        if if_match is not None and if_match.strip() != "*":
            now = etag(stored) if stored is not None else None
            if now not in {tag.strip() for tag in if_match.split(",")}:
                msg = (
                    f"{NOUNS[layer]} {code} of draft {version} is not the one you read "
                    f"(If-Match {if_match}, now {now or 'deleted'}): read it again"
                )
                raise PreconditionFailed(msg)
        before = None if stored is None else _feature(stored)
        after = change(before)
        if after is not None:
            _check(conn, version, layer, after, old_snapshot, tolerance_m)
        elif before is not None:
            _check_unnamed(conn, version, layer, code)
        new_snapshot = _write(conn, version, layer, code, after, old_snapshot)
        audit.record(
            conn,
            actor,
            "edit",
            version_id=version,
            detail={"layer": layer, "code": code, "action": action, "snapshot": new_snapshot},
        )
        if after is None:
            return None
        row = conn.execute(
            sa.text(_FEATURE_SQL),
            {"s": new_snapshot, "code": after.code},
        ).one()
        return etag(row)


def _feature(row: Any) -> BoundaryFeature:
    return BoundaryFeature(
        code=row.code,
        name=row.name,
        parent_code=row.parent_code,
        kind=row.kind,
        population=row.population,
        geometry=shapely.from_wkb(bytes(row.wkb)),
    )


def _parent_layer(layer: str) -> str | None:
    index = BOUNDARY_LAYERS.index(layer)
    return BOUNDARY_LAYERS[index - 1] if index else None


def _child_layer(layer: str) -> str | None:
    index = BOUNDARY_LAYERS.index(layer)
    return BOUNDARY_LAYERS[index + 1] if index + 1 < len(BOUNDARY_LAYERS) else None


def _metric(expression: str) -> str:
    return f"ST_Transform({expression}, {METRIC_EPSG})"


def _check(
    conn: Connection,
    version: int,
    layer: str,
    feature: BoundaryFeature,
    snapshot_id: int | None,
    tolerance_m: float,
) -> None:
    noun = NOUNS[layer]
    wkb = shapely.to_wkb(feature.geometry)
    # a piece counts when larger than the area tolerance and wider than the tolerance
    counts = (
        f"ST_Area({_metric('{piece}')}) > :area "
        f"AND NOT ST_IsEmpty(ST_Buffer({_metric('{piece}')}, -:half))"
    )
    params = {"g": wkb, "area": AREA_TOLERANCE_M2, "half": tolerance_m / 2}
    parent_layer = _parent_layer(layer)
    if parent_layer is not None:
        if feature.parent_code is None:
            msg = f"{noun} {feature.code}: parent_code is missing: name its {NOUNS[parent_layer]}"
            raise InvalidInput(msg)
        outside = (
            VersionReader(conn, version)
            .execute(
                "SELECT ST_Area("
                + _metric("d")
                + ") AS area, "
                + counts.format(piece="d")
                + " AS counts FROM (SELECT ST_Difference(ST_GeomFromWKB(:g, 4326), p.geom) AS d "
                f"FROM {{{parent_layer}}} p WHERE p.code = :parent) q",
                **params,
                parent=feature.parent_code,
            )
            .one_or_none()
        )
        if outside is None:
            msg = (
                f"{noun} {feature.code}: parent_code {feature.parent_code!r} is not a "
                f"{NOUNS[parent_layer]} of draft {version}"
            )
            raise InvalidInput(msg)
        if outside.counts:
            msg = (
                f"{noun} {feature.code} extends {outside.area:,.1f} m² outside its "
                f"{NOUNS[parent_layer]} {feature.parent_code}"
            )
            raise InvalidInput(msg)
    if snapshot_id is None:
        return
    overlaps = conn.execute(
        sa.text(
            "SELECT code, ST_Area("
            + _metric("piece")
            + ") AS area FROM (SELECT b.code, ST_Intersection(b.geom, g.geom) AS piece "
            "FROM geoservice.boundary b, (SELECT ST_GeomFromWKB(:g, 4326) AS geom) g "
            "WHERE b.snapshot_id = :s AND b.code <> :code AND b.geom && g.geom "
            "AND ST_Intersects(b.geom, g.geom)) q WHERE "
            + counts.format(piece="piece")
            + " ORDER BY code"
        ),
        {**params, "s": snapshot_id, "code": feature.code},
    ).all()
    if overlaps:
        named = ", ".join(f"{row.code} by {row.area:,.1f} m²" for row in overlaps[:8])
        more = f" and {len(overlaps) - 8} more" if len(overlaps) > 8 else ""
        msg = f"{noun} {feature.code} overlaps {noun} {named}{more}"
        raise InvalidInput(msg)


def _check_unnamed(conn: Connection, version: int, layer: str, code: str) -> None:
    child_layer = _child_layer(layer)
    if child_layer is None:
        return
    children = (
        VersionReader(conn, version)
        .execute(
            f"SELECT code FROM {{{child_layer}}} c WHERE parent_code = :code ORDER BY code LIMIT 9",
            code=code,
        )
        .scalars()
        .all()
    )
    if children:
        named = ", ".join(children[:8]) + (" …" if len(children) > 8 else "")
        msg = (
            f"{NOUNS[layer]} {code} cannot be deleted: {NOUNS[child_layer]} {named} still "
            "name it as their parent; give them another parent first"
        )
        raise InvalidInput(msg)


def _write(
    conn: Connection,
    version: int,
    layer: str,
    code: str,
    feature: BoundaryFeature | None,
    old_snapshot: int | None,
) -> int:
    """A new snapshot of ``layer``: the old one without ``code``, plus ``feature``; the
    draft repointed at it. Its id."""
    new_snapshot = conn.execute(
        sa.text(
            "INSERT INTO geoservice.snapshot (layer, feature_count, source, sha256) "
            "VALUES (:layer, 0, :source, '') RETURNING id"
        ),
        {"layer": layer, "source": f"ogc:/ogc/drafts/{version}"},
    ).scalar_one()
    count = 0
    if old_snapshot is not None:
        count = conn.execute(
            sa.text(
                "INSERT INTO geoservice.boundary "
                "(snapshot_id, code, name, parent_code, kind, population, geom) "
                "SELECT :new, code, name, parent_code, kind, population, geom "
                "FROM geoservice.boundary WHERE snapshot_id = :old AND code <> :code"
            ),
            {"new": new_snapshot, "old": old_snapshot, "code": code},
        ).rowcount
    if feature is not None:
        conn.execute(
            sa.text(
                "INSERT INTO geoservice.boundary "
                "(snapshot_id, code, name, parent_code, kind, population, geom) VALUES "
                "(:s, :code, :name, :parent, :kind, :population, ST_GeomFromWKB(:g, 4326))"
            ),
            {
                "s": new_snapshot,
                "code": feature.code,
                "name": feature.name,
                "parent": feature.parent_code,
                "kind": feature.kind,
                "population": feature.population,
                "g": shapely.to_wkb(feature.geometry),
            },
        )
        count += 1
    conn.execute(
        sa.text("UPDATE geoservice.snapshot SET feature_count = :n WHERE id = :s"),
        {"n": count, "s": new_snapshot},
    )
    if old_snapshot is None:
        conn.execute(
            sa.insert(dataset_version_layer).values(
                version_id=version, layer=layer, snapshot_id=new_snapshot
            )
        )
    else:
        conn.execute(
            sa.update(dataset_version_layer)
            .where(
                dataset_version_layer.c.version_id == version,
                dataset_version_layer.c.layer == layer,
            )
            .values(snapshot_id=new_snapshot)
        )
    return new_snapshot
