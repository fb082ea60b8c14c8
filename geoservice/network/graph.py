"""The road network as a directed graph: CSR arrays per dataset version and profile,
origins snapped onto edges, and one multi-source time-limited search with partial edges.

- **Costs** are recomputed per profile from each edge's length, class, ``maxspeed`` and
  one-way flag (:meth:`Profile.speed_kmh`); for the default ``car`` profile they equal the
  ``cost``/``reverse_cost`` stored in ``road_edges``. Edges the profile cannot use are left
  out. Parallel edges keep the **minimum** cost (scipy's COO->CSR would sum them), and the
  CSR arrays are built directly so zero-cost edges stay edges.
- **Geometry** is kept as coordinate arrays (WGS84 and EPSG:4547, one edge's after
  another), never as one shapely object per edge: mapped from the state directory they
  cost a process nothing of its own. Lines are built from them for the edges an answer
  draws or measures.
- **Origins** are snapped onto the nearest usable edge (not the nearest node), at most
  ``SNAP_LIMIT_M`` away; the edge is split at that fraction. The nearest edge is found
  through a table of the segments by the square cells their boxes meet
  (``SNAP_CELL_M``), its distance measured by GEOS as before; of equally near edges the
  one with the smallest index is taken. A line origin (a patrol
  segment) is sampled every ``LINE_STEP_M`` and every sample is snapped: the whole line is
  one origin, reached at time 0.
- **Search**: one virtual node per origin, joined to the ends of its snapped edges, and one
  ``scipy.sparse.csgraph.dijkstra(min_only=True, limit=...)`` over all of them; it also
  says which origin reaches each node first.
- **Partial edges**: a point at fraction ``x`` of edge ``u -> v`` is reached at
  ``min(t_u + x * forward, t_v + (1 - x) * backward)`` (and from an origin on the edge
  itself), so the part reached within ``T`` ends exactly where the time runs out.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import orjson
import pandas as pd
import shapely
import sqlalchemy as sa
from numpy.typing import NDArray
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra
from sqlalchemy.engine import Engine

from geoservice.crs import from_metric, to_metric
from geoservice.datasets import resolve_version
from geoservice.errors import InvalidInput, NoDataset
from geoservice.missing import objects
from geoservice.profiles import Profile, load_profile
from geoservice.state_files import MappedPart, Part

SNAP_LIMIT_M = 500.0
"""An origin farther than this from every usable road is refused."""
LOCAL_SHARE = 0.4
"""A search that could reach more than this share of the nodes runs on the whole graph."""
LOCAL_MIN_NODES = 200_000
"""From this many nodes up, searches run locally (see ``Network.reach``)."""
BUCKET_M = 1_000.0
"""Side of the square buckets that index the nodes by position."""
LINE_STEP_M = 25.0
"""A line origin is sampled at this spacing (and at both ends)."""
SNAP_CELL_M = 100.0
"""Side of the finest square cells of the snapping table (each segment listed in every
cell its bounding box meets)."""
SNAP_MAX_CELLS = 16
"""A snap looks at most this many cells around a point on one level of the snapping table
before it goes on to the next, whose cells are this many times wider."""
SNAP_CHUNK = 1 << 16
"""Cells looked up at once by one snap (points times cells), which bounds its scratch
memory."""
SNAP_TOLERANCE_M = 1e-6
"""Margin between the snapping table's distances and GEOS's (floating point), so that every
edge GEOS could find nearest is measured by GEOS."""
ORIGIN_OFFSET_S = 1.0
"""Added to every edge leaving a virtual origin node and subtracted afterwards, so a
zero-length first step is never a zero weight."""

Array = NDArray[np.float64]


class NoRoadNearby(InvalidInput):
    """An origin is too far from the road network to be routed from."""

    title = "No road nearby"


@dataclass(frozen=True)
class Snaps:
    """Origins placed on the network: each row a point on an edge, labelled by origin."""

    origin: NDArray[np.int64]  # which origin (0..n_origins-1) the row belongs to
    edge: NDArray[np.int64]
    fraction: Array  # along the edge, source -> target
    lon: Array  # the snapped point
    lat: Array
    distance_m: Array  # from the input point to the snapped point

    @property
    def n_origins(self) -> int:
        return int(self.origin.max()) + 1 if len(self.origin) else 0


def profile_costs(frame: pd.DataFrame, profile: Profile) -> tuple[Array, Array]:
    """Seconds along and against each edge for ``profile``; ``inf`` where not allowed."""
    highway = frame["highway"].to_numpy(dtype=object)
    maxspeed = pd.to_numeric(frame["maxspeed_kmh"], errors="coerce").to_numpy(dtype=float)
    usable = np.array([profile.drivable(h) for h in highway], dtype=bool)
    speed = np.full(len(frame), np.nan)
    for i in np.flatnonzero(usable):
        m = maxspeed[i]
        speed[i] = profile.speed_kmh(highway[i], None if np.isnan(m) else float(m))
    forward = np.where(usable, frame["length_m"].to_numpy(dtype=float) / (speed / 3.6), np.inf)
    one_way = frame["oneway"].to_numpy(dtype=bool) & profile.oneway
    backward = np.where(one_way, np.inf, forward)
    return forward, backward


def min_csr(rows: NDArray[np.int64], cols: NDArray[np.int64], weights: Array, n: int) -> csr_matrix:
    """CSR matrix keeping the minimum weight of parallel entries (and explicit zeros)."""
    return _min_csr(rows, cols, weights, n)[0]


def _min_csr(
    rows: NDArray[np.int64], cols: NDArray[np.int64], weights: Array, n: int
) -> tuple[csr_matrix, NDArray[np.int64]]:
    """``min_csr`` and, for each of its entries, the position of the input entry it kept
    (columns sorted within each row)."""
    order = np.lexsort((weights, cols, rows))
    rows, cols, weights = rows[order], cols[order], weights[order]
    first = np.ones(len(rows), dtype=bool)
    first[1:] = (rows[1:] != rows[:-1]) | (cols[1:] != cols[:-1])
    rows, cols, weights = rows[first], cols[first], weights[first]
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.add.at(indptr, rows + 1, 1)
    return csr_matrix((weights, cols, np.cumsum(indptr)), shape=(n, n)), order[first]


class Network:
    """Immutable directed road graph of one dataset version for one profile."""

    def __init__(
        self,
        *,
        version: int,
        snapshot_id: int | None = None,
        profile: str,
        edge_ids: NDArray[np.int64],
        source: NDArray[np.int64],
        target: NDArray[np.int64],
        forward_s: Array,
        backward_s: Array,
        lines: NDArray[np.object_] | None = None,
        names: NDArray[np.object_] | None = None,
        node_ids: NDArray[np.int64] | None = None,
        highway: NDArray[np.object_] | None = None,
        class_speed: NDArray[np.bool_] | None = None,
        built: MappedPart | None = None,
    ) -> None:
        """``source``/``target`` are node indices 0..n-1; ``lines`` are LineStrings in
        WGS84 running from source to target (kept only as their coordinates); ``inf`` costs
        mark forbidden directions. ``built``: this network as ``to_part`` wrote it (mapped
        from the state directory): its coordinates, lengths, graph, segment and snapping
        tables are used from there instead of ``lines`` and computing them here; ``names``
        are then read from it on first use."""
        self.version = version
        self.snapshot_id = snapshot_id
        self.profile = profile
        self.edge_ids = edge_ids
        self.source = source
        self.target = target
        self.forward_s = forward_s
        self.backward_s = backward_s
        if names is not None or built is None:
            self.names = names if names is not None else np.full(len(edge_ids), None, dtype=object)
        self.highway = highway if highway is not None else np.full(len(edge_ids), "", dtype=object)
        # whether an edge's speed is its class speed (not a maxspeed tag): what a change of
        # class speeds applies to
        self.class_speed = (
            class_speed if class_speed is not None else np.ones(len(edge_ids), dtype=bool)
        )
        self.n_nodes = int(max(source.max(initial=-1), target.max(initial=-1)) + 1)
        self.node_ids = node_ids if node_ids is not None else np.arange(self.n_nodes)
        self.backwards = False  # True for ``reversed()``: lines run against the coordinates
        self._built = built  # keeps the mapping (and its shared lock) as long as the network
        self._graph = "" if built is not None else None  # prefix of the part's CSR arrays
        if built is None:
            assert lines is not None, "a network needs its lines or its part"
            xy, owner = shapely.get_coordinates(lines, return_index=True)
            self.xy: Array = xy
            self.line_at: NDArray[np.int64] = np.searchsorted(
                owner, np.arange(len(edge_ids) + 1)
            ).astype(np.int64)
            self.metric_xy: Array = _metric_coords(xy)
            self.length_m = shapely.length(self._lines(np.arange(len(edge_ids)), metric=True))
            self.matrix = self._matrix()
        else:
            self.xy, self.metric_xy = built["xy"], built["metric_xy"]
            self.line_at, self.length_m = built["line_at"], built["length_m"]
            self.matrix = self._stored_matrix("")

    # -- as files (the state directory) ----------------------------------------------------

    def to_part(self) -> Part:
        """This network as arrays and metadata, for the state directory; ``from_part`` reads
        them back into an equal network without reading the roads, building the graph (nor
        its reverse) or the segment and snapping tables."""
        if self.backwards:
            msg = "a reversed network is stored as the network it reverses"
            raise ValueError(msg)
        highways, highway_code = np.unique(self.highway.astype(str), return_inverse=True)
        seg_a, seg_b, seg_start, seg_end, seg_first = self._segments
        snap_key, snap_coord, snap_levels = self._snap_table
        reverse = self.reversed()
        arrays = {
            "edge_ids": self.edge_ids,
            "source": self.source,
            "target": self.target,
            "forward_s": self.forward_s,
            "backward_s": self.backward_s,
            "node_ids": self.node_ids,
            "class_speed": self.class_speed,
            "highway": highway_code.astype(np.int32),
            "names": np.frombuffer(orjson.dumps(self.names.tolist()), dtype=np.uint8),
            "xy": self.xy,
            "metric_xy": self.metric_xy,
            "line_at": self.line_at,
            "length_m": self.length_m,
            "seg_a": seg_a,
            "seg_b": seg_b,
            "seg_start": seg_start,
            "seg_end": seg_end,
            "seg_first": seg_first,
            "segment_keys": self._segment_keys,
            "snap_key": snap_key,
            "snap_coord": snap_coord,
            "snap_levels": snap_levels,
        }
        for prefix, net in (("", self), ("reverse_", reverse)):
            arrays[f"{prefix}matrix_data"] = net.matrix.data
            arrays[f"{prefix}matrix_indices"] = net.matrix.indices
            arrays[f"{prefix}matrix_indptr"] = net.matrix.indptr
            arrays[f"{prefix}matrix_edge"] = net.matrix_edge
        meta = {
            "version": self.version,
            "snapshot_id": self.snapshot_id,
            "profile": self.profile,
            "highways": highways.tolist(),
        }
        return Part(arrays, meta)

    @classmethod
    def from_part(cls, built: MappedPart, version: int) -> Network:
        """The network ``to_part`` wrote, labelled with ``version`` (same roads snapshot)."""
        highways = np.array(built.meta["highways"], dtype=object)
        return cls(
            version=version,
            snapshot_id=built.meta["snapshot_id"],
            profile=built.meta["profile"],
            edge_ids=built["edge_ids"],
            source=built["source"],
            target=built["target"],
            forward_s=built["forward_s"],
            backward_s=built["backward_s"],
            node_ids=built["node_ids"],
            highway=highways[built["highway"]],
            class_speed=built["class_speed"],
            built=built,
        )

    @cached_property
    def names(self) -> NDArray[np.object_]:
        """Each edge's road name (None where it has none), read from the part on first use."""
        assert self._built is not None
        return np.array(orjson.loads(self._built["names"].tobytes()) or [], dtype=object)

    def _stored_matrix(self, prefix: str) -> csr_matrix:
        """The CSR graph ``to_part`` stored under ``prefix`` (mapped, not copied); sets
        ``matrix_edge`` as ``_matrix`` does."""
        built = self._built
        assert built is not None
        self.matrix_edge = built[f"{prefix}matrix_edge"]
        return csr_matrix(
            (
                built[f"{prefix}matrix_data"],
                built[f"{prefix}matrix_indices"],
                built[f"{prefix}matrix_indptr"],
            ),
            shape=(self.n_nodes, self.n_nodes),
            copy=False,
        )

    def _matrix(self) -> csr_matrix:
        """The graph as CSR; ``matrix_edge`` says which edge each entry travels."""
        source, target = self.source, self.target
        forward_s, backward_s = self.forward_s, self.backward_s
        fwd, bwd = np.isfinite(forward_s), np.isfinite(backward_s)
        matrix, kept = _min_csr(
            np.concatenate([source[fwd], target[bwd]]),
            np.concatenate([target[fwd], source[bwd]]),
            np.concatenate([forward_s[fwd], backward_s[bwd]]),
            self.n_nodes,
        )
        edges = np.arange(self.n_edges)
        self.matrix_edge = np.concatenate([edges[fwd], edges[bwd]])[kept]
        return matrix

    def reversed(self) -> Network:
        """The same roads with every direction turned round (edges run target -> source,
        lines reversed, costs kept): a search from a point on it gives the time from every
        place *to* that point — what responders need to reach an incident. The coordinates
        and the snapping table are shared; a mapped network's reversed graph is mapped too."""
        clone = copy.copy(self)
        clone.source, clone.target = self.target, self.source
        clone.backwards = not self.backwards
        for cached in ("_segments", "_segment_keys", "lines", "lines_metric"):
            clone.__dict__.pop(cached, None)
        if self._graph == "":
            clone._graph = "reverse_"
            clone.matrix = clone._stored_matrix("reverse_")
        elif self._graph == "reverse_":
            clone._graph = ""
            clone.matrix = clone._stored_matrix("")
        else:
            clone.matrix = clone._matrix()
        return clone

    # -- geometry from the coordinates -----------------------------------------------------

    def edge_lines(self, edges: NDArray[np.int64], *, metric: bool = False) -> NDArray[np.object_]:
        """LineStrings of ``edges`` (indices), running source -> target of this network,
        built now from the coordinates: WGS84, or EPSG:4547 with ``metric``."""
        return self._lines(edges, metric=metric, reverse=self.backwards)

    def _lines(
        self, edges: NDArray[np.int64], *, metric: bool, reverse: bool = False
    ) -> NDArray[np.object_]:
        """LineStrings of ``edges`` from the coordinates as stored (the roads' own direction),
        turned round with ``reverse``."""
        edges = np.asarray(edges, dtype=np.int64)
        if len(edges) == 0:
            return np.empty(0, dtype=object)
        xy = self.metric_xy if metric else self.xy
        start, count = self.line_at[edges], np.diff(self.line_at)[edges]
        position = np.repeat(start, count) + (
            np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
        )
        lines = shapely.linestrings(
            np.asarray(xy[position]), indices=np.repeat(np.arange(len(edges)), count)
        )
        return shapely.reverse(lines) if reverse else lines

    @cached_property
    def lines(self) -> NDArray[np.object_]:
        """Every edge as a WGS84 LineString (built on first use: maps and notebooks)."""
        return self.edge_lines(np.arange(self.n_edges))

    @cached_property
    def lines_metric(self) -> NDArray[np.object_]:
        """Every edge as an EPSG:4547 LineString (built on first use)."""
        return self.edge_lines(np.arange(self.n_edges), metric=True)

    @cached_property
    def tree(self) -> shapely.STRtree:
        """An STRtree of the metric lines in the roads' own direction, built on first use
        (for queries by area; snapping uses the segment table, not this)."""
        return shapely.STRtree(self._lines(np.arange(self.n_edges), metric=True))

    def arc_edge(self, tail: int, head: int) -> int:
        """The edge the search travels from node ``tail`` to node ``head``."""
        indptr, indices = self.matrix.indptr, self.matrix.indices
        lo, hi = indptr[tail], indptr[tail + 1]
        entry = lo + int(np.searchsorted(indices[lo:hi], head))
        return int(self.matrix_edge[entry])

    def arc_length_m(self, tail: int, head: int) -> float:
        """Length of the edge the search travels from node ``tail`` to node ``head``."""
        return float(self.length_m[self.arc_edge(tail, head)])

    def with_changes(
        self,
        closed: NDArray[np.int64] | None = None,
        speeds_kmh: dict[str, float] | None = None,
    ) -> Network:
        """A what-if copy: edges ``closed`` (indices) in both directions, class speeds
        replaced (edges with a maxspeed tag keep it). Geometry and index are shared."""
        forward, backward = self.forward_s.copy(), self.backward_s.copy()
        for highway, speed in (speeds_kmh or {}).items():
            hit = (self.highway == highway) & self.class_speed
            old = self.length_m[hit] / forward[hit] * 3.6  # km/h (metric length, same ratio)
            forward[hit] *= old / speed
            two_way = hit.copy()
            two_way[hit] = np.isfinite(backward[hit])
            backward[two_way] = forward[two_way]
        if closed is not None and len(closed):
            forward[closed] = np.inf
            backward[closed] = np.inf
        clone = copy.copy(self)
        clone.forward_s, clone.backward_s = forward, backward
        clone.__dict__.pop("top_speed_mps", None)  # speeds changed: measured again
        clone.matrix = clone._matrix()
        clone._graph = None  # the stored graphs have the old costs
        return clone

    @classmethod
    def from_frame(
        cls, frame: pd.DataFrame, *, version: int, profile: Profile, snapshot_id: int | None = None
    ) -> Network:
        """From ``road_edges`` rows: id, source, target, length_m, highway, maxspeed_kmh,
        oneway, name and ``geometry`` (WGS84 LineStrings)."""
        forward, backward = profile_costs(frame, profile)
        keep = np.isfinite(forward) | np.isfinite(backward)
        if not keep.any():
            msg = f"no road in dataset version {version} can be used by the {profile.name} profile"
            raise NoDataset(msg)
        frame = frame[keep]
        node_ids, ends = np.unique(
            np.concatenate([frame["source"].to_numpy(), frame["target"].to_numpy()]),
            return_inverse=True,
        )
        return cls(
            version=version,
            snapshot_id=snapshot_id,
            profile=profile.name,
            edge_ids=frame["id"].to_numpy(dtype=np.int64),
            source=ends[: len(frame)].astype(np.int64),
            target=ends[len(frame) :].astype(np.int64),
            forward_s=forward[keep],
            backward_s=backward[keep],
            lines=frame["geometry"].to_numpy(dtype=object),
            names=objects(frame["name"]),
            node_ids=node_ids.astype(np.int64),
            highway=objects(frame["highway"]),
            class_speed=(frame["maxspeed_kmh"].isna().to_numpy() | (not profile.use_maxspeed)),
        )

    def at_version(self, version: int) -> Network:
        """This network (same roads) labelled with a later dataset version."""
        clone = copy.copy(self)
        clone.version = version
        return clone

    @property
    def n_edges(self) -> int:
        return len(self.edge_ids)

    @cached_property
    def node_lonlat(self) -> Array:
        """(n, 2) node positions, from the edge ends (NaN for a node no edge touches)."""
        xy = np.full((self.n_nodes, 2), np.nan)
        starts, ends = self.xy[self.line_at[:-1]], self.xy[self.line_at[1:] - 1]
        xy[self.source] = ends if self.backwards else starts
        xy[self.target] = starts if self.backwards else ends
        return xy

    @cached_property
    def node_xy_metric(self) -> Array:
        """(n, 2) node positions in EPSG:4547."""
        x, y = to_metric(self.node_lonlat[:, 0], self.node_lonlat[:, 1])
        return np.column_stack([x, y])

    @cached_property
    def _segments(self) -> tuple[Array, Array, Array, Array, NDArray[np.int64]]:
        """Every straight segment of every edge in metres: start, end, the edge fractions
        where it starts and ends, and each edge's first segment (``first[e]:first[e+1]``),
        in this network's direction (mapped when the part has them)."""
        built = self._built
        if built is not None and not self.backwards:
            return (
                built["seg_a"],
                built["seg_b"],
                built["seg_start"],
                built["seg_end"],
                built["seg_first"],
            )
        owner = np.repeat(np.arange(self.n_edges), np.diff(self.line_at))
        if self.backwards:  # each edge's coordinates turned round
            turned = self.line_at[owner] + self.line_at[owner + 1] - 1 - np.arange(len(owner))
            xy = np.asarray(self.metric_xy)[turned]
        else:
            xy = np.asarray(self.metric_xy)
        same = owner[1:] == owner[:-1]
        a, b, edge = xy[:-1][same], xy[1:][same], owner[:-1][same]
        length = np.hypot(*(b - a).T)
        first = np.searchsorted(edge, np.arange(self.n_edges + 1))
        done = np.cumsum(length)
        done -= np.repeat(done[first[:-1]] - length[first[:-1]], np.diff(first))
        total = self.length_m[edge]
        end = np.divide(done, total, out=np.ones_like(done), where=total > 0)
        end[first[1:] - 1] = 1.0
        start = np.divide(done - length, total, out=np.zeros_like(done), where=total > 0)
        return a, b, start, end, first

    @cached_property
    def _segment_keys(self) -> Array:
        """Each segment's edge plus the fraction where it starts: sorted, so one
        ``searchsorted`` finds the segment of any point on any edge."""
        if self._built is not None and not self.backwards:
            return self._built["segment_keys"]
        _, _, seg_start, _, first = self._segments
        return np.repeat(np.arange(self.n_edges), np.diff(first)) + seg_start

    def points_along_edges(self, edge: NDArray[np.int64], fraction: Array) -> Array:
        """Metric (x, y) of points at length fractions along edges."""
        a, b, seg_start, seg_end, first = self._segments
        k = np.searchsorted(self._segment_keys, edge + fraction, side="right") - 1
        k = np.clip(k, first[edge], first[edge + 1] - 1)
        span = seg_end[k] - seg_start[k]
        t = np.divide(fraction - seg_start[k], span, out=np.zeros_like(span), where=span > 0)
        t = np.clip(t, 0.0, 1.0)[:, None]
        return a[k] + (b[k] - a[k]) * t

    def points_on(self, pieces: Pieces, step: float) -> Array:
        """Metric points along reached parts: both ends and at most ``step`` apart."""
        a, b, seg_start, seg_end, first = self._segments
        count = first[pieces.edge + 1] - first[pieces.edge]
        owner = np.repeat(np.arange(len(count)), count)
        seg = first[pieces.edge][owner] + (
            np.arange(len(owner)) - np.repeat(np.cumsum(count) - count, count)
        )
        lo = np.maximum(pieces.start[owner], seg_start[seg])
        hi = np.minimum(pieces.end[owner], seg_end[seg])
        keep = hi >= lo
        seg, lo, hi = seg[keep], lo[keep], hi[keep]
        span = seg_end[seg] - seg_start[seg]
        t0 = np.divide(lo - seg_start[seg], span, out=np.zeros_like(lo), where=span > 0)
        t1 = np.divide(hi - seg_start[seg], span, out=np.zeros_like(hi), where=span > 0)
        length = np.hypot(*(b[seg] - a[seg]).T) * (t1 - t0)
        n = np.ceil(length / step).astype(np.int64) + 1
        which = np.repeat(np.arange(len(n)), n)
        k = np.arange(len(which)) - np.repeat(np.cumsum(n) - n, n)
        t = t0[which] + (t1 - t0)[which] * (k / np.maximum(np.repeat(n - 1, n), 1))
        s = seg[which]
        return a[s] + (b[s] - a[s]) * t[:, None]

    # -- origins ---------------------------------------------------------------------------

    def snap_points(
        self,
        lon: Sequence[float] | Array,
        lat: Sequence[float] | Array,
        max_distance_m: float = SNAP_LIMIT_M,
        *,
        strict: bool = True,
    ) -> Snaps:
        """Each point onto the nearest usable edge; one origin per point (origin ``i`` is
        point ``i``).

        Raises ``NoRoadNearby`` naming the first point farther than ``max_distance_m``;
        with ``strict=False`` such points are left out instead.
        """
        lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
        snaps = self._snap(lon, lat, np.arange(len(lon)), max_distance_m)
        missing = np.setdiff1d(np.arange(len(lon)), snaps.origin)
        if len(missing) and strict:
            i = int(missing[0])
            msg = (
                f"point ({lon[i]:.6f}, {lat[i]:.6f}) is more than {max_distance_m:g} m from any "
                f"road the {self.profile} profile can use"
            )
            raise NoRoadNearby(msg)
        return snaps

    def snap_lines(
        self,
        lines: Sequence[shapely.LineString],
        max_distance_m: float = LINE_STEP_M * 4,
        names: Sequence[str] | None = None,
    ) -> Snaps:
        """Each WGS84 line is one origin: its samples every ``LINE_STEP_M`` that lie within
        ``max_distance_m`` of a road. A line with no such sample is refused (by its name)."""
        metric = shapely.transform(np.asarray(lines, dtype=object), _metric_coords)
        samples, owners = [], []
        for k, line in enumerate(metric):
            steps = np.append(np.arange(0.0, line.length, LINE_STEP_M), line.length)
            samples.append(shapely.line_interpolate_point(line, steps))
            owners.append(np.full(len(steps), k))
        points = np.concatenate(samples)
        x, y = shapely.get_coordinates(points).T
        lon, lat = from_metric(x, y)
        snaps = self._snap(lon, lat, np.concatenate(owners), max_distance_m)
        missing = np.setdiff1d(np.arange(len(metric)), snaps.origin)
        if len(missing):
            name = names[int(missing[0])] if names is not None else f"#{int(missing[0])}"
            msg = (
                f"line origin {name} runs nowhere within {max_distance_m:g} m of a "
                f"road the {self.profile} profile can use"
            )
            raise NoRoadNearby(msg)
        return snaps

    def _snap(self, lon: Array, lat: Array, origin: NDArray, max_distance_m: float) -> Snaps:
        x, y = (np.asarray(v, dtype=float) for v in to_metric(lon, lat))
        points = shapely.points(x, y)
        hit, edge = self._nearest(x, y, points, max_distance_m)
        lines = self.edge_lines(edge, metric=True)
        fraction = shapely.line_locate_point(lines, points[hit], normalized=True)
        on_line = shapely.line_interpolate_point(lines, fraction, normalized=True)
        sx, sy = shapely.get_coordinates(on_line).T
        slon, slat = from_metric(sx, sy)
        return Snaps(
            origin=np.asarray(origin)[hit].astype(np.int64),
            edge=edge.astype(np.int64),
            fraction=np.clip(fraction, 0.0, 1.0),
            lon=np.asarray(slon),
            lat=np.asarray(slat),
            distance_m=shapely.distance(points[hit], on_line),
        )

    def _nearest(
        self, x: Array, y: Array, points: NDArray[np.object_], max_distance_m: float
    ) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """For each metric point (``x``, ``y``; ``points`` the same as shapely Points) with an
        edge within ``max_distance_m``: the point's index (ascending) and its nearest edge.

        Candidates come from the snapping table: squares of cells growing around each point,
        on the finest level first, until the nearest segment found is certainly the nearest
        of all (so every segment as near has been seen too) or none can be near enough; a
        point with no segment in its first cells goes on to the coarser level at once. The
        candidates' distances are then GEOS's, on the edges' lines in the roads' own
        direction; of equally near edges the smallest index wins."""
        levels = self._snap_table[2]
        best = np.full(len(x), np.inf)
        found: list[tuple[NDArray[np.int64], NDArray[np.int64], Array]] = []
        pending = np.flatnonzero(np.isfinite(x) & np.isfinite(y))
        for level, (x0, y0, nx_, ny_, cell, base) in enumerate(levels.tolist()):
            nx, ny, last = int(nx_), int(ny_), level == len(levels) - 1
            cx = np.floor((x[pending] - x0) / cell).astype(np.int64)
            cy = np.floor((y[pending] - y0) / cell).astype(np.int64)
            needed = int((max_distance_m + SNAP_TOLERANCE_M) // cell) + 1
            seen, width = -1, 0 if level == 0 else 1  # a finer level covered one cell
            coarser: list[NDArray[np.int64]] = []  # nothing near on this level's first cells
            while len(pending):
                dx, dy = np.meshgrid(np.arange(-width, width + 1), np.arange(-width, width + 1))
                ring = np.maximum(abs(dx), abs(dy)).ravel() > seen
                dx, dy = dx.ravel()[ring], dy.ravel()[ring]
                chunk = max(1, SNAP_CHUNK // len(dx))  # points looked up at once
                for at in range(0, len(pending), chunk):
                    some = slice(at, at + chunk)
                    found.append(
                        self._near_segments(
                            x,
                            y,
                            pending[some],
                            cx[some],
                            cy[some],
                            dx,
                            dy,
                            (nx, ny, int(base)),
                            max_distance_m,
                            best,
                        )
                    )
                radius = width * cell
                done = (
                    (best[pending] + SNAP_TOLERANCE_M <= radius)
                    | (width >= needed)
                    | ((cx - width <= 0) & (cx + width >= nx - 1))
                    & ((cy - width <= 0) & (cy + width >= ny - 1))
                )
                empty = ~done & np.isinf(best[pending]) & (width >= 2) & (not last)
                coarser.append(pending[empty])
                keep = ~done & ~empty
                pending, cx, cy = pending[keep], cx[keep], cy[keep]
                if width >= SNAP_MAX_CELLS and not last:
                    break  # on to the coarser level
                seen, width = width, min(max(1, 2 * width), needed)
            pending = np.sort(np.concatenate([pending, *coarser]))
        if not found:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
        point, coord, distance = (np.concatenate(a) for a in zip(*found, strict=True))
        close = distance <= best[point] + SNAP_TOLERANCE_M
        owner = np.searchsorted(self.line_at, coord[close], side="right") - 1
        pair = np.unique(point[close] * self.n_edges + owner)  # by point, then edge
        point, edge = pair // self.n_edges, pair % self.n_edges
        edges, which = np.unique(edge, return_inverse=True)
        exact = shapely.distance(points[point], self._lines(edges, metric=True)[which])
        nearest = np.full(len(x), np.inf)
        np.minimum.at(nearest, point, exact)
        keep = (exact == nearest[point]) & (exact <= max_distance_m)
        hit, first = np.unique(point[keep], return_index=True)
        return hit.astype(np.int64), edge[keep][first].astype(np.int64)

    def _near_segments(
        self,
        x: Array,
        y: Array,
        pending: NDArray[np.int64],
        cx: NDArray[np.int64],
        cy: NDArray[np.int64],
        dx: NDArray[np.int64],
        dy: NDArray[np.int64],
        level: tuple[int, int, int],
        max_distance_m: float,
        best: Array,
    ) -> tuple[NDArray[np.int64], NDArray[np.int64], Array]:
        """The segments listed in the cells (``cx + dx``, ``cy + dy``) of one level
        (``nx, ny, base``) of the snapping table around each ``pending`` point (whose cell
        is ``cx``, ``cy``) within ``max_distance_m`` of it and as near as the nearest found
        so far (``best``, per point, lowered here): the points, the segments' first
        coordinates and the distances (m, this table's own measure)."""
        keys, coords, _ = self._snap_table
        nx, ny, base = level
        at = np.repeat(np.arange(len(pending)), len(dx))
        qx, qy = cx[at] + np.tile(dx, len(pending)), cy[at] + np.tile(dy, len(pending))
        inside = (qx >= 0) & (qx < nx) & (qy >= 0) & (qy < ny)
        key = base + qy[inside] * nx + qx[inside]
        lo = np.searchsorted(keys, key, side="left")
        count = np.searchsorted(keys, key, side="right") - lo
        if count.sum() > SNAP_CHUNK * 16 and len(pending) > 1:  # coarse cells: fewer points
            half = len(pending) // 2
            parts = [
                self._near_segments(
                    x, y, pending[i], cx[i], cy[i], dx, dy, level, max_distance_m, best
                )
                for i in (slice(0, half), slice(half, None))
            ]
            return tuple(np.concatenate(a) for a in zip(*parts, strict=True))  # type: ignore[return-value]
        p = np.repeat(pending[at[inside]], count)
        j = coords[
            np.repeat(lo, count) + (np.arange(len(p)) - np.repeat(np.cumsum(count) - count, count))
        ]
        d = _segment_distance_m(x[p], y[p], self.metric_xy[j], self.metric_xy[j + 1])
        near = d <= max_distance_m + SNAP_TOLERANCE_M
        p, j, d = p[near], j[near], d[near]
        np.minimum.at(best, p, d)
        close = d <= best[p] + SNAP_TOLERANCE_M  # the others can never be the nearest
        return p[close], j[close], d[close]

    @cached_property
    def _snap_table(self) -> tuple[NDArray[np.int64], NDArray[np.int64], Array]:
        """The segments by square cell, on levels of cells ``SNAP_CELL_M`` wide and each
        next ``SNAP_MAX_CELLS`` times wider (until one level's cells cover the network a few
        times over): each segment listed in every cell its bounding box meets, as sorted
        keys (``base + row * nx + column``) and the index in ``metric_xy`` of the segment's
        first point, with each level's ``(x0, y0, nx, ny, cell, base)``. Geometry only (the
        roads' own direction): a reversed network shares it; mapped when the part has it."""
        built = self._built
        if built is not None:
            return built["snap_key"], built["snap_coord"], built["snap_levels"]
        xy = np.asarray(self.metric_xy)
        owner = np.repeat(np.arange(self.n_edges), np.diff(self.line_at))
        j = np.flatnonzero(owner[1:] == owner[:-1])
        low, high = np.minimum(xy[j], xy[j + 1]), np.maximum(xy[j], xy[j + 1])
        corner = xy.min(axis=0) if len(xy) else np.zeros(2)
        keys, coords, levels = [], [], []
        cell, base = SNAP_CELL_M, 0
        while True:
            c0 = np.floor((low - corner) / cell).astype(np.int64)
            c1 = np.floor((high - corner) / cell).astype(np.int64)
            nx, ny = int(c1[:, 0].max(initial=0)) + 1, int(c1[:, 1].max(initial=0)) + 1
            wide = c1[:, 0] - c0[:, 0] + 1
            count = wide * (c1[:, 1] - c0[:, 1] + 1)
            seg = np.repeat(np.arange(len(j)), count)
            k = np.arange(len(seg)) - np.repeat(np.cumsum(count) - count, count)
            key = base + (c0[seg, 1] + k // wide[seg]) * nx + c0[seg, 0] + k % wide[seg]
            order = np.argsort(key, kind="stable")
            keys.append(key[order])
            coords.append(j[seg[order]].astype(np.int64))
            levels.append([corner[0], corner[1], nx, ny, cell, base])
            if max(nx, ny) <= 4:
                break
            cell, base = cell * SNAP_MAX_CELLS, base + nx * ny
        return np.concatenate(keys), np.concatenate(coords), np.array(levels, dtype=float)

    # -- search ----------------------------------------------------------------------------

    def reach(self, snaps: Snaps, limit_s: float, *, local: bool | None = None) -> Reach:
        """Earliest arrival at every node within ``limit_s`` from the nearest origin.

        Output-sensitive on large networks: nothing can be reached farther from an origin
        than the network's top speed allows in ``limit_s``, so the search runs on the nodes
        within that distance and the edges touching them — unless they are most of the
        network (long or many-origin searches). ``local`` forces the choice (None: local
        from ``LOCAL_MIN_NODES`` nodes up, where whole-graph arrays start to cost more than
        the search)."""
        if not limit_s > 0:
            msg = f"time limit {limit_s!r} s must be > 0"
            raise InvalidInput(msg)
        if local is None:
            local = self.n_nodes >= LOCAL_MIN_NODES
        nodes = self._nodes_within(snaps, limit_s) if local else None
        if nodes is None:
            nodes, graph = np.arange(self.n_nodes), self.matrix
        else:
            graph = self._subgraph(nodes)
        m, k = len(nodes), snaps.n_origins
        e = snaps.edge
        rows, cols, weights = [], [], []
        for ends, cost, share in (
            (self.target, self.forward_s, 1.0 - snaps.fraction),
            (self.source, self.backward_s, snaps.fraction),
        ):
            ok = np.isfinite(cost[e]) | (share <= 0)  # standing on an end reaches it
            rows.append(m + snaps.origin[ok])
            cols.append(np.searchsorted(nodes, ends[e[ok]]))
            weights.append(ORIGIN_OFFSET_S + travel_s(share[ok], cost[e[ok]]))
        virtual = min_csr(
            np.concatenate(rows), np.concatenate(cols), np.concatenate(weights), m + k
        )
        full = csr_matrix(
            (
                np.concatenate([graph.data, virtual.data]),
                np.concatenate([graph.indices, virtual.indices]),
                np.concatenate([graph.indptr, virtual.indptr[m + 1 :] + graph.nnz]),
            ),
            shape=(m + k, m + k),
        )
        dist, predecessor, sources = dijkstra(
            full,
            directed=True,
            indices=np.arange(m, m + k),
            limit=limit_s + ORIGIN_OFFSET_S,
            min_only=True,
            return_predecessors=True,
        )
        time = dist[:m] - ORIGIN_OFFSET_S
        origin = np.where(np.isfinite(time), sources[:m] - m, -1).astype(np.int64)
        edges = None if m == self.n_nodes else self._edges_touching(nodes)
        return Reach(self, snaps, limit_s, nodes, time, origin, edges, predecessor[:m])

    @cached_property
    def top_speed_mps(self) -> float:
        """The fastest any edge is travelled, metres per second (``inf`` if an edge of some
        length costs nothing)."""
        cost = np.concatenate([self.forward_s, self.backward_s])
        length = np.concatenate([self.length_m, self.length_m])
        usable = np.isfinite(cost)
        if ((cost[usable] <= 0) & (length[usable] > 0)).any():
            return float("inf")
        moving = usable & (cost > 0)
        return float((length[moving] / cost[moving]).max(initial=1.0))

    @cached_property
    def _buckets(self) -> tuple[Array, NDArray[np.int64], NDArray[np.int64], tuple[int, int]]:
        """The nodes with a position (every node an edge touches) sorted by square bucket:
        the grid's origin, the bucket of each sorted node, the nodes, the grid's shape."""
        xy = self.node_xy_metric
        placed = np.flatnonzero(np.isfinite(xy).all(axis=1))
        lo = xy[placed].min(axis=0) if len(placed) else np.zeros(2)
        cell = np.floor((xy[placed] - lo) / BUCKET_M).astype(np.int64)
        shape = (int(cell[:, 0].max(initial=0)) + 1, int(cell[:, 1].max(initial=0)) + 1)
        key = cell[:, 1] * shape[0] + cell[:, 0]
        order = np.argsort(key, kind="stable")
        return lo, key[order], placed[order], shape

    @cached_property
    def _incident(self) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """Each node's edges (either end), as CSR: ``edges[start[i]:start[i + 1]]``."""
        ends = np.concatenate([self.source, self.target])
        edge = np.concatenate([np.arange(self.n_edges)] * 2)
        order = np.argsort(ends, kind="stable")
        start = np.searchsorted(ends[order], np.arange(self.n_nodes + 1))
        return start, edge[order]

    def _nodes_within(self, snaps: Snaps, limit_s: float) -> NDArray[np.int64] | None:
        """The nodes an origin could reach at top speed (sorted), or None when that is
        more than ``LOCAL_SHARE`` of the network."""
        radius = self.top_speed_mps * limit_s + 1.0
        if len(snaps.edge) == 0 or not np.isfinite(radius):
            return None
        centres = self.points_along_edges(snaps.edge, snaps.fraction)
        lo, keys, placed, (nx, ny) = self._buckets
        # the buckets meeting the box around the centres, grown by the radius: a superset of
        # the ball, so nothing reachable is left out
        (x0, y0), (x1, y1) = (
            np.floor((centres.min(axis=0) - radius - lo) / BUCKET_M).astype(int),
            np.floor((centres.max(axis=0) + radius - lo) / BUCKET_M).astype(int),
        )
        bx = np.arange(max(x0, 0), min(x1, nx - 1) + 1)
        by = np.arange(max(y0, 0), min(y1, ny - 1) + 1)
        if len(bx) * len(by) > LOCAL_SHARE * nx * ny:
            return None
        wanted = (by[:, None] * nx + bx[None, :]).ravel()
        first = np.searchsorted(keys, wanted, side="left")
        count = np.searchsorted(keys, wanted, side="right") - first
        position = np.repeat(first, count) + (
            np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
        )
        nodes = np.unique(
            np.concatenate([placed[position], self.source[snaps.edge], self.target[snaps.edge]])
        )
        return None if len(nodes) > LOCAL_SHARE * self.n_nodes else nodes

    def _subgraph(self, nodes: NDArray[np.int64]) -> csr_matrix:
        """The graph among ``nodes`` (sorted), in their order, without touching the rest."""
        indptr = self.matrix.indptr
        start, count = indptr[nodes], indptr[nodes + 1] - indptr[nodes]
        position = np.repeat(start, count) + (
            np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
        )
        row = np.repeat(np.arange(len(nodes)), count)
        col_global = self.matrix.indices[position]
        col = np.searchsorted(nodes, col_global)
        keep = (col < len(nodes)) & (nodes[np.minimum(col, len(nodes) - 1)] == col_global)
        return csr_matrix(
            (
                self.matrix.data[position][keep],
                col[keep],
                np.concatenate([[0], np.cumsum(np.bincount(row[keep], minlength=len(nodes)))]),
            ),
            shape=(len(nodes), len(nodes)),
        )

    def _edges_touching(self, nodes: NDArray[np.int64]) -> NDArray[np.int64]:
        start, edges = self._incident
        count = start[nodes + 1] - start[nodes]
        position = np.repeat(start[nodes], count) + (
            np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
        )
        return np.unique(edges[position])


@dataclass(frozen=True)
class Pieces:
    """Reached parts of edges: edge ``edge`` from fraction ``start`` to ``end``."""

    edge: NDArray[np.int64]
    start: Array
    end: Array


@dataclass(frozen=True)
class Reach:
    """One search's answer: the times of the nodes searched (``inf`` beyond the limit) and
    which origin reached each first. ``nodes`` are the (sorted) nodes searched — all of
    them, or those a local search looked at; ``edges`` the edges touching them (None: all)."""

    network: Network
    snaps: Snaps
    limit_s: float
    nodes: NDArray[np.int64]
    time: Array
    origin: NDArray[np.int64]
    edges: NDArray[np.int64] | None = None
    predecessor: NDArray[np.int32] | None = None
    """Per searched node, the one before it on its fastest path (positions in ``nodes``;
    ``len(nodes) + i`` for origin ``i``, negative for none)."""

    def path_nodes(self, node: int) -> tuple[list[int], int] | None:
        """The fastest path to (global) ``node``, from ``node`` back to the first node the
        origin reached, and that origin; None when ``node`` was not reached."""
        nodes, before = self.nodes, self.predecessor
        if before is None:
            msg = "this search kept no predecessors"
            raise ValueError(msg)
        m = len(nodes)
        here = int(np.searchsorted(nodes, node))
        if here >= m or nodes[here] != node or not np.isfinite(self.time[here]):
            return None
        path = [int(nodes[here])]
        while 0 <= (back := int(before[here])) < m:
            path.append(int(nodes[back]))
            here = back
        return path, back - m

    def first_step(self, origin: int, end: int) -> tuple[int, float, float] | None:
        """How ``origin`` reached node ``end`` first: the snapped row (of those on an edge
        ending there, the quickest), the share of its edge travelled and its metres."""
        net, s = self.network, self.snaps
        steps = []
        for i in np.flatnonzero(s.origin == origin).tolist():
            e = int(s.edge[i])
            for share, cost, reached in (
                (1.0 - s.fraction[i], net.forward_s[e], net.target[e]),
                (s.fraction[i], net.backward_s[e], net.source[e]),
            ):
                if reached == end:
                    seconds = float(travel_s(share, cost))
                    steps.append((seconds, float(share * net.length_m[e]), i, float(share)))
        if not steps:
            return None
        _, metres, row, share = min(steps)
        return row, share, metres

    def path_length_m(self, node: int) -> float:
        """Metres along the fastest path from the nearest origin to (global) ``node``."""
        found = self.path_nodes(node)
        if found is None:
            return float("inf")
        path, origin = found
        net = self.network
        total = sum(net.arc_length_m(tail, head) for head, tail in itertools.pairwise(path))
        # the first step: from the origin's point along its own edge to this end
        step = self.first_step(origin, path[-1])
        return total + step[2] if step is not None else total

    def times_of(self, node: NDArray[np.int64]) -> Array:
        """Arrival times at (global) nodes; ``inf`` for nodes not reached or not searched."""
        if self.edges is None:
            return self.time[node]
        position = np.minimum(np.searchsorted(self.nodes, node), len(self.nodes) - 1)
        return np.where(self.nodes[position] == node, self.time[position], np.inf)

    @property
    def node_time(self) -> Array:
        """Arrival time at every node of the network (``inf`` where not reached)."""
        if self.edges is None:
            return self.time
        full = np.full(self.network.n_nodes, np.inf)
        full[self.nodes] = self.time
        return full

    @property
    def node_origin(self) -> NDArray[np.int64]:
        """Which origin reached every node first (-1 where none did)."""
        if self.edges is None:
            return self.origin
        full = np.full(self.network.n_nodes, -1, dtype=np.int64)
        full[self.nodes] = self.origin
        return full

    @cached_property
    def _reached_ends(self) -> tuple[NDArray[np.int64], Array, Array]:
        """The edges with a reached end and the arrival times at their source and target,
        found once for every band cut from this search."""
        net = self.network
        edges = np.arange(net.n_edges) if self.edges is None else self.edges
        t_u, t_v = self.times_of(net.source[edges]), self.times_of(net.target[edges])
        some = np.isfinite(t_u) | np.isfinite(t_v)
        return edges[some], t_u[some], t_v[some]

    def pieces(self, seconds: float) -> Pieces:
        """The exact parts of edges reachable within ``seconds`` (at most the search limit),
        at most two per edge, sorted by edge."""
        if seconds > self.limit_s * (1 + 1e-12):
            msg = f"{seconds} s is beyond this search's limit of {self.limit_s} s"
            raise InvalidInput(msg)
        net = self.network
        edges, t_u, t_v = self._reached_ends
        from_u = _share(seconds - t_u, net.forward_s[edges])
        from_v = _share(seconds - t_v, net.backward_s[edges])
        whole = from_u + from_v >= 1.0
        head = ~whole & (from_u > 0)
        tail = ~whole & (from_v > 0)
        edge = np.concatenate([edges[whole], edges[head], edges[tail]])
        start = np.concatenate([np.zeros(whole.sum() + head.sum()), 1.0 - from_v[tail]])
        end = np.concatenate([np.ones(whole.sum()), from_u[head], np.ones(tail.sum())])
        # origins split their own edges: merge those few edges' intervals one by one
        s = self.snaps
        with np.errstate(divide="ignore"):
            ahead = seconds / net.forward_s[s.edge]
            behind = seconds / net.backward_s[s.edge]
        mine = np.isin(edge, s.edge)
        merged = _merge(
            np.concatenate([edge[mine], s.edge, s.edge]),
            np.concatenate([start[mine], s.fraction, np.maximum(0.0, s.fraction - behind)]),
            np.concatenate([end[mine], np.minimum(1.0, s.fraction + ahead), s.fraction]),
        )
        edge = np.concatenate([edge[~mine], merged.edge])
        start = np.concatenate([start[~mine], merged.start])
        end = np.concatenate([end[~mine], merged.end])
        order = np.lexsort((start, edge))
        return Pieces(edge[order], start[order], end[order])

    def time_at(self, edge: NDArray[np.int64], fraction: Array) -> Array:
        """Earliest arrival at points on edges (``inf`` if not within the limit)."""
        net = self.network
        edge, fraction = np.asarray(edge), np.asarray(fraction, dtype=float)
        best = np.minimum(
            self.times_of(net.source[edge]) + travel_s(fraction, net.forward_s[edge]),
            self.times_of(net.target[edge]) + travel_s(1.0 - fraction, net.backward_s[edge]),
        )
        # points on an origin's own edge: pair each with every origin snapped to that edge
        s = self.snaps
        by_edge = np.argsort(s.edge, kind="stable")
        snap_edge, snap_fraction = s.edge[by_edge], s.fraction[by_edge]
        lo = np.searchsorted(snap_edge, edge, side="left")
        hi = np.searchsorted(snap_edge, edge, side="right")
        point = np.repeat(np.arange(len(edge)), hi - lo)
        pair = np.repeat(lo, hi - lo) + (
            np.arange(len(point)) - np.repeat(np.cumsum(hi - lo) - (hi - lo), hi - lo)
        )
        x, f, e = fraction[point], snap_fraction[pair], edge[point]
        along = np.where(
            x >= f, travel_s(x - f, net.forward_s[e]), travel_s(f - x, net.backward_s[e])
        )
        np.minimum.at(best, point, along)
        return np.where(best <= self.limit_s, best, np.inf)

    def lines(self, seconds: float) -> NDArray[np.object_]:
        """Reached parts as LineStrings in the metric CRS (EPSG:4547)."""
        return cut_lines(self.network, self.pieces(seconds), metric=True)

    def reached_edges(self, seconds: float) -> pd.DataFrame:
        """The exact answer for planners: one row per reached part, WGS84 geometry."""
        pieces = self.pieces(seconds)
        net = self.network
        parts = cut_lines(net, pieces)
        return pd.DataFrame(
            {
                "edge_id": net.edge_ids[pieces.edge],
                "name": net.names[pieces.edge],
                "start_fraction": pieces.start,
                "end_fraction": pieces.end,
                "length_m": net.length_m[pieces.edge] * (pieces.end - pieces.start),
                "geometry": parts,
            }
        )


def travel_s(share: Array | float, cost_s: Array | float) -> Array:
    """Seconds to cover ``share`` of an edge (0 for no distance, even where forbidden)."""
    with np.errstate(invalid="ignore"):
        return np.where(np.asarray(share) <= 0, 0.0, np.multiply(share, cost_s))


def _share(spare_s: Array, cost_s: Array) -> Array:
    """Fraction of an edge covered with ``spare_s`` seconds left at its start (0 if none)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.clip(spare_s / cost_s, 0.0, 1.0)
    return np.where(spare_s >= 0, np.nan_to_num(share, nan=1.0), 0.0)


def _merge(edge: NDArray[np.int64], start: Array, end: Array) -> Pieces:
    """Union of intervals per edge; empty ones dropped."""
    keep = end > start
    edge, start, end = edge[keep], start[keep], end[keep]
    order = np.lexsort((start, edge))
    edge, start, end = edge[order], start[order], end[order]
    out_e: list[int] = []
    out_s: list[float] = []
    out_t: list[float] = []
    for e, s, t in zip(edge.tolist(), start.tolist(), end.tolist(), strict=True):
        if out_e and out_e[-1] == e and s <= out_t[-1]:
            out_t[-1] = max(out_t[-1], t)
        else:
            out_e.append(e)
            out_s.append(s)
            out_t.append(t)
    return Pieces(np.array(out_e, dtype=np.int64), np.array(out_s), np.array(out_t))


def cut_lines(network: Network, pieces: Pieces, *, metric: bool = False) -> NDArray[np.object_]:
    """The part of each piece's edge between its fractions (whole lines where [0, 1]), as
    LineStrings built from the network's coordinates: WGS84, or EPSG:4547 with ``metric``."""
    out = network.edge_lines(pieces.edge, metric=metric)
    partial = np.flatnonzero((pieces.start > 0) | (pieces.end < 1))
    for i in partial.tolist():
        out[i] = substring(out[i], pieces.start[i], pieces.end[i])
    return out


def substring(line: shapely.LineString, start: float, end: float) -> shapely.LineString:
    """The part of ``line`` between two length fractions."""
    xy = shapely.get_coordinates(line)
    along = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(xy, axis=0).T))])
    total = along[-1]
    if total == 0:
        return line
    a, b = start * total, end * total
    inner = (along > a) & (along < b)
    ends = (
        [np.interp(v, along, xy[:, 0]) for v in (a, b)],
        [np.interp(v, along, xy[:, 1]) for v in (a, b)],
    )
    coords = np.vstack([[ends[0][0], ends[1][0]], xy[inner], [ends[0][1], ends[1][1]]])
    return shapely.linestrings(coords)


