"""The road network: ``graph`` holds it whole for now (split next)."""

from geoservice.network.graph import (
    Network,
    NoRoadNearby,
    Pieces,
    Reach,
    Snaps,
    load_network,
    roads_snapshot_id,
    substring,
    travel_s,
)

__all__ = [
    "Network",
    "NoRoadNearby",
    "Pieces",
    "Reach",
    "Snaps",
    "load_network",
    "roads_snapshot_id",
    "substring",
    "travel_s",
]
