"""Response origins on the network: stations, unit posts and patrol segments of a version."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import shapely
from sqlalchemy.engine import Engine

from geoservice.coverage.kinds import OriginKind
from geoservice.errors import InvalidInput
from geoservice.network import Network, Snaps
from geoservice.store import VersionReader


@dataclass(frozen=True)
class Origins:
    """Response origins placed on the network, with what they are."""

    snaps: Snaps
    codes: list[str]
    kinds: list[str]  # station, post, patrol, added

    def only(self, keep: list[int]) -> Origins:
        """Only the origins numbered ``keep`` (renumbered in that order)."""
        s = self.snaps
        new_number = np.full(len(self.codes), -1)
        new_number[keep] = np.arange(len(keep))
        rows = np.isin(s.origin, keep)
        snaps = Snaps(
            new_number[s.origin[rows]],
            s.edge[rows],
            s.fraction[rows],
            s.lon[rows],
            s.lat[rows],
            s.distance_m[rows],
        )
        return Origins(snaps, [self.codes[i] for i in keep], [self.kinds[i] for i in keep])


def load_origins(engine: Engine, network: Network, kind: OriginKind) -> Origins:
    """Stations, unit posts, patrol segments (each whole segment one origin) or all, of the
    network's dataset version."""
    parts: list[Origins] = []
    with VersionReader.open(engine, network.version) as reader:
        for station_kind, label in (("station", OriginKind.STATIONS), ("post", OriginKind.POSTS)):
            if kind not in (label, OriginKind.ALL):
                continue
            rows = reader.stations(station_kind)
            snaps = network.snap_points([r.lon for r in rows], [r.lat for r in rows], strict=False)
            parts.append(Origins(snaps, [r.code for r in rows], [station_kind] * len(rows)))
        if kind in (OriginKind.PATROLS, OriginKind.ALL):
            rows = reader.patrol_segments()
            if rows:
                lines = shapely.from_wkb([bytes(r.wkb) for r in rows])
                snaps = network.snap_lines(list(lines), names=[r.code for r in rows])
                parts.append(Origins(snaps, [r.code for r in rows], ["patrol"] * len(rows)))
    return combine(parts)


def combine(parts: Sequence[Origins]) -> Origins:
    """Several origin sets as one (origin numbers shifted)."""
    snaps, codes, kinds, offset = [], [], [], 0
    for part in parts:
        s = part.snaps
        snaps.append(Snaps(s.origin + offset, s.edge, s.fraction, s.lon, s.lat, s.distance_m))
        codes += part.codes
        kinds += part.kinds
        offset += len(part.codes)
    if not snaps:
        msg = "no response origin in the current dataset (stations, posts or patrol segments)"
        raise InvalidInput(msg)
    fields = [np.concatenate([getattr(s, f) for s in snaps]) for f in Snaps.__dataclass_fields__]
    return Origins(Snaps(*fields), codes, kinds)
