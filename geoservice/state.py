"""Everything one dataset version needs in memory, built from its id alone.

A ``VersionState`` is built for exactly one version id — the locate index, the road
networks and the coverage model all read that version — and is never changed after:
a request takes one state and uses it from start to end, so no answer can mix versions.
Parts only some requests need (a ``foot`` network, say) are built on first use, from the
same version id.

``StateCache`` keeps the current version's state warm and builds others on demand
(``version=`` and ``at=`` reads), keeping the last ``keep`` of them (LRU); a draft's
state is built for each read and not kept, since the draft may be edited after.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from geoservice.coverage import CoverageModel
from geoservice.locate import LocateIndex, build_index
from geoservice.models import dataset_version
from geoservice.network import Network, load_network, roads_snapshot_id
from geoservice.patrols import PatrolUnit, patrol_units
from geoservice.profiles import DEFAULT_PROFILE, check_profile
from geoservice.responders import Responders, fixed_responders

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
    ) -> None:
        self.engine = engine
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
    ) -> VersionState:
        """The state of ``version`` (default: the current one). ``full`` builds the default
        road network and the coverage model now rather than on first use; networks of
        ``reuse`` states on the same roads snapshot are shared, not rebuilt."""
        began = time.perf_counter()
        index = build_index(engine, version)
        with engine.connect() as conn:
            snapshot = roads_snapshot_id(conn, index.version)
        networks = {
            name: network.at_version(index.version)
            for other in reuse
            if other.roads_snapshot == snapshot and snapshot is not None
            for name, network in other._networks.items()
        }
        state = cls(engine, index, networks, snapshot)
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
                    network = load_network(self.engine, profile, self.version)
                    self._networks[profile] = network
        return network

    def coverage(self) -> CoverageModel:
        """This version's coverage model (police car profile)."""
        model = self._coverage
        if model is None:
            network = self.network()
            with self._lock:
                model = self._coverage
                if model is None:
                    model = CoverageModel(self.engine, network, self.index)
                    self._coverage = model
        return model

    def responders(self) -> tuple[Network, Responders]:
        """The reversed car network and the stations and posts placed on it (dispatch)."""
        built = self._responders
        if built is None:
            network = self.network()
            with self._lock:
                built = self._responders
                if built is None:
                    reverse = network.reversed()
                    built = reverse, fixed_responders(self.engine, reverse)
                    self._responders = built
        return built

    def patrol_units(self) -> dict[str, PatrolUnit]:
        """This version's patrol units by code."""
        units = self._units
        if units is None:
            units = {u.code: u for u in patrol_units(self.engine, self.version)}
            self._units = units
        return units


class StateCache:
    """The current version's state and the last few others, built on demand."""

    def __init__(self, engine: Engine, *, full: bool, keep: int = KEEP_VERSIONS) -> None:
        self.engine = engine
        self.full = full
        self.keep = keep
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
                    self.engine, version, full=self.full, reuse=self._states()
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
        return state

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
