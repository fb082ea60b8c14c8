"""What-if changes to the roads and the origins, applied to copies."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from geoservice.coverage.origins import Origins, combine
from geoservice.errors import InvalidInput, shown
from geoservice.network import Network


@dataclass(frozen=True)
class Scenario:
    """Hypothetical changes, evaluated without touching the published dataset."""

    add_points: tuple[tuple[float, float], ...] = ()  # new patrol points, WGS84
    remove_origins: tuple[str, ...] = ()  # station, post or patrol segment codes
    close_edges: tuple[int, ...] = ()  # road edge ids (road_edges.id)
    close_roads: tuple[str, ...] = ()  # road names, e.g. a bridge: "东江2号桥"
    speeds_kmh: dict[str, float] = field(default_factory=dict)  # highway class -> km/h

    def apply(self, network: Network, origins: Origins) -> tuple[Network, Origins]:
        """The changed network and origins; unknown edges, roads, classes or origin codes
        are refused by name."""
        missing = sorted(set(self.remove_origins) - set(origins.codes))
        if missing:
            msg = (
                f"remove_origins: no origin with code {missing[:5]} "
                f"among the {len(origins.codes)} in use"
            )
            raise InvalidInput(msg)
        position = {int(e): i for i, e in enumerate(network.edge_ids)}
        unknown_edges = [e for e in self.close_edges if e not in position]
        if unknown_edges:
            msg = (
                f"close_edges: no road edge with id {unknown_edges[:5]} "
                f"in the {network.profile} network"
            )
            raise InvalidInput(msg)
        closed = [position[e] for e in self.close_edges]
        for name in self.close_roads:
            hit = np.flatnonzero(network.names == name)
            if not len(hit):
                msg = f"close_roads: no road named {shown(name)} in the {network.profile} network"
                raise InvalidInput(msg)
            closed += hit.tolist()
        classes = set(network.highway.tolist())
        unknown_classes = sorted(set(self.speeds_kmh) - classes)
        if unknown_classes:
            msg = f"speeds_kmh: no road of class {unknown_classes} (classes: {sorted(classes)})"
            raise InvalidInput(msg)
        changed = network
        if closed or self.speeds_kmh:
            changed = network.with_changes(np.array(closed, dtype=np.int64), self.speeds_kmh)
        removed = set(self.remove_origins)
        parts = [origins.only([i for i, code in enumerate(origins.codes) if code not in removed])]
        if self.add_points:
            lon, lat = zip(*self.add_points, strict=True)
            snaps = changed.snap_points(lon, lat)
            names = [f"added-{i + 1}" for i in range(len(lon))]
            parts.append(Origins(snaps, names, ["added"] * len(names)))
        return changed, combine(parts)
