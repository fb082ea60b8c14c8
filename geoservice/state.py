"""Everything one dataset version needs in memory, built from its id alone.

A ``VersionState`` is built for exactly one version id — the locate index, the road
networks and the coverage model all read that version — and is never changed after:
a request takes one state and uses it from start to end, so no answer can mix versions.
Parts only some requests need (a ``foot`` network, say) are built on first use, from the
same version id.

``StateCache`` keeps the current version's state warm and builds others on demand
(``version=`` and ``at=`` reads), keeping the last ``keep`` of them (LRU); a draft's
state is built for each read and not kept, since the draft may be edited after.

With a ``StateStore`` (every server and worker has one), the locate index, the road
networks, the coverage demand and the responders' placements of a published version are
built once per host and mapped from the state directory by every process
(``geoservice.state_files``); a draft's are built in memory.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from geoservice.coverage import CoverageModel
from geoservice.datasets import current_version_id, resolve_version
from geoservice.locate import LocateIndex, build_index, index_labels
from geoservice.locate.index import labels_part
from geoservice.models import dataset_version
from geoservice.network import Network, load_network
from geoservice.patrols import PatrolUnit, patrol_units
from geoservice.profiles import DEFAULT_PROFILE, check_profile, load_profile
from geoservice.responders import Responders, fixed_responders
from geoservice.state_files import Part, StateStore, state_key
from geoservice.store import VersionReader

log = logging.getLogger(__name__)

KEEP_VERSIONS = 3
"""States of non-current versions kept in memory."""


class VersionState:
    """The in-memory state of one dataset version."""

    def __init__(
        self,
        engine: Engine,
        index: LocateIndex,
        networks: dict[str, Network] | None = None,
        roads_snapshot: int | None = None,
        files: StateFiles | None = None,
    ) -> None:
        self.engine = engine
        self.files = files
        self.index = index
        self.version = index.version
        self.roads_snapshot = roads_snapshot
        self.built_s = 0.0
        self._networks = dict(networks or {})
        self._coverage: CoverageModel | None = None
        self._responders: tuple[Network, Responders] | None = None
        self._units: dict[str, PatrolUnit] | None = None
        self._lock = threading.Lock()

    @classmethod
    def build(
        cls,
        engine: Engine,
        version: int | None = None,
        *,
        full: bool = True,
        reuse: Iterable[VersionState] = (),
        store: StateStore | None = None,
    ) -> VersionState:
        """The state of ``version`` (default: the current one). ``full`` builds the default
        road network and the coverage model now rather than on first use; networks of
        ``reuse`` states on the same roads snapshot are shared, not rebuilt. With ``store``,
        a published version's index and networks are mapped from it (built there first if
        this host has not built them yet)."""
        began = time.perf_counter()
        with engine.connect() as conn:
            version = resolve_version(conn, version)
            snapshot = VersionReader(conn, version).snapshot_id("roads")
            files = StateFiles.of(conn, store, version, snapshot) if store is not None else None
        if files is None:
            index = build_index(engine, version)
        else:
            index = _mapped_index(engine, version, files)
        networks = {
            name: network.at_version(index.version)
            for other in reuse
            if other.roads_snapshot == snapshot and snapshot is not None
            for name, network in other._networks.items()
        }
        state = cls(engine, index, networks, snapshot, files)
        if full and snapshot is not None:
            state.coverage()
            state.responders()
        state.built_s = time.perf_counter() - began
        return state

    def network(self, profile: str = DEFAULT_PROFILE) -> Network:
        """This version's road network for a shipped profile."""
        network = self._networks.get(check_profile(profile))
        if network is None:
            with self._lock:
                network = self._networks.get(profile)
                if network is None:
                    network = self._load_network(profile)
                    self._networks[profile] = network
        return network

    def _load_network(self, profile: str) -> Network:
        files = self.files
        if files is None or files.roads is None:  # a draft, or no roads (load_network says so)
            return load_network(self.engine, profile, self.version)
        built = files.store.open(
            files.network(profile),
            lambda: load_network(self.engine, profile, self.version).to_part(),
        )
        return Network.from_part(built, self.version)

    def coverage(self) -> CoverageModel:
        """This version's coverage model (police car profile)."""
        model = self._coverage
        if model is None:
            network = self.network()
            with self._lock:
                model = self._coverage
                if model is None:
                    model = self._load_coverage(network)
                    self._coverage = model
        return model

    def _load_coverage(self, network: Network) -> CoverageModel:
        files = self.files
        if files is None or files.roads is None:
            return CoverageModel(self.engine, network, self.index)
        built = files.store.open(
            files.demand(DEFAULT_PROFILE),
            lambda: CoverageModel(self.engine, network, self.index).to_part(),
        )
        return CoverageModel(self.engine, network, self.index, built=built)

    def responders(self) -> tuple[Network, Responders]:
        """The reversed car network and the stations and posts placed on it (dispatch)."""
        built = self._responders
        if built is None:
            network = self.network()
            with self._lock:
                built = self._responders
                if built is None:
                    reverse = network.reversed()
                    built = reverse, self._load_responders(reverse)
                    self._responders = built
        return built

    def _load_responders(self, reverse: Network) -> Responders:
        files = self.files
        if files is None or files.roads is None:
            return fixed_responders(self.engine, reverse)
        built = files.store.open(
            files.responders(DEFAULT_PROFILE),
            lambda: fixed_responders(self.engine, reverse).to_part(),
        )
        return Responders.from_part(built)

    def patrol_units(self) -> dict[str, PatrolUnit]:
        """This version's patrol units by code."""
        units = self._units
        if units is None:
            units = {u.code: u for u in patrol_units(self.engine, self.version)}
            self._units = units
        return units


