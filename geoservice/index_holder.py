"""The current ``LocateIndex`` and road ``Network``s, rebuilt in the background when a new
version is published."""

from __future__ import annotations

import gc
import logging
import threading

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from geoservice.coverage import CoverageModel
from geoservice.datasets import current_version_id
from geoservice.db import VersionListener
from geoservice.errors import GeoserviceError, InvalidInput, NoDataset
from geoservice.locate import LocateIndex, build_index
from geoservice.network import Network, load_network, roads_snapshot_id
from geoservice.profiles import DEFAULT_PROFILE, available

log = logging.getLogger(__name__)


class IndexHolder:
    """Holds the index of the current dataset version and swaps it atomically.

    A request reads ``holder.index`` once and works on that object to the end, so it never
    mixes versions; a rebuild assigns a new object, never changes the old one.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._index: LocateIndex | None = None
        self._networks: dict[str, Network] = {}
        self._coverage: dict[str, CoverageModel] = {}
        self._lock = threading.Lock()
        self._network_lock = threading.Lock()
        self._listener: VersionListener | None = None

    @property
    def index(self) -> LocateIndex:
        index = self._index
        if index is None:
            index = self.refresh()
        if index is None:
            msg = "no dataset is published yet: load one (`geoservice demo` or the etl commands)"
            raise NoDataset(msg)
        return index

    def refresh(self, version: int | None = None) -> LocateIndex | None:
        """Rebuild unless the index already is at ``version`` (or the current one)."""
        with self._lock:
            try:
                if version is None:
                    with self.engine.connect() as conn:
                        version = current_version_id(conn)
                if version is None:
                    return None
                if self._index is not None and self._index.version == version:
                    return self._index
                self._index = build_index(self.engine)
                self._refresh_networks()
                # Long-lived objects out of the cyclic GC's reach: batch requests allocate
                # hundreds of thousands of short-lived objects, and each full collection
                # would otherwise walk the whole index again.
                gc.freeze()
                log.info("locate index at dataset version %s", self._index.version)
            except (GeoserviceError, sa.exc.SQLAlchemyError) as exc:
                log.warning(
                    "locate index not rebuilt (%s); keeping version %s",
                    exc,
                    self._index.version if self._index else None,
                )
            return self._index

    def network(self, profile: str = DEFAULT_PROFILE) -> Network:
        """The road network of the current version for a shipped profile (built on first
        use; the default profile is built with each new version)."""
        if profile not in available():
            msg = f"unknown profile {profile!r}; expected one of {available()}"
            raise InvalidInput(msg)
        version = self.index.version
        network = self._networks.get(profile)
        if network is not None and network.version == version:
            return network
        with self._network_lock:
            network = self._networks.get(profile)
            if network is None or network.version != version:
                network = load_network(self.engine, profile)
                self._networks[profile] = network
            return network

    def coverage(self, profile: str = DEFAULT_PROFILE) -> CoverageModel:
        """The coverage model of the current version (built on first use)."""
        network = self.network(profile)
        index = self.index
        model = self._coverage.get(profile)
        if model is not None and model.network is network:
            return model
        with self._network_lock:
            model = self._coverage.get(profile)
            if model is None or model.network is not network:
                model = CoverageModel(self.engine, network, index)
                self._coverage[profile] = model
            return model

    def _refresh_networks(self) -> None:
        """After a new version: keep networks whose roads did not change, rebuild the
        default profile's, drop the others (rebuilt on demand)."""
        assert self._index is not None
        with self._network_lock, self.engine.connect() as conn:
            snapshot = roads_snapshot_id(conn, self._index.version)
        kept = {}
        for name, network in self._networks.items():
            if network.snapshot_id == snapshot:
                kept[name] = network.at_version(self._index.version)
        self._networks = kept
        if snapshot is not None and DEFAULT_PROFILE not in kept:
            try:
                self._networks[DEFAULT_PROFILE] = load_network(self.engine, DEFAULT_PROFILE)
            except GeoserviceError as exc:
                log.warning("road network not built: %s", exc)

    def listen(self) -> None:
        """Follow published versions (LISTEN/NOTIFY), catching up after reconnects."""

        def catch_up(*_: object) -> None:
            self.refresh()

        self._listener = VersionListener(
            self.engine.url, on_version=catch_up, on_reconnect=catch_up
        )
        self._listener.start()

    def close(self) -> None:
        if self._listener is not None:
            self._listener.stop()