def _segment_distance_m(px: Array | float, py: Array | float, a: Array, b: Array) -> Array:
    """Distances (m) from points to segments ``a``-``b`` (metric), the way GEOS measures
    them (``Distance::pointToSegment``), up to floating point."""
    ax, ay, bx, by = a[:, 0], a[:, 1], b[:, 0], b[:, 1]
    ex, ey = bx - ax, by - ay
    squared = ex * ex + ey * ey
    with np.errstate(invalid="ignore", divide="ignore"):
        r = ((px - ax) * ex + (py - ay) * ey) / squared
        across = np.abs(((ay - py) * ex - (ax - px) * ey) / squared) * np.sqrt(squared)
    to_a = np.sqrt((px - ax) ** 2 + (py - ay) ** 2)
    to_b = np.sqrt((px - bx) ** 2 + (py - by) ** 2)
    return np.where((squared == 0) | (r <= 0), to_a, np.where(r >= 1, to_b, across))


def _metric_coords(xy: Array) -> Array:
    x, y = to_metric(xy[:, 0], xy[:, 1])
    return np.column_stack([x, y])


def roads_snapshot_id(conn: sa.Connection, version: int) -> int | None:
    """The roads snapshot a dataset version uses (None if it has no roads)."""
    return conn.execute(
        sa.text(
            "SELECT snapshot_id FROM geoservice.dataset_version_layer "
            "WHERE version_id = :v AND layer = 'roads'"
        ),
        {"v": version},
    ).scalar()