def _mapped_index(engine: Engine, version: int, files: StateFiles) -> LocateIndex:
    """``version``'s index mapped from its two parts, each built first if this host has not
    built it: the grids' tables by building the whole index, the labels from that index
    when it was just built, else read alone (without the polygons)."""
    built: list[LocateIndex] = []

    def geometry() -> Part:
        built.append(build_index(engine, version))
        return built[0].geometry_part()

    def labels() -> Part:
        if built:  # its hierarchies were read a moment ago
            return labels_part(built[0].version, built[0].grids, built[0].district)
        return index_labels(engine, version)

    return LocateIndex.from_parts(
        files.store.open(files.grids, geometry), files.store.open(files.locate, labels)
    )


@dataclass(frozen=True)
class StateFiles:
    """The names of one published version's parts in the state directory.

    A part is named after what its content depends on, so that versions sharing it share
    one folder: the locate index's tables after the grid layer's snapshot (``grids``), its
    labels after the version (``locate``), the networks after the roads snapshot (``roads``),
    the coverage demand after the grids and the units and large grids that give their towns,
    the responders' placements after the stations and the network. Each name also carries a
    digest of the snapshot's (or version's) creation time and the database's name — a
    throw-away test database or a recreated demo never meets another's folders."""

    store: StateStore
    locate: str
    grids: str
    roads: str | None  # the roads snapshot's prefix; None without roads
    towns: str  # the digest of the unit and large grid snapshots (which town a grid is in)
    stations: str  # the digest of the stations snapshot

    @classmethod
    def of(
        cls, conn: sa.Connection, store: StateStore, version: int, snapshot: int | None
    ) -> StateFiles | None:
        """The names of ``version``'s parts (None for a draft, which is never stored);
        ``snapshot``: its roads snapshot."""
        status, created, database = conn.execute(
            sa.text(
                "SELECT status, created_at, current_database() FROM geoservice.dataset_version "
                "WHERE id = :v"
            ),
            {"v": version},
        ).one()
        if status == "draft":
            return None
        layers = VersionReader(conn, version).snapshots()
        made: dict[int, datetime] = dict(
            conn.execute(
                sa.text("SELECT id, created_at FROM geoservice.snapshot WHERE id = ANY(:ids)"),
                {"ids": list(layers.values())},
            ).all()
        )

        def key(layer: str) -> str:
            snap = layers.get(layer)
            return state_key(database, snap, made[snap].isoformat() if snap else None)

        locate = f"locate-v{version}-{state_key(database, version, created.isoformat())}"
        grids = f"grids-s{layers.get('grid')}-{key('grid')}"
        roads = None if snapshot is None else f"roads-s{snapshot}-{key('roads')}"
        towns = state_key(key("unit"), key("large_grid"))
        return cls(store, locate, grids, roads, towns, key("stations"))

    def network(self, profile: str) -> str:
        """The name of the network of ``profile`` on this version's roads."""
        definition = dataclasses.asdict(load_profile(profile))
        digest = state_key(orjson.dumps(definition, option=orjson.OPT_SORT_KEYS).decode())
        return f"{self.roads}-{profile}-{digest}"

    def demand(self, profile: str) -> str:
        """The name of the coverage demand (grids, demand points) of these grids in their
        towns on the network of ``profile`` (kept and pruned with the grids' tables)."""
        return f"{self.grids}-demand-{state_key(self.towns, self.network(profile))}"

    def responders(self, profile: str) -> str:
        """The name of these stations and posts placed on the reversed network of
        ``profile`` (kept and pruned with the roads)."""
        return f"{self.roads}-responders-{state_key(self.stations, self.network(profile))}"

    def kept(self) -> tuple[str, ...]:
        """The prefixes of the names this version's parts have."""
        return tuple(name for name in (self.locate, self.grids, self.roads) if name is not None)


