"""Codes and names of redrawn grids: a grid takes the code of the old grid it covers
most, unless another took it; new codes are numbered after the large grid's last, names
follow its grids' pattern (``…1-7网格``)."""

from __future__ import annotations

import re

import shapely
from shapely.geometry import MultiPolygon

from geoservice.grid_design.measure import area_m2
from geoservice.grid_design.pieces import Piece
from geoservice.grid_design.proposal import Grid


def named(parent: str, members: list[Grid], kept: list[Grid], pieces: list[Piece]) -> list[Grid]:
    """Kept grids, then the redrawn ones with their codes and names."""
    old = {g.code: g for g in members}
    taken = {g.code for g in kept}
    suffixes = [int(g.code[len(parent) :]) for g in members if g.code[len(parent) :].isdigit()]
    width = max((len(g.code) - len(parent) for g in members), default=2)
    following = max(suffixes, default=0)
    pattern = next((m for g in members if (m := re.fullmatch(r"(.*-)(\d+)(网格)", g.name))), None)
    out = list(kept)
    order = sorted(range(len(pieces)), key=lambda i: -area_m2(pieces[i].geometry))
    codes: dict[int, str] = {}
    for i in order:
        piece = pieces[i]
        overlaps = sorted(
            piece.origins,
            key=lambda c: (-shapely.area(shapely.intersection(old[c].geometry, piece.geometry)), c),
        )
        code = next((c for c in overlaps if c not in taken), None)
        if code is None:
            following += 1
            code = f"{parent}{following:0{width}d}"
        taken.add(code)
        codes[i] = code
    for i, piece in enumerate(pieces):
        code = codes[i]
        if code in old:
            name = old[code].name
        elif pattern is not None:
            name = f"{pattern[1]}{int(code[len(parent) :])}{pattern[3]}"
        else:
            name = f"{code}网格"
        geometry = piece.geometry
        multi = geometry if isinstance(geometry, MultiPolygon) else MultiPolygon([geometry])
        if code in old and shapely.equals_exact(old[code].geometry, multi, 0):
            out.append(old[code])  # left as it was: attributes as stored
        else:
            out.append(Grid(code, name, parent, multi, piece.size, piece.residents))
    return out