def read_edges(engine: Engine, version: int | None = None) -> tuple[int, int, pd.DataFrame]:
    """A dataset version's id (default: the current one), its roads snapshot id and its road
    edges, read in one transaction."""
    with engine.connect() as conn:
        version = resolve_version(conn, version)
        snapshot_id = roads_snapshot_id(conn, version)
        rows = conn.execute(
            sa.text(
                "SELECT id, source, target, length_m, highway, maxspeed_kmh, oneway, name, "
                "ST_AsBinary(geom) FROM geoservice.road_edge WHERE snapshot_id = :s ORDER BY id"
            ),
            {"s": snapshot_id},
        ).all()
    if snapshot_id is None or not rows:
        msg = f"dataset version {version} has no road network: load one with `geoservice etl roads`"
        raise NoDataset(msg)
    columns = ["id", "source", "target", "length_m", "highway", "maxspeed_kmh", "oneway", "name"]
    frame = pd.DataFrame(rows, columns=[*columns, "wkb"])
    frame["geometry"] = shapely.from_wkb(frame.pop("wkb").map(bytes).to_numpy())
    return version, int(snapshot_id), frame


def load_network(
    engine: Engine, profile: str | Profile = "car", version: int | None = None
) -> Network:
    """A dataset version's network (default: the current one) for ``profile`` (name, JSON
    path or Profile)."""
    chosen = profile if isinstance(profile, Profile) else load_profile(profile)
    version, snapshot_id, frame = read_edges(engine, version)
    return Network.from_frame(frame, version=version, profile=chosen, snapshot_id=snapshot_id)
