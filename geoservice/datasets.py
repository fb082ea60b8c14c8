"""Dataset versions: publish in one transaction, list, roll back.

A publish takes, for each layer it changes, a function that writes that layer's rows
under a new snapshot id. Everything — the snapshot rows, the new version, the
pointer to it and the notification — commits together or not at all, so a loader
that fails or is killed leaves the previous version current and intact.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from geoservice import audit
from geoservice.audit import Actor
from geoservice.errors import InvalidInput, NoDataset, NotFound
from geoservice.models import (
    LAYERS,
    NOTIFY_CHANNEL,
    current_dataset,
    current_history,
    dataset_version,
    dataset_version_layer,
    snapshot,
)

LayerWriter = Callable[[Connection, int], int]
"""Writes one layer's rows under the given snapshot id; returns the number of features."""


@dataclass(frozen=True)
class Source:
    """A file a version was built from."""

    layer: str
    path: str
    sha256: str

    @classmethod
    def of_file(cls, layer: str, path: Path) -> Source:
        digest = hashlib.sha256()
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        return cls(layer=layer, path=str(path), sha256=digest.hexdigest())


@dataclass(frozen=True)
class DatasetVersion:
    id: int
    created_at: datetime
    created_by: str
    note: str
    status: str
    parent_id: int | None
    sources: list[dict[str, str]]
    layers: dict[str, int]
    current: bool


def current_version_id(conn: Connection) -> int | None:
    """The current dataset version, or None before the first publish."""
    return conn.execute(sa.select(current_dataset.c.version_id)).scalar_one_or_none()


NO_DATASET = "no dataset is published yet: load one (`geoservice demo` or the etl commands)"


def resolve_version(conn: Connection, version: int | None = None) -> int:
    """``version`` if it exists, else (None) the current one; ``NotFound``/``NoDataset`` if not."""
    if version is None:
        current = current_version_id(conn)
        if current is None:
            raise NoDataset(NO_DATASET)
        return current
    exists = conn.execute(
        sa.select(dataset_version.c.id).where(dataset_version.c.id == version)
    ).scalar_one_or_none()
    if exists is None:
        msg = f"dataset version {version} does not exist"
        raise NotFound(msg)
    return version


def current_snapshots(conn: Connection) -> dict[str, int]:
    """layer -> snapshot id of the current version."""
    version = current_version_id(conn)
    if version is None:
        return {}
    return layers_of(conn, version)


def layers_of(conn: Connection, version_id: int) -> dict[str, int]:
    """layer -> snapshot id of dataset version ``version_id``."""
    rows = conn.execute(
        sa.select(dataset_version_layer.c.layer, dataset_version_layer.c.snapshot_id).where(
            dataset_version_layer.c.version_id == version_id
        )
    )
    return {layer: snapshot_id for layer, snapshot_id in rows}


def publish(
    engine: Engine,
    writers: Mapping[str, LayerWriter],
    *,
    sources: list[Source],
    note: str = "",
    actor: Actor | None = None,
    draft: bool = False,
    detail: dict[str, Any] | None = None,
) -> int:
    """Write new snapshots of the given layers as one new version (on top of the current
    one) and make it current — or, as a ``draft``, leave it for ``promote``. Recorded in
    the audit log (with ``detail``), in the same transaction."""
    actor = actor or Actor.cli()
    unknown = sorted(set(writers) - set(LAYERS))
    if unknown:
        msg = f"unknown layer(s) {unknown}; expected one of {list(LAYERS)}"
        raise InvalidInput(msg)
    sources_by_layer = {source.layer: source for source in sources}
    with engine.begin() as conn:
        # Publishers queue here; readers are never blocked.
        conn.execute(sa.text("LOCK TABLE geoservice.current_dataset IN SHARE ROW EXCLUSIVE MODE"))
        parent = current_version_id(conn)
        layers = layers_of(conn, parent) if parent is not None else {}
        version_id = conn.execute(
            sa.insert(dataset_version)
            .values(
                created_by=actor.name,
                note=note,
                sources=[source.__dict__ for source in sources],
                parent_id=parent,
                status="draft" if draft else "published",
            )
            .returning(dataset_version.c.id)
        ).scalar_one()
        for layer, write in writers.items():
            source = sources_by_layer.get(layer)
            snapshot_id = conn.execute(
                sa.insert(snapshot)
                .values(
                    layer=layer,
                    feature_count=0,
                    source=source.path if source else "",
                    sha256=source.sha256 if source else "",
                )
                .returning(snapshot.c.id)
            ).scalar_one()
            count = write(conn, snapshot_id)
            conn.execute(
                sa.update(snapshot).where(snapshot.c.id == snapshot_id).values(feature_count=count)
            )
            layers[layer] = snapshot_id
        conn.execute(
            sa.insert(dataset_version_layer),
            [
                {"version_id": version_id, "layer": layer, "snapshot_id": snapshot_id}
                for layer, snapshot_id in layers.items()
            ],
        )
        if not draft:
            _make_current(conn, version_id)
        audit.record(
            conn,
            actor,
            "draft" if draft else "publish",
            version_id=version_id,
            detail={
                "layers": sorted(writers),
                "sources": [s.__dict__ for s in sources],
                **(detail or {}),
            },
            note=note,
        )
    return version_id


