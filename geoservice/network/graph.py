"""``Network``: the immutable directed road graph of one dataset version for one profile —
edges as CSR arrays (the minimum of parallel edges), their geometry as coordinate arrays —
and what is asked of it: snapping (``snapping``), searches (``search``), its reverse and
what-if copies, and its part of the state directory (``parts``)."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from functools import cached_property

import numpy as np
import shapely
from numpy.typing import NDArray
from scipy.sparse import csr_matrix

from geoservice.crs import to_metric
from geoservice.network import search, snapping
from geoservice.network.csr import edge_graph
from geoservice.network.geometry import Segments, edge_lines, metric_coords
from geoservice.network.parts import NetworkPart, network_part
from geoservice.network.reached import Pieces, Reach
from geoservice.network.snapping import LINE_STEP_M, SNAP_LIMIT_M, Snaps, SnapTable
from geoservice.state_files import MappedPart, Part

Array = NDArray[np.float64]


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
        stored: NetworkPart | None = None,
    ) -> None:
        """``source``/``target`` are node indices 0..n-1; ``lines`` are LineStrings in
        WGS84 running from source to target (kept only as their coordinates); ``inf`` costs
        mark forbidden directions. ``stored``: this network as ``to_part`` wrote it (mapped
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
        if names is not None or stored is None:
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
        self._stored = stored
        self._stored_graph = stored is not None  # whether ``matrix`` is the part's
        if stored is None:
            assert lines is not None, "a network needs its lines or its part"
            xy, owner = shapely.get_coordinates(lines, return_index=True)
            self.xy: Array = xy
            self.line_at: NDArray[np.int64] = np.searchsorted(
                owner, np.arange(len(edge_ids) + 1)
            ).astype(np.int64)
            self.metric_xy: Array = metric_coords(xy)
            self.length_m = shapely.length(
                edge_lines(self.metric_xy, self.line_at, np.arange(len(edge_ids)))
            )
            self.matrix, self.matrix_edge = self._graph()
        else:
            self.xy, self.metric_xy, self.line_at, self.length_m = stored.geometry()
            self.matrix, self.matrix_edge = stored.graph(self.n_nodes)

    def to_part(self) -> Part:
        """This network as arrays and metadata, for the state directory (``network_part``)."""
        return network_part(self)

    @classmethod
    def from_part(cls, built: MappedPart, version: int) -> Network:
        """The network ``to_part`` wrote, labelled with ``version`` (same roads snapshot)."""
        stored = NetworkPart(built)
        return cls(version=version, **stored.edges(), stored=stored)

    @cached_property
    def names(self) -> NDArray[np.object_]:
        """Each edge's road name (None where it has none), read from the part on first use."""
        assert self._stored is not None
        return self._stored.names()

    @property
    def n_edges(self) -> int:
        return len(self.edge_ids)

    def _graph(self) -> tuple[csr_matrix, NDArray[np.int64]]:
        """The graph as CSR and which edge each entry travels, from the costs."""
        return edge_graph(self.source, self.target, self.forward_s, self.backward_s, self.n_nodes)

    # -- copies ----------------------------------------------------------------------------

    def reversed(self) -> Network:
        """The same roads with every direction turned round (edges run target -> source,
        lines reversed, costs kept): a search from a point on it gives the time from every
        place *to* that point — what responders need to reach an incident. The coordinates
        and the snapping table are shared; a mapped network's reversed graph is mapped too."""
        clone = copy.copy(self)
        clone.source, clone.target = self.target, self.source
        clone.backwards = not self.backwards
        for cached in ("segments", "lines", "lines_metric"):
            clone.__dict__.pop(cached, None)
        if self._stored is not None and self._stored_graph:
            clone.matrix, clone.matrix_edge = self._stored.graph(
                self.n_nodes, reverse=clone.backwards
            )
        else:
            clone.matrix, clone.matrix_edge = clone._graph()
        return clone

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
        clone.matrix, clone.matrix_edge = clone._graph()
        clone._stored_graph = False  # the stored graphs have the old costs
        return clone

    def at_version(self, version: int) -> Network:
        """This network (same roads) labelled with a later dataset version."""
        clone = copy.copy(self)
        clone.version = version
        return clone

    # -- geometry from the coordinates -----------------------------------------------------

    def edge_lines(self, edges: NDArray[np.int64], *, metric: bool = False) -> NDArray[np.object_]:
        """LineStrings of ``edges`` (indices), running source -> target of this network,
        built now from the coordinates: WGS84, or EPSG:4547 with ``metric``."""
        xy = self.metric_xy if metric else self.xy
        return edge_lines(xy, self.line_at, edges, reverse=self.backwards)

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
        return shapely.STRtree(edge_lines(self.metric_xy, self.line_at, np.arange(self.n_edges)))

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
    def segments(self) -> Segments:
        """Every straight segment of every edge in metres, in this network's direction
        (mapped when the part has them)."""
        if self._stored is not None and not self.backwards:
            return self._stored.segments()
        return Segments.of(self.metric_xy, self.line_at, self.length_m, backwards=self.backwards)

    def points_along_edges(self, edge: NDArray[np.int64], fraction: Array) -> Array:
        """Metric (x, y) of points at length fractions along edges."""
        return self.segments.points_along(edge, fraction)

    def points_on(self, pieces: Pieces, step: float) -> Array:
        """Metric points along reached parts: both ends and at most ``step`` apart."""
        return self.segments.points_on(pieces.edge, pieces.start, pieces.end, step)

    # -- the graph -------------------------------------------------------------------------

    def arc_edge(self, tail: int, head: int) -> int:
        """The edge the search travels from node ``tail`` to node ``head``."""
        indptr, indices = self.matrix.indptr, self.matrix.indices
        lo, hi = indptr[tail], indptr[tail + 1]
        entry = lo + int(np.searchsorted(indices[lo:hi], head))
        return int(self.matrix_edge[entry])

    def arc_length_m(self, tail: int, head: int) -> float:
        """Length of the edge the search travels from node ``tail`` to node ``head``."""
        return float(self.length_m[self.arc_edge(tail, head)])

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

    # -- origins and searches --------------------------------------------------------------

    @cached_property
    def snap_table(self) -> SnapTable:
        """The segments by square cell (geometry only, shared with the reverse; mapped when
        the part has it)."""
        if self._stored is not None:
            return self._stored.snap_table()
        return SnapTable.of(self.metric_xy, self.line_at)

    def snap_points(
        self,
        lon: Sequence[float] | Array,
        lat: Sequence[float] | Array,
        max_distance_m: float = SNAP_LIMIT_M,
        *,
        strict: bool = True,
    ) -> Snaps:
        """Each point onto the nearest usable edge (``snapping.snap_points``)."""
        return snapping.snap_points(self, lon, lat, max_distance_m, strict=strict)

    def snap_lines(
        self,
        lines: Sequence[shapely.LineString],
        max_distance_m: float = LINE_STEP_M * 4,
        names: Sequence[str] | None = None,
    ) -> Snaps:
        """Each WGS84 line as one origin (``snapping.snap_lines``)."""
        return snapping.snap_lines(self, lines, max_distance_m, names)

    def reach(self, snaps: Snaps, limit_s: float, *, local: bool | None = None) -> Reach:
        """Earliest arrival at every node within ``limit_s`` from the nearest origin
        (``search.reach``)."""
        return search.reach(self, snaps, limit_s, local=local)

    @cached_property
    def node_buckets(self) -> search.NodeBuckets:
        """The nodes by square bucket, for local searches (built on first use)."""
        return search.NodeBuckets.of(self.node_xy_metric)

    @cached_property
    def incident_edges(self) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """Each node's edges (either end), as CSR (built on first use)."""
        return search.incident_edges(self.source, self.target, self.n_nodes)
