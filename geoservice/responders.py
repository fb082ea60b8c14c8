"""Fastest responders by road (``GET /v1/dispatch``).

Who reaches an incident first — a station, a unit's post, or a patrol unit where it last
reported — is found with **one** time-limited search from the incident over the reversed
road network (``Network.reversed``): the time from every node *to* the incident. A
responder standing at fraction ``x`` of an edge then needs the quicker of going on to
either end of its edge and the rest from there, or, on the incident's own edge, straight
along it: the same exact partial-edge rules as the isochrones (``Reach.time_at``). Road
distance is the length of that fastest path. The search is cut at ``SEARCH_LIMITS_S``:
first ten minutes, then the hour, when fewer than ``k`` responders were found.

Ties have one total order (``ranking_key``): arrival times are compared to the
microsecond (``TIME_RESOLUTION_S``), so float noise between two ways of adding the same
seconds never decides; equal times go to the kind (station, then post, then patrol), then
to the smaller code.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely
from sqlalchemy.engine import Engine

from geoservice.crs import from_metric
from geoservice.errors import InvalidInput
from geoservice.network import Network, Reach, Snaps, substring, travel_s
from geoservice.state_files import MappedPart, Part
from geoservice.store import VersionReader

SEARCH_LIMITS_S = (600.0, 3600.0)
MAX_K = 20
TIME_RESOLUTION_S = 1e-6
KIND_ORDER = ("station", "post", "patrol")


def ranking_key(eta_s: float, kind: str, code: str) -> tuple[int, int, str]:
    """The order of responders: arrival time to the microsecond, then kind (station, post,
    patrol), then code. The search and its tests' oracle both sort by it."""
    return round(eta_s / TIME_RESOLUTION_S), KIND_ORDER.index(kind), code


@dataclass(frozen=True)
class Responders:
    """Responders placed on the reversed network; snap row ``origin`` = responder index."""

    kinds: list[str]
    codes: list[str]
    names: list[str]
    snaps: Snaps
    mapped: MappedPart | None = field(default=None, repr=False, compare=False)
    """The state-directory part the arrays are mapped from (held, so it is not pruned)."""

    def to_part(self) -> Part:
        """The placements as a part of the state directory (``from_part`` reads it)."""
        arrays = {f: getattr(self.snaps, f) for f in Snaps.__dataclass_fields__}
        return Part(arrays, {"kinds": self.kinds, "codes": self.codes, "names": self.names})

    @classmethod
    def from_part(cls, built: MappedPart) -> Responders:
        """The placements ``to_part`` wrote, their arrays mapped."""
        snaps = Snaps(*(built[f] for f in Snaps.__dataclass_fields__))
        meta = built.meta
        return cls(list(meta["kinds"]), list(meta["codes"]), list(meta["names"]), snaps, built)

    def __add__(self, other: Responders) -> Responders:
        shift = len(self.codes)
        a, b = self.snaps, other.snaps
        snaps = Snaps(
            *(
                np.concatenate([getattr(a, f), getattr(b, f) + (shift if f == "origin" else 0)])
                for f in Snaps.__dataclass_fields__
            )
        )
        return Responders(
            self.kinds + other.kinds, self.codes + other.codes, self.names + other.names, snaps
        )


def place(
    reverse: Network,
    kinds: Sequence[str],
    codes: Sequence[str],
    names: Sequence[str],
    lon: Sequence[float],
    lat: Sequence[float],
) -> Responders:
    """Responders at points, snapped onto the reversed network (those more than 500 m from
    any road are left out: they cannot be routed)."""
    snaps = reverse.snap_points(np.asarray(lon, float), np.asarray(lat, float), strict=False)
    return Responders(list(kinds), list(codes), list(names), snaps)


def fixed_responders(engine: Engine, reverse: Network) -> Responders:
    """The stations and unit posts of the network's dataset version."""
    with engine.connect() as conn:
        rows = VersionReader(conn, reverse.version).stations()
    kinds = [row.kind for row in rows]
    codes = [row.code for row in rows]
    names = [row.name for row in rows]
    lon = [row.lon for row in rows]
    lat = [row.lat for row in rows]
    return place(reverse, kinds, codes, names, lon, lat)