def promote(
    engine: Engine,
    version_id: int,
    *,
    actor: Actor | None = None,
    note: str = "",
    force: bool = False,
) -> None:
    """Make draft ``version_id`` current and published (one transaction, readers notified).

    A draft made on top of an older version than the current one would undo what was
    published since: that needs ``force``."""
    actor = actor or Actor.cli()
    with engine.begin() as conn:
        conn.execute(sa.text("LOCK TABLE geoservice.current_dataset IN SHARE ROW EXCLUSIVE MODE"))
        row = conn.execute(
            sa.select(dataset_version.c.status, dataset_version.c.parent_id).where(
                dataset_version.c.id == version_id
            )
        ).one_or_none()
        if row is None:
            msg = f"dataset version {version_id} does not exist"
            raise NotFound(msg)
        if row.status != "draft":
            msg = f"dataset version {version_id} is not a draft (it is {row.status})"
            raise InvalidInput(msg)
        current = current_version_id(conn)
        if row.parent_id != current and not force:
            msg = (
                f"draft {version_id} was made on version {row.parent_id}, but version "
                f"{current} is current: promoting it would undo what was published since. "
                "Make the draft again on the current version, or pass --force"
            )
            raise InvalidInput(msg)
        conn.execute(
            sa.update(dataset_version)
            .where(dataset_version.c.id == version_id)
            .values(status="published")
        )
        _make_current(conn, version_id)
        audit.record(
            conn, actor, "promote", version_id=version_id, detail={"from": current}, note=note
        )


def version_at(conn: Connection, when: datetime) -> int:
    """The version that was current at ``when`` (``NotFound`` before the first)."""
    version = conn.execute(
        sa.select(current_history.c.version_id)
        .where(current_history.c.since <= when)
        .order_by(current_history.c.since.desc(), current_history.c.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    if version is None:
        msg = f"no dataset version was current at {when.isoformat()}"
        raise NotFound(msg)
    return version


def rollback(
    engine: Engine, version_id: int, *, actor: Actor | None = None, note: str = ""
) -> None:
    """Make an earlier (or any published) version current again (an audit log entry each
    time)."""
    actor = actor or Actor.cli()
    with engine.begin() as conn:
        conn.execute(sa.text("LOCK TABLE geoservice.current_dataset IN SHARE ROW EXCLUSIVE MODE"))
        status = conn.execute(
            sa.select(dataset_version.c.status).where(dataset_version.c.id == version_id)
        ).scalar_one_or_none()
        if status is None:
            known = [v.id for v in list_versions(conn)]
            msg = f"dataset version {version_id} does not exist; published versions: {known}"
            raise NotFound(msg)
        if status == "draft":
            msg = f"dataset version {version_id} is a draft: `geoservice promote {version_id}`"
            raise InvalidInput(msg)
        previous = current_version_id(conn)
        _make_current(conn, version_id)
        audit.record(
            conn, actor, "rollback", version_id=version_id, detail={"from": previous}, note=note
        )


def _make_current(conn: Connection, version_id: int) -> None:
    conn.execute(sa.insert(current_history).values(version_id=version_id))
    conn.execute(
        sa.text(
            "INSERT INTO geoservice.current_dataset (singleton, version_id) VALUES (true, :v) "
            "ON CONFLICT (singleton) DO UPDATE "
            "SET version_id = EXCLUDED.version_id, made_current_at = now()"
        ),
        {"v": version_id},
    )
    conn.execute(sa.select(sa.func.pg_notify(NOTIFY_CHANNEL, str(version_id))))


def list_versions(conn: Connection) -> list[DatasetVersion]:
    """Every published version, oldest first."""
    current = current_version_id(conn)
    layer_rows = conn.execute(
        sa.select(
            dataset_version_layer.c.version_id,
            dataset_version_layer.c.layer,
            dataset_version_layer.c.snapshot_id,
        )
    ).all()
    layers: dict[int, dict[str, int]] = {}
    for version_id, layer, snapshot_id in layer_rows:
        layers.setdefault(version_id, {})[layer] = snapshot_id
    rows = conn.execute(sa.select(dataset_version).order_by(dataset_version.c.id)).mappings()
    return [
        DatasetVersion(
            id=row["id"],
            created_at=row["created_at"],
            created_by=row["created_by"],
            note=row["note"],
            status=row["status"],
            parent_id=row["parent_id"],
            sources=row["sources"],
            layers=layers.get(row["id"], {}),
            current=row["id"] == current,
        )
        for row in rows
    ]
