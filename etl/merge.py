"""Stale bundles: reconciled against what was published since they were made.

A bundle made from version *B* (``--base B``, or the ``base_version`` an export writes
into its GeoPackage) is merged three ways, feature by feature (by code), with the current
version *C*; *X* is the bundle's feature:

- X equal to B (within the tolerance): the bundle left it alone — C's state is kept
  (also when C retired or added it);
- X changed, C equal to B: the bundle's change is taken;
- X changed and C changed, differently: a **conflict**, refused with its code unless
  ``--force`` (then X wins); X changed the same way as C is no conflict.

Without a known base, a bundle whose changes against C would put features back as they
were in an earlier version, undoing what was published since, is refused, naming them and
the version it seems made from (pass ``--base`` to merge, ``--force`` to load it as is).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd

from etl.report import Report
from etl.tolerance import equal_within, plane_of
from geoservice.missing import none_if_missing

MAX_NAMED = 8
"""Codes named in one message."""


@dataclass(frozen=True)
class Side:
    """One version of a layer, by code: attribute rows and (optionally) geometries."""

    rows: dict[str, tuple]
    geoms: dict[str, object]

    @classmethod
    def of(cls, frame: pd.DataFrame | None, columns: tuple[str, ...]) -> Side:
        if frame is None or frame.empty:
            return cls({}, {})
        rows = {
            code: tuple(none_if_missing(v) for v in values)
            for code, *values in zip(
                frame["code"], *(frame[c] for c in columns if c in frame), strict=True
            )
        }
        geoms = (
            dict(zip(frame["code"], frame.geometry.values, strict=True))
            if isinstance(frame, gpd.GeoDataFrame)
            else {}
        )
        return cls(rows, geoms)


def same(a: Side, b: Side, codes: list[str], tolerance_m: float) -> np.ndarray:
    """Per code: present in neither, or in both with equal attributes and geometries
    equal within the tolerance."""
    if not codes:
        return np.zeros(0, dtype=bool)
    in_a = np.array([c in a.rows for c in codes])
    in_b = np.array([c in b.rows for c in codes])
    attrs = np.array([a.rows.get(c) == b.rows.get(c) for c in codes])
    out = (in_a == in_b) & (~in_a | attrs)
    if a.geoms or b.geoms:
        ga = np.array([a.geoms.get(c) for c in codes], dtype=object)
        gb = np.array([b.geoms.get(c) for c in codes], dtype=object)
        both = in_a & in_b
        geometry = np.ones(len(codes), dtype=bool)
        if both.any():
            plane = plane_of(np.concatenate([ga[both], gb[both]]))
            geometry[both] = equal_within(ga[both], gb[both], tolerance_m, plane)
        out &= geometry
    return out


def three_way(
    bundle: pd.DataFrame,
    base: pd.DataFrame | None,
    current: pd.DataFrame | None,
    columns: tuple[str, ...],
    *,
    tolerance_m: float,
    force: bool,
    noun: str,
    base_version: int,
    report: Report,
) -> pd.DataFrame:
    """The bundle's layer merged with what was published since ``base_version``.

    Rows the bundle left as they were at the base take the current state (or go, when the
    current version retired them); conflicts are reported on ``report`` (unless
    ``force``, when the bundle's row wins). The result has the bundle's columns."""
    x, b, c = (Side.of(f, columns) for f in (bundle, base, current))
    codes = sorted(set(x.rows) | set(b.rows) | set(c.rows))
    untouched = same(x, b, codes, tolerance_m)
    since = same(c, b, codes, tolerance_m)
    agree = same(x, c, codes, tolerance_m)
    take_current = untouched
    conflicts = [
        code
        for code, u, s, a in zip(codes, untouched, since, agree, strict=True)
        if not u and not s and not a
    ]
    if not force:
        for code in conflicts:
            report.error(
                f"{noun} {code!r} changed both in this bundle and since version "
                f"{base_version}, differently: edit it on the current version "
                "(geoservice export), or --force takes the bundle's",
                _where(code, x, c),
                code=code,
                kind="conflict",
            )
    keep_current = {code for code, t in zip(codes, take_current, strict=True) if t}
    from_bundle = bundle[~bundle["code"].isin(keep_current)]
    from_current = (
        current[current["code"].isin(keep_current)] if current is not None else bundle.iloc[:0]
    )
    merged = pd.concat(
        [from_bundle, from_current.reindex(columns=bundle.columns)], ignore_index=True
    )
    merged = merged.sort_values("code", kind="stable").reset_index(drop=True)
    kept_since = sorted(
        code for code, t, s in zip(codes, take_current, since, strict=True) if t and not s
    )
    if kept_since:
        report.facts.append(
            f"{len(kept_since)} {noun}{'s' if len(kept_since) != 1 else ''} changed since "
            f"version {base_version} and left alone by this bundle: kept as published "
            f"({', '.join(kept_since[:MAX_NAMED])}{' …' if len(kept_since) > MAX_NAMED else ''})"
        )
    if isinstance(bundle, gpd.GeoDataFrame):
        return gpd.GeoDataFrame(merged, geometry=bundle.geometry.name, crs=bundle.crs)
    return merged


def reverts(
    bundle: pd.DataFrame,
    current: pd.DataFrame | None,
    history: Callable[[], list[tuple[int, pd.DataFrame]]],
    columns: tuple[str, ...],
    *,
    tolerance_m: float,
    noun: str,
    report: Report,
) -> None:
    """Without a base: refuse a bundle whose changes put features back as they were in an
    earlier version (``history()``: newest first, each a version and its layer; read only
    when the bundle changes anything)."""
    x, c = Side.of(bundle, columns), Side.of(current, columns)
    codes = sorted(set(x.rows) | set(c.rows))
    changed = [code for code, s in zip(codes, same(x, c, codes, tolerance_m), strict=True) if not s]
    if not changed:
        return
    for version, frame in history():
        old = Side.of(frame, columns)
        back = [
            code for code, s in zip(changed, same(x, old, changed, tolerance_m), strict=True) if s
        ]
        for code in back:
            report.error(
                f"{noun} {code!r} {_what(code, x, c)} as it was in version {version}, undoing "
                f"what was published since: the bundle looks made from version {version}; "
                f"pass --base {version} to keep the newer changes, or --force to load it as "
                "it is",
                _where(code, x, c),
                code=code,
                kind="revert",
            )
        if back:
            return


def _what(code: str, bundle: Side, current: Side) -> str:
    if code not in current.rows:
        return "would be restored"
    if code not in bundle.rows:
        return "would be removed again"
    return "would be put back"


def _where(code: str, *sides: Side) -> object:
    """The first geometry a side has for ``code`` (where to zoom to), or None."""
    return next((side.geoms[code] for side in sides if side.geoms.get(code) is not None), None)
