"""What a bundle does to codes: retired, created, renamed, and where area moved.

For every boundary layer the bundle loads, the current features are overlaid on the new
ones; area that changes hands between codes is reported with what moved with it: the
features of the layer below, the posts (or stations) and the officers that named the old
code and name the new one. "unit 441302001003 merged into 441302001001: 1.84 km², 3 large
grids, 1 post, 4 officers".
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pandas as pd
import shapely

from etl.boundaries import CHILD, NOUNS
from etl.context import Context
from etl.geo import area_m2, point_of
from geoservice.models import BOUNDARY_LAYERS

MIN_MOVED_M2 = 100.0
"""Area handed over below this is rounding along shared edges, not a change."""


def code_changes(context: Context) -> list[str]:
    """One line per change of code, for every boundary layer staged in ``context``."""
    lines: list[str] = []
    for layer in BOUNDARY_LAYERS:
        if layer in context.staged:
            lines += _layer_changes(context, layer)
    return lines


def _layer_changes(context: Context, layer: str) -> list[str]:
    noun = NOUNS[layer]
    old, new = context.current_boundary(layer), context.boundary(layer)
    assert new is not None
    if old is None or old.empty:
        return [f"{len(new)} {noun}s created (there was no {noun} layer)"]
    old_codes, new_codes = set(old["code"]), set(new["code"])
    retired, created = old_codes - new_codes, new_codes - old_codes
    flows = _flows(old, new)
    lines = []
    for code in sorted(retired):
        gone = flows.get(code, {})
        if not gone:
            lines.append(f"{noun} {code} retired; its area went to no {noun}")
        elif len(gone) == 1:
            ((to, km2),) = gone.items()
            lines.append(f"{noun} {code} merged into {to}: " + _what(context, layer, code, to, km2))
        else:
            parts = "; ".join(
                f"{to}: {_what(context, layer, code, to, km2)}" for to, km2 in sorted(gone.items())
            )
            lines.append(f"{noun} {code} split into {len(gone)}: {parts}")
    for code in sorted(created):
        sources = {
            source: moved[code]
            for source, moved in flows.items()
            if code in moved and source not in retired
        }
        if sources:
            parts = "; ".join(
                f"{source}: {_what(context, layer, source, code, km2)}"
                for source, km2 in sorted(sources.items())
            )
            lines.append(f"{noun} {code} created from {parts}")
        elif not any(code in moved for moved in flows.values()):
            lines.append(f"{noun} {code} created")
    for source in sorted(old_codes & new_codes):
        for to, km2 in sorted(flows.get(source, {}).items()):
            if to in old_codes:
                lines.append(f"{noun} {source} gave {to} " + _what(context, layer, source, to, km2))
    names_before = dict(zip(old["code"], old["name"], strict=True))
    for code, name in zip(new["code"], new["name"], strict=True):
        if code in names_before and names_before[code] != name:
            lines.append(f"{noun} {code} renamed: {names_before[code]} → {name}")
    return lines


def _flows(old: pd.DataFrame, new: pd.DataFrame) -> dict[str, dict[str, float]]:
    """km² of each old code's area now in another code: {old code: {new code: km²}}."""
    old_geoms = np.asarray(old.geometry.values, dtype=object)
    new_geoms = np.asarray(new.geometry.values, dtype=object)
    i, j = shapely.STRtree(new_geoms).query(old_geoms, predicate="intersects")
    old_code, new_code = old["code"].to_numpy()[i], new["code"].to_numpy()[j]
    other = old_code != new_code
    i, j, old_code, new_code = i[other], j[other], old_code[other], new_code[other]
    inner = shapely.relate_pattern(old_geoms[i], new_geoms[j], "T********")
    shared = shapely.intersection(old_geoms[i][inner], new_geoms[j][inner])
    lat0 = point_of(old_geoms[0])[1]
    areas = area_m2(shared, lat0)
    flows: dict[str, dict[str, float]] = defaultdict(dict)
    for a, b, m2 in zip(old_code[inner], new_code[inner], areas, strict=True):
        if m2 >= MIN_MOVED_M2:
            flows[a][b] = flows[a].get(b, 0.0) + m2 / 1e6
    return flows


def _what(context: Context, layer: str, source: str, to: str, km2: float) -> str:
    """``1.84 km², 3 large grids, 1 post, 4 officers``: what moved from ``source`` to ``to``."""
    parts = [f"{km2:,.2f} km²"]
    child = CHILD.get(layer)
    if child is not None:
        before, after = context.current_boundary(child), context.boundary(child)
        if before is not None and after is not None:
            count = _moved(before, after, "code", "parent_code", source, to)
            parts.append(_count(count, NOUNS[child]))
    if layer in ("town", "unit"):
        kind = "station" if layer == "town" else "post"
        before, after = context.stations(staged=False), context.stations()
        before, after = before[before["kind"] == kind], after[after["kind"] == kind]
        parts.append(_count(_moved(before, after, "code", "area_code", source, to), kind))
    if layer == "unit":
        before, after = context.assignments(staged=False), context.assignments()
        count = _moved(before, after, "officer_code", "unit_code", source, to)
        parts.append(_count(count, "officer"))
    return ", ".join(part for part in parts if part)


def _moved(before: pd.DataFrame, after: pd.DataFrame, key: str, ref: str, a: str, b: str) -> int:
    """How many ``key``s named ``a`` before and name ``b`` after."""
    was = set(before.loc[before[ref] == a, key])
    now = set(after.loc[after[ref] == b, key])
    return len(was & now)


def _count(count: int, noun: str) -> str:
    """``3 large grids``; nothing for none."""
    return f"{count} {noun}{'s' if count != 1 else ''}" if count else ""
