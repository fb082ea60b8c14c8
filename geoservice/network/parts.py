"""A network as a part of the state directory (``geoservice/state_files.py``): the arrays
``network_part`` writes and ``NetworkPart``, the same arrays mapped back, so that a process
uses a published version's network without reading the roads, building the graph (nor its
reverse) or the segment and snapping tables."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
from numpy.typing import NDArray
from scipy.sparse import csr_matrix

from geoservice.network.geometry import Segments
from geoservice.network.snapping import SnapTable
from geoservice.state_files import MappedPart, Part

if TYPE_CHECKING:
    from geoservice.network.graph import Network


def network_part(network: Network) -> Part:
    """``network`` (not a reversed one) as arrays and metadata: its edges, coordinates,
    graph and reversed graph, segment and snapping tables."""
    if network.backwards:
        msg = "a reversed network is stored as the network it reverses"
        raise ValueError(msg)
    highways, highway_code = np.unique(network.highway.astype(str), return_inverse=True)
    segments, snap_table = network.segments, network.snap_table
    arrays = {
        "edge_ids": network.edge_ids,
        "source": network.source,
        "target": network.target,
        "forward_s": network.forward_s,
        "backward_s": network.backward_s,
        "node_ids": network.node_ids,
        "class_speed": network.class_speed,
        "highway": highway_code.astype(np.int32),
        "names": np.frombuffer(orjson.dumps(network.names.tolist()), dtype=np.uint8),
        "xy": network.xy,
        "metric_xy": network.metric_xy,
        "line_at": network.line_at,
        "length_m": network.length_m,
        "seg_a": segments.a,
        "seg_b": segments.b,
        "seg_start": segments.start,
        "seg_end": segments.end,
        "seg_first": segments.first,
        "segment_keys": segments.keys,
        "snap_key": snap_table.key,
        "snap_coord": snap_table.coord,
        "snap_levels": snap_table.levels,
    }
    for prefix, net in (("", network), ("reverse_", network.reversed())):
        arrays[f"{prefix}matrix_data"] = net.matrix.data
        arrays[f"{prefix}matrix_indices"] = net.matrix.indices
        arrays[f"{prefix}matrix_indptr"] = net.matrix.indptr
        arrays[f"{prefix}matrix_edge"] = net.matrix_edge
    meta = {
        "version": network.version,
        "snapshot_id": network.snapshot_id,
        "profile": network.profile,
        "highways": highways.tolist(),
    }
    return Part(arrays, meta)


class NetworkPart:
    """A network's part as ``network_part`` wrote it, mapped from the state directory: its
    arrays read-only from the page cache, none copied."""

    def __init__(self, built: MappedPart) -> None:
        self.built = built  # keeps the mapping (and its shared lock) as long as this object

    def edges(self) -> dict[str, Any]:
        """The edges' arrays and the roads snapshot, as ``Network`` takes them."""
        built = self.built
        highways = np.array(built.meta["highways"], dtype=object)
        return {
            "snapshot_id": built.meta["snapshot_id"],
            "profile": built.meta["profile"],
            "edge_ids": built["edge_ids"],
            "source": built["source"],
            "target": built["target"],
            "forward_s": built["forward_s"],
            "backward_s": built["backward_s"],
            "node_ids": built["node_ids"],
            "highway": highways[built["highway"]],
            "class_speed": built["class_speed"],
        }

    def geometry(
        self,
    ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.int64], NDArray[np.float64]]:
        """The coordinates (WGS84, metric), where each edge's start (``line_at``) and the
        edges' lengths."""
        built = self.built
        return built["xy"], built["metric_xy"], built["line_at"], built["length_m"]

    def graph(self, n_nodes: int, *, reverse: bool = False) -> tuple[csr_matrix, NDArray[np.int64]]:
        """The graph (or with ``reverse`` the reversed graph) as CSR and which edge each
        entry travels."""
        built, prefix = self.built, "reverse_" if reverse else ""
        matrix = csr_matrix(
            (
                built[f"{prefix}matrix_data"],
                built[f"{prefix}matrix_indices"],
                built[f"{prefix}matrix_indptr"],
            ),
            shape=(n_nodes, n_nodes),
            copy=False,
        )
        return matrix, built[f"{prefix}matrix_edge"]

    def segments(self) -> Segments:
        """The segments in the roads' own direction."""
        built = self.built
        return Segments(
            built["seg_a"],
            built["seg_b"],
            built["seg_start"],
            built["seg_end"],
            built["seg_first"],
            built["segment_keys"],
        )

    def snap_table(self) -> SnapTable:
        built = self.built
        return SnapTable(built["snap_key"], built["snap_coord"], built["snap_levels"])

    def names(self) -> NDArray[np.object_]:
        """Each edge's road name (None where it has none), decoded now."""
        return np.array(orjson.loads(self.built["names"].tobytes()) or [], dtype=object)
