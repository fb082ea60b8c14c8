"""A dataset version's roads read through its ``VersionReader`` and built into a
``Network`` for a profile.

Costs are recomputed per profile from each edge's length, class, ``maxspeed`` and one-way
flag (:meth:`Profile.speed_kmh`); for the default ``car`` profile they equal the
``cost``/``reverse_cost`` stored in ``road_edge``. Edges the profile cannot use are left out.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray
from sqlalchemy.engine import Engine

from geoservice.errors import NoDataset
from geoservice.missing import objects
from geoservice.network.graph import Network
from geoservice.profiles import Profile, load_profile
from geoservice.store import VersionReader

Array = NDArray[np.float64]

EDGE_COLUMNS = ["id", "source", "target", "length_m", "highway", "maxspeed_kmh", "oneway", "name"]
"""The columns of ``road_edge`` a network is built from (with the geometry)."""


def load_network(
    engine: Engine, profile: str | Profile = "car", version: int | None = None
) -> Network:
    """A dataset version's network (default: the current one) for ``profile`` (name, JSON
    path or Profile)."""
    chosen = profile if isinstance(profile, Profile) else load_profile(profile)
    version, snapshot_id, frame = read_edges(engine, version)
    return network_from_edges(frame, version=version, profile=chosen, snapshot_id=snapshot_id)


def read_edges(engine: Engine, version: int | None = None) -> tuple[int, int, pd.DataFrame]:
    """A dataset version's id (default: the current one), its roads snapshot id and its road
    edges, read in one transaction."""
    with VersionReader.open(engine, version) as reader:
        snapshot_id = reader.snapshot_id("roads")
        rows = reader.all(
            f"SELECT {', '.join(EDGE_COLUMNS)}, ST_AsBinary(geom) FROM {{road_edge}} e ORDER BY id"
        )
    if snapshot_id is None or not rows:
        msg = (
            f"dataset version {reader.version} has no road network: "
            "load one with `geoservice etl roads`"
        )
        raise NoDataset(msg)
    frame = pd.DataFrame(rows, columns=[*EDGE_COLUMNS, "wkb"])
    frame["geometry"] = shapely.from_wkb(frame.pop("wkb").map(bytes).to_numpy())
    return reader.version, int(snapshot_id), frame


def network_from_edges(
    frame: pd.DataFrame, *, version: int, profile: Profile, snapshot_id: int | None = None
) -> Network:
    """The network of ``road_edge`` rows (``EDGE_COLUMNS`` and ``geometry``, WGS84
    LineStrings) for ``profile``; ``NoDataset`` when the profile can use none of them."""
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
    return Network(
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