def fastest(
    reverse: Network,
    responders: Responders,
    lon: float,
    lat: float,
    k: int,
    *,
    routes: bool = False,
) -> list[dict[str, Any]]:
    """The ``k`` responders that reach (lon, lat) first by road, in ``ranking_key`` order,
    each with its ETA, the road distance of its fastest path and where it joins the road
    (with ``routes``, that path as a GeoJSON LineString: ``route``)."""
    if not 1 <= k <= MAX_K:
        msg = f"k={k} responders; expected 1 to {MAX_K}"
        raise InvalidInput(msg)
    incident = reverse.snap_points([lon], [lat])
    s = responders.snaps
    for limit in SEARCH_LIMITS_S:
        reach = reverse.reach(incident, limit)
        seconds = reach.time_at(s.edge, s.fraction)
        if np.isfinite(seconds).sum() >= k:
            break
    rows = sorted(
        np.flatnonzero(np.isfinite(seconds)).tolist(),
        key=lambda row: ranking_key(
            float(seconds[row]),
            responders.kinds[s.origin[row]],
            responders.codes[s.origin[row]],
        ),
    )[:k]
    out = []
    for row in rows:
        who = int(s.origin[row])
        way = _way(reach, int(s.edge[row]), float(s.fraction[row]))
        out.append(
            {
                "kind": responders.kinds[who],
                "code": responders.codes[who],
                "name": responders.names[who],
                "eta_s": round(float(seconds[row]), 1),
                "distance_m": round(way.metres) if way is not None else None,
                "lon": round(float(s.lon[row]), 7),
                "lat": round(float(s.lat[row]), 7),
                **({"route": route(reach, way) if way is not None else None} if routes else {}),
            }
        )
    return out


@dataclass(frozen=True)
class Way:
    """The fastest way from a responder's point (``fraction`` of reversed-network ``edge``)
    to the incident: on to ``node`` (an end of the edge) and the search's path from there,
    or (``node`` None) straight along the edge to the incident's point on it."""

    seconds: float
    metres: float
    edge: int
    fraction: float
    node: int | None
    incident_fraction: float | None = None


def _way(reach: Reach, edge: int, fraction: float) -> Way | None:
    """Metres along the fastest way from a point on ``edge`` (of the reversed network) to
    the search's origin: on to one end of the edge and the path from there, or along
    the edge itself when the origin is on it. The quickest wins; a tie, the shorter."""
    net = reach.network
    length = float(net.length_m[edge])
    u, v = int(net.source[edge]), int(net.target[edge])
    ways = []
    for node, seconds, part in (
        (u, travel_s(fraction, net.forward_s[edge]), fraction * length),
        (v, travel_s(1 - fraction, net.backward_s[edge]), (1 - fraction) * length),
    ):
        t = float(reach.times_of(np.array([node]))[0] + seconds)
        if np.isfinite(t):
            metres = reach.path_length_m(node) + part
            ways.append(Way(t, metres, edge, fraction, node))
    origin = reach.snaps
    for f in origin.fraction[origin.edge == edge].tolist():
        if fraction >= f:
            t = float(travel_s(fraction - f, net.forward_s[edge]))
        else:
            t = float(travel_s(f - fraction, net.backward_s[edge]))
        if np.isfinite(t):
            ways.append(Way(t, abs(f - fraction) * length, edge, fraction, None, f))
    return min(ways, key=lambda w: (w.seconds, w.metres)) if ways else None


def route(reach: Reach, way: Way) -> dict[str, Any]:
    """The road route of ``way`` as a GeoJSON LineString (WGS84), in driving order: from
    the responder's point to the incident's. The reversed network's edges run against the
    real directions, so each piece is read backwards along the search."""
    net = reach.network
    pieces: list[np.ndarray] = []
    if way.node is None:
        assert way.incident_fraction is not None
        pieces.append(_along(net, way.edge, way.fraction, way.incident_fraction))
    else:
        end = 0.0 if way.node == int(net.source[way.edge]) else 1.0
        pieces.append(_along(net, way.edge, way.fraction, end))
        found = reach.path_nodes(way.node)
        assert found is not None
        path, origin = found
        for here, back in itertools.pairwise(path):
            edge = net.arc_edge(back, here)  # the search went back -> here
            start = 0.0 if int(net.source[edge]) == here else 1.0
            pieces.append(_along(net, edge, start, 1.0 - start))
        step = reach.first_step(origin, path[-1])
        if step is not None:
            row = step[0]
            edge, f = int(reach.snaps.edge[row]), float(reach.snaps.fraction[row])
            start = 1.0 if int(net.target[edge]) == path[-1] else 0.0
            pieces.append(_along(net, edge, start, f))
    xy = np.vstack(pieces)
    keep = np.concatenate([[True], np.any(np.diff(xy, axis=0) != 0, axis=1)])
    lon, lat = from_metric(xy[keep, 0], xy[keep, 1])
    coordinates = np.round(np.column_stack([lon, lat]), 7)
    if len(coordinates) == 1:
        coordinates = np.vstack([coordinates, coordinates])
    return {"type": "LineString", "coordinates": coordinates.tolist()}


def _along(net: Network, edge: int, start: float, end: float) -> np.ndarray:
    """Metric coordinates along ``edge`` from length fraction ``start`` to ``end`` (either
    way round)."""
    low, high = min(start, end), max(start, end)
    line = net.edge_lines(np.array([edge]), metric=True)[0]
    xy = shapely.get_coordinates(substring(line, low, high))
    return xy if start <= end else xy[::-1]
