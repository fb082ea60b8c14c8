"""The road network as a directed graph: CSR arrays per dataset version and profile,
origins snapped onto edges, and one multi-source time-limited search with partial edges.

- ``graph``: ``Network``, immutable, per roads snapshot and profile: the edges and their
  costs, the graph as CSR (``csr``: the minimum of parallel edges, zero-cost edges kept),
  the geometry as coordinate arrays (``geometry``), its reverse and what-if copies.
- ``load``: a version's roads read through its ``VersionReader``, costed for a profile.
- ``snapping``: origins onto the nearest usable edge through a table of segments by cell.
- ``search``: one ``dijkstra(min_only=True)`` from virtual origin nodes, local on large
  networks; ``reached``: its answer (``Reach``), exact reached parts and point times.
- ``parts``: a network as a part of the state directory, and mapped back.
"""

from geoservice.network.geometry import substring
from geoservice.network.graph import Network
from geoservice.network.load import load_network
from geoservice.network.reached import Pieces, Reach, travel_s
from geoservice.network.snapping import NoRoadNearby, Snaps

__all__ = [
    "Network",
    "NoRoadNearby",
    "Pieces",
    "Reach",
    "Snaps",
    "load_network",
    "substring",
    "travel_s",
]
