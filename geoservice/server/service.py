"""What a server process holds: the current version's state, the worker pool, and the
listener that follows published versions.

A new current version (a publish, promote or rollback, announced by ``NOTIFY``, or found
by the periodic check after a missed notification) is built here — the locate index
that answers single lookups — and by every worker, and only then made current, in one
assignment. Until then every request is answered from the previous version, whole.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from concurrent.futures import wait

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from geoservice.datasets import current_version_id
from geoservice.db import Listener, create_engine, one_line
from geoservice.errors import DatabaseUnavailable, GeoserviceError, NoDataset
from geoservice.journal import PositionJournal, database_key
from geoservice.keys import KEYS_CHANNEL, KeyStore
from geoservice.metrics import BUILD_FAILURES, BUILD_SECONDS, DATASET_VERSION
from geoservice.models import NOTIFY_CHANNEL
from geoservice.patrols import LivePositions, PositionRecorder, PositionStore
from geoservice.server import handlers
from geoservice.server.workers import START_TIMEOUT_S, Task, WorkerPool
from geoservice.settings import Settings
from geoservice.state import StateCache, VersionState
from geoservice.state_files import StateStore
from geoservice.tiles import TileCache

log = logging.getLogger(__name__)

REPLAY_WAIT_S = 60.0
"""How long a server waits for its standby to replay a version it was notified of."""


class Service:
    """The server process's state; ``start`` returns at once, the first build runs behind."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = create_engine(settings)  # reads: the standby when there is one
        self.primary = create_engine(settings, primary=True)  # which version is current, keys
        self.cache = StateCache(
            self.engine, full=False, store=StateStore(settings.resolved_state_dir)
        )
        # keys from the primary: a key revoked there is refused at once, not after replay
        self.keys = KeyStore(self.primary, settings.rate_per_s, settings.rate_burst)
        self.pool = WorkerPool(settings, settings.analysis_workers)
        self.tiles = TileCache()
        # patrol positions and events: written on the primary by the recorder role only
        self.recorder = create_engine(settings, "recorder", primary=True, pool_size=2)
        self.live = LivePositions(self.primary, settings.position_max_age_s)
        url = self.recorder.url
        journal = PositionJournal(
            settings.resolved_journal_dir,
            database_key(url.host, url.port, url.database),
            int(settings.journal_max_mb * 1024 * 1024),
        )
        # positions survive an outage: kept in memory, journaled, replayed when it is back
        self.positions = PositionRecorder(
            PositionStore(self.recorder, settings.positions_keep_days), journal, self.live
        )
        self.last_version: int | None = None
        self._editor: Engine | None = None
        self._editor_lock = threading.Lock()
        self._follow_lock = threading.Lock()
        self._listener: Listener | None = None

    @property
    def editor(self) -> Engine:
        """The writer's login, for drafts edited over the OGC API (connected on first use:
        a server whose drafts nobody edits needs no writer login)."""
        with self._editor_lock:
            if self._editor is None:
                self._editor = create_engine(self.settings, "writer", primary=True, pool_size=2)
            return self._editor

    @property
    def current(self) -> VersionState | None:
        """The current version's state, or None before the first one is built."""
        return self.cache.current

    def state(self) -> VersionState:
        """The current state, built now if there is none yet (blocks; not on the loop)."""
        state = self.cache.current or self.follow()
        if state is None:
            msg = "no dataset is published yet: load one (`geoservice demo` or the etl commands)"
            raise NoDataset(msg)
        return state

    def start(self) -> None:
        """Load the keys (a 401 for everyone until they are), then follow versions behind."""
        self._reload_keys()
        self._listener = Listener(
            self.primary.url,  # a standby refuses LISTEN
            {NOTIFY_CHANNEL: lambda _version: self.follow(), KEYS_CHANNEL: self._reload_keys},
            self._catch_up,
            poll_s=self.settings.poll_s,
        )
        self._listener.start()
        self.positions.start()

    def _catch_up(self) -> None:
        self._reload_keys()
        self.follow()

    def _reload_keys(self, _name: str = "") -> None:
        """The keys from the primary; while it is away, from the standby (if any)."""
        try:
            self.keys.reload()
        except sa.exc.SQLAlchemyError as exc:
            try:
                self.keys.reload(self.engine)
            except sa.exc.SQLAlchemyError:
                log.warning("keys not reloaded: %s", one_line(exc))

    def close(self) -> None:
        if self._listener is not None:
            self._listener.stop()
        self.positions.stop()
        self.pool.close()
        self.engine.dispose()
        self.primary.dispose()
        self.recorder.dispose()
        if self._editor is not None:
            self._editor.dispose()

    def follow(self) -> VersionState | None:
        """Make the database's current version current here, built everywhere first."""
        with self._follow_lock:
            current = self.cache.current
            try:
                with self.primary.connect() as conn:
                    version = current_version_id(conn)
            except sa.exc.SQLAlchemyError as exc:
                try:  # the primary is away: what the standby serves is all there is
                    with self.engine.connect() as conn:
                        version = current_version_id(conn)
                except sa.exc.SQLAlchemyError:
                    log.warning(
                        "database unreachable (%s); serving what is in memory", one_line(exc)
                    )
                    return current
            self.last_version = version
            if version is None or (current is not None and current.version == version):
                return current
            try:
                self._wait_replayed(version)
                self._build_everywhere(version)
            except (GeoserviceError, sa.exc.SQLAlchemyError) as exc:
                BUILD_FAILURES.inc()
                log.warning(
                    "dataset version %s not built (%s); serving version %s",
                    version,
                    exc,
                    current.version if current else None,
                )
                return current
            state = self.cache.make_current(version)
            try:  # the units checked on every position post: in memory before an outage
                state.patrol_units()
            except sa.exc.SQLAlchemyError as exc:
                log.warning("patrol units of version %s not read yet: %s", version, one_line(exc))
            DATASET_VERSION.set(version)
            # long-lived objects out of the cyclic GC's reach: batch requests allocate many
            # short-lived objects, and each full collection would walk them again
            gc.freeze()
            log.info("serving dataset version %s", version)
            return state

    def _wait_replayed(self, version: int) -> None:
        """Wait until the database the server reads from (a standby) has ``version`` as its
        current one — replication lags the primary's notification."""
        if self.engine.url == self.primary.url:
            return
        deadline = time.monotonic() + REPLAY_WAIT_S
        while True:
            with self.engine.connect() as conn:
                if current_version_id(conn) == version:
                    return
            if time.monotonic() > deadline:
                msg = f"the standby has not replayed dataset version {version} in {REPLAY_WAIT_S} s"
                raise DatabaseUnavailable(msg)
            time.sleep(0.1)

    def _build_everywhere(self, version: int) -> None:
        """Build ``version`` here, then in every worker (each makes it its current one)."""
        built = self.cache.get(version)
        BUILD_SECONDS.labels("server").observe(built.built_s)
        futures = self.pool.broadcast(Task(handlers.ready, version, current=True))
        done, pending = wait(futures, timeout=START_TIMEOUT_S)
        for future in done:
            if future.exception() is not None:
                BUILD_FAILURES.inc()
                log.warning("a worker could not build version %s: %s", version, future.exception())
            else:
                BUILD_SECONDS.labels("worker").observe(
                    orjson.loads(future.result().body)["built_s"]
                )
        if pending:
            log.warning("%d workers still building version %s", len(pending), version)
