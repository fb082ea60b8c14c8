"""A validated layer ready to publish, its diff against the current version, and publishing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd
import shapely
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from etl.report import Report

if TYPE_CHECKING:
    from etl.context import Context
from geoservice import datasets
from geoservice.audit import Actor
from geoservice.datasets import LayerWriter, Source
from geoservice.missing import none_if_missing


@dataclass
class LayerLoad:
    """One input, validated: publish ``write`` under a new snapshot of ``layer``."""

    layer: str
    source: Source
    report: Report
    frame: pd.DataFrame
    write: LayerWriter
    summary: str
    diff: Callable[[], list[str]]
    unchanged: bool = False
    """Equal to the current version (within the tolerance): nothing to publish."""


@dataclass(frozen=True)
class Step:
    """One part of a load: which layer it makes, and how (against the bundle's context)."""

    layer: str
    description: str
    prepare: Callable[[Context], LayerLoad]


def insert_features(
    conn: sa.Connection,
    table: str,
    snapshot_id: int,
    frame: pd.DataFrame,
    columns: tuple[str, ...],
    *,
    multi: bool = False,
) -> int:
    """Insert ``frame``'s ``columns`` and geometry (SRID 4326) into ``geoservice.<table>``."""
    geom = "ST_GeomFromWKB(:wkb, 4326)"
    values = ", ".join(f":{c}" for c in columns)
    conn.execute(
        sa.text(
            f"INSERT INTO geoservice.{table} (snapshot_id, {', '.join(columns)}, geom) "
            f"VALUES (:snapshot_id, {values}, {f'ST_Multi({geom})' if multi else geom})"
        ),
        [
            {
                "snapshot_id": snapshot_id,
                **{c: none_if_missing(getattr(row, c)) for c in columns},
                "wkb": shapely.to_wkb(row.geometry),
            }
            for row in frame.itertuples()
        ],
    )
    return len(frame)


def diff_frames(
    old: pd.DataFrame | None, new: pd.DataFrame, noun: str, compare: tuple[str, ...] = ()
) -> list[str]:
    """Codes added and removed, renames, geometry and attribute changes, as lines."""
    if old is None or old.empty:
        return [f"{len(new)} {noun} added (no current version of this layer)"]
    old_by_code = old.set_index("code")
    new_by_code = new.set_index("code")
    added = sorted(set(new_by_code.index) - set(old_by_code.index))
    removed = sorted(set(old_by_code.index) - set(new_by_code.index))
    common = sorted(set(new_by_code.index) & set(old_by_code.index))
    lines = []
    if added:
        lines.append(f"{len(added)} {noun} added: {few(added)}")
    if removed:
        lines.append(f"{len(removed)} {noun} removed: {few(removed)}")
    if common:
        before, after = old_by_code.loc[common], new_by_code.loc[common]
        renamed = (
            [c for c, a, b in zip(common, before["name"], after["name"], strict=True) if a != b]
            if "name" in new_by_code.columns and "name" in old_by_code.columns
            else []
        )
        if renamed:
            lines.append(f"{len(renamed)} renamed: {few(renamed)}")
        if "geometry" in new_by_code.columns and "geometry" in old_by_code.columns:
            same = shapely.equals_exact(before.geometry.values, after.geometry.values, 1e-9)
            moved = [c for c, s in zip(common, same, strict=True) if not s]
            if moved:
                lines.append(f"{len(moved)} with changed geometry: {few(moved)}")
        for column in compare:
            changed = [
                c
                for c, a, b in zip(common, before[column], after[column], strict=True)
                if str(a) != str(b)
            ]
            if changed:
                lines.append(f"{len(changed)} with changed {column}: {few(changed)}")
    return lines or [f"no change to the {len(new)} {noun}"]


def same_rows(old: pd.DataFrame, new: pd.DataFrame, columns: tuple[str, ...]) -> bool:
    """The same codes with the same values in ``columns`` (missing equals missing)."""
    if len(old) != len(new) or new["code"].duplicated().any():
        return False
    if set(old["code"]) != set(new["code"]):
        return False
    a = old.set_index("code").loc[sorted(old["code"]), list(columns)]
    b = new.set_index("code").loc[sorted(new["code"]), list(columns)]
    return all(
        none_if_missing(x) == none_if_missing(y)
        for column in columns
        for x, y in zip(a[column], b[column], strict=True)
    )


def few(codes: list[str], limit: int = 8) -> str:
    """The first codes of a list, and how many more."""
    shown = ", ".join(codes[:limit])
    return shown + (f" … (+{len(codes) - limit} more)" if len(codes) > limit else "")


def publish_loads(
    engine: Engine,
    loads: list[LayerLoad],
    note: str = "",
    actor: Actor | None = None,
    *,
    draft: bool = False,
    changes: list[str] | None = None,
) -> int:
    """Publish every load as one new dataset version (a draft, with ``draft``); returns its
    id. ``changes`` (codes retired, created, …) go to the audit log."""
    for load in loads:
        load.report.raise_if_failed()
    return datasets.publish(
        engine,
        {load.layer: load.write for load in loads},
        sources=[load.source for load in loads],
        note=note,
        actor=actor,
        draft=draft,
        detail={"changes": changes} if changes else None,
    )