class StateCache:
    """The current version's state and the last few others, built on demand."""

    def __init__(
        self,
        engine: Engine,
        *,
        full: bool,
        keep: int = KEEP_VERSIONS,
        store: StateStore | None = None,
    ) -> None:
        self.engine = engine
        self.full = full
        self.keep = keep
        self.store = store
        self.current: VersionState | None = None
        self._others: OrderedDict[int, VersionState] = OrderedDict()
        self._lock = threading.Lock()
        self._building: dict[int, threading.Lock] = {}

    def get(self, version: int) -> VersionState:
        """The state of ``version``, built now if it is not in memory."""
        state = self._lookup(version)
        if state is not None:
            return state
        with self._lock:
            build_lock = self._building.setdefault(version, threading.Lock())
        with build_lock:  # one build per version, however many requests wait for it
            state = self._lookup(version)
            if state is None:
                state = VersionState.build(
                    self.engine, version, full=self.full, reuse=self._states(), store=self.store
                )
                log.info("dataset version %s built in %.1f s", version, state.built_s)
                if not _is_draft(self.engine, version):  # a draft may be edited after
                    with self._lock:
                        self._remember(state)
            return state

    def make_current(self, version: int) -> VersionState:
        """Build (or find) ``version`` and make it the current state in one assignment."""
        state = self.get(version)
        with self._lock:
            previous, self.current = self.current, state
            self._others.pop(version, None)
            if previous is not None and previous is not state:
                self._remember(previous)
        if self.store is not None:
            self.prune_files()
        return state

    def prune_files(self) -> list[str]:
        """Remove from the state directory the parts of versions that are neither current nor
        among the last ``keep`` published, unless some process still maps them."""
        store = self.store
        assert store is not None
        with self.engine.connect() as conn:
            published = (
                sa.select(dataset_version.c.id)
                .where(dataset_version.c.status != "draft")
                .order_by(dataset_version.c.id.desc())
                .limit(self.keep)
            )
            versions = set(conn.execute(published).scalars())
            current = current_version_id(conn)
            kept = [
                StateFiles.of(
                    conn, store, version, VersionReader(conn, version).snapshot_id("roads")
                )
                for version in versions | ({current} if current is not None else set())
            ]
        prefixes = tuple(prefix for files in kept if files is not None for prefix in files.kept())
        return store.prune(name for name in store.names() if name.startswith(prefixes))

    def _lookup(self, version: int) -> VersionState | None:
        with self._lock:
            current = self.current
            if current is not None and current.version == version:
                return current
            state = self._others.get(version)
            if state is not None:
                self._others.move_to_end(version)
            return state

    def _remember(self, state: VersionState) -> None:
        if self.current is not None and state.version == self.current.version:
            return
        self._others[state.version] = state
        self._others.move_to_end(state.version)
        while len(self._others) > self.keep:
            self._others.popitem(last=False)

    def _states(self) -> list[VersionState]:
        with self._lock:
            current = [self.current] if self.current is not None else []
            return current + list(self._others.values())


def _is_draft(engine: Engine, version: int) -> bool:
    with engine.connect() as conn:
        status = conn.execute(
            sa.select(dataset_version.c.status).where(dataset_version.c.id == version)
        ).scalar_one_or_none()
    return status == "draft"
