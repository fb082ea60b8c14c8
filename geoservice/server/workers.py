"""Heavy work in worker processes, so that it never holds up single lookups.

The server's own process answers ``GET /v1/locate`` from memory on its event loop; a batch,
an isochrone, a coverage evaluation or a scenario takes tens to thousands of
milliseconds of CPU and the interpreter lock with it. Such work is a ``Task`` — a named
``Handler`` (``geoservice.server.handlers``: the function and the lane it waits in) with its
version and arguments — sent to a pool of worker processes, each keeping its own
per-version state (``StateCache``). Tasks wait in one queue ordered by lane — dispatch
work (batches, isochrones, responders) before analysis (coverage, scenarios, plans,
layers, events) — and, with two workers or more, analysis may occupy all but one of them.

Workers are forked from one forkserver per server process that has already imported what a
worker runs (``worker_preload``), so they share those modules' pages and start in a fraction
of a second; they run at a lower CPU priority than the server process. An answer larger than
``SPILL_BYTES`` travels through a file in ``/dev/shm`` rather than the pipe, and the
server streams it to the client in chunks. A worker that dies is replaced; its task
fails with a 503.
"""

from __future__ import annotations

import heapq
import importlib
import itertools
import logging
import multiprocessing
import os
import shutil
import tempfile
import threading
import traceback
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from enum import Enum, IntEnum
from functools import cached_property
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from geoservice.db import one_line
from geoservice.errors import GeoserviceError, ValidationFailed
from geoservice.server.statuses import database_problem, status_of
from geoservice.settings import Settings

if TYPE_CHECKING:
    from geoservice.locate import LocateIndex
    from geoservice.state import StateCache

log = logging.getLogger(__name__)

SPILL_BYTES = 256 * 1024
WORKER_NICE = 10
START_TIMEOUT_S = 120.0
FORKSERVER = multiprocessing.get_context("forkserver")
FORKSERVER.set_forkserver_preload(["geoservice.server.worker_preload"])


class Lane(IntEnum):
    """Queue order: lower lanes first."""

    CONTROL = 0
    DISPATCH = 1
    ANALYSIS = 2


class Reads(Enum):
    """What a handler is given first: one version's state, or the worker's resources."""

    STATE = "state"  # fn(state: VersionState, *args)
    RESOURCES = "resources"  # fn(resources: Resources, *args)


@dataclass(frozen=True)
class Handler:
    """A function a worker runs and the lane its tasks wait in. A handler travels to the
    worker by name (its module and attribute), never as pickled code."""

    fn: Callable[..., Answer]
    lane: Lane
    reads: Reads = Reads.STATE

    @property
    def name(self) -> str:
        return self.fn.__name__

    def lane_for(self, current: bool) -> Lane:
        """Dispatch work on a version other than the current one (a planner's ``version=``,
        whose state may take seconds to build) waits in the analysis lane instead."""
        return Lane.ANALYSIS if self.lane == Lane.DISPATCH and not current else self.lane

    def __reduce__(self) -> tuple[Any, ...]:
        return named_handler, (self.fn.__module__, self.fn.__name__)


def handler(lane: Lane, reads: Reads = Reads.STATE) -> Callable[[Callable[..., Answer]], Handler]:
    """Declares a module-level function a worker handler waiting in ``lane``."""

    def declare(fn: Callable[..., Answer]) -> Handler:
        return Handler(fn, lane, reads)

    return declare


def named_handler(module: str, name: str) -> Handler:
    """The handler ``name`` of ``module`` (how a task's handler is found in the worker)."""
    found = getattr(importlib.import_module(module), name, None)
    if not isinstance(found, Handler):
        msg = f"{module}.{name} is not a worker handler"
        raise TypeError(msg)
    return found


@dataclass(frozen=True)
class Task:
    """``handler`` run on ``version``'s state (or the worker's resources) with ``args``;
    ``current`` makes that version the worker's current one (kept warm, never evicted)."""

    handler: Handler
    version: int | None
    args: tuple[Any, ...] = ()
    current: bool = False


@dataclass(frozen=True)
class Answer:
    """An HTTP answer made by a worker: the body inline, or in a spill file."""

    media_type: str
    body: bytes = b""
    spill: str | None = None
    size: int = 0
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Failure:
    """A domain error raised in a worker, carried back to be answered as problem+json."""

    status: int
    title: str
    detail: str
    problems: list[str] = field(default_factory=list)


class WorkerFailed(GeoserviceError):
    """A worker process died or could not be reached (answered 503)."""

    title = "Worker failed"
    status = 503


class RemoteError(GeoserviceError):
    """A ``Failure`` re-raised in the server process."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.detail)
        self.status = failure.status
        self.title = failure.title
        self.problems = failure.problems


# --- the server side --------------------------------------------------------------------------


class _Worker:
    """One worker process and the pipe to it."""

    def __init__(self, settings: Settings, spill_dir: str, number: int) -> None:
        self.number = number
        self._settings = settings
        self._spill_dir = spill_dir
        self.process: multiprocessing.process.BaseProcess | None = None
        self.conn: Connection | None = None
        self.start()

    def start(self) -> None:
        ours, theirs = FORKSERVER.Pipe()
        self.process = FORKSERVER.Process(
            target=main,
            args=(theirs, self._spill_dir, self._settings.model_dump_json()),
            name=f"geoservice-worker-{self.number}",
        )
        self.process.start()
        theirs.close()
        self.conn = ours

    def call(self, task: Task) -> Answer | Failure:
        assert self.conn is not None
        try:
            self.conn.send(task)
            return self.conn.recv()
        except (EOFError, OSError) as exc:
            code = self.process.exitcode if self.process else None
            log.error("worker %s failed (%s, exit %s); starting a new one", self.number, exc, code)
            self.stop()
            self.start()
            msg = "a worker process failed while answering; try again"
            raise WorkerFailed(msg) from None

    def stop(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        if self.process is not None:
            self.process.terminate()
            self.process.join(timeout=10)
            if self.process.is_alive():
                self.process.kill()
                self.process.join()
            self.process = None


@dataclass(order=True)
class _Item:
    lane: int
    seq: int
    task: Task = field(compare=False)
    future: Future = field(compare=False)


class WorkerPool:
    """Worker processes fed from one lane-ordered queue (see the module docstring)."""

    def __init__(self, settings: Settings, size: int) -> None:
        if size < 1:
            msg = f"at least one worker process is needed, not {size}"
            raise ValueError(msg)
        self.size = size
        self.spill_dir = tempfile.mkdtemp(prefix="geoservice-", dir=_spill_root())
        self._seq = itertools.count()
        self._queue: list[_Item] = []
        self._control: list[deque[_Item]] = [deque() for _ in range(size)]
        self._analysis_running = 0
        self._closed = False
        self._cond = threading.Condition()
        self._workers = [_Worker(settings, self.spill_dir, n) for n in range(size)]
        self._threads = [
            threading.Thread(target=self._serve, args=(n,), name=f"worker-{n}", daemon=True)
            for n in range(size)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, lane: Lane, task: Task) -> Future:
        """Queue ``task``; the future holds its ``Answer`` or raises its error."""
        item = _Item(int(lane), next(self._seq), task, Future())
        with self._cond:
            if self._closed:
                msg = "the server is shutting down"
                raise WorkerFailed(msg)
            heapq.heappush(self._queue, item)
            self._cond.notify_all()
        return item.future

    def broadcast(self, task: Task) -> list[Future]:
        """Run ``task`` once on every worker (e.g. build a new version's state)."""
        items = [_Item(int(Lane.CONTROL), next(self._seq), task, Future()) for _ in self._workers]
        with self._cond:
            for queue, item in zip(self._control, items, strict=True):
                queue.append(item)
            self._cond.notify_all()
        return [item.future for item in items]

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(timeout=30)
        for worker in self._workers:
            worker.stop()
        shutil.rmtree(self.spill_dir, ignore_errors=True)

    def _next(self, n: int) -> _Item | None:
        with self._cond:
            while True:
                if self._control[n]:
                    return self._control[n].popleft()
                if self._closed:
                    return None
                if self._queue and self._may_take(self._queue[0]):
                    item = heapq.heappop(self._queue)
                    if item.lane == Lane.ANALYSIS:
                        self._analysis_running += 1
                    return item
                self._cond.wait()

    def _may_take(self, item: _Item) -> bool:
        """Analysis leaves one worker free for dispatch work (with two workers or more)."""
        return item.lane != Lane.ANALYSIS or self._analysis_running < max(1, self.size - 1)

    def _serve(self, n: int) -> None:
        worker = self._workers[n]
        while (item := self._next(n)) is not None:
            if not item.future.set_running_or_notify_cancel():
                continue
            try:
                outcome = worker.call(item.task)
            except Exception as exc:  # the future carries it to the request
                item.future.set_exception(exc)
            else:
                if isinstance(outcome, Failure):
                    item.future.set_exception(RemoteError(outcome))
                else:
                    item.future.set_result(outcome)
            finally:
                if item.lane == Lane.ANALYSIS:
                    with self._cond:
                        self._analysis_running -= 1
                        self._cond.notify_all()


def _spill_root() -> str | None:
    """``/dev/shm`` (memory) when there is one, else the system temporary folder."""
    return "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None


def open_spill(answer: Answer) -> Any:
    """The spilled body as an open binary file, already unlinked (nothing is left behind)."""
    assert answer.spill is not None
    handle = open(answer.spill, "rb")  # noqa: SIM115 (closed by the response that streams it)
    os.unlink(answer.spill)
    return handle


# --- the worker side --------------------------------------------------------------------------


class Resources:
    """What a worker holds for its handlers: the reader's engine, the per-version states,
    and, opened on first use, the recorder's engine and a cache of locate indexes alone
    (events fall in old versions: their networks and coverage are never needed)."""

    def __init__(self, settings: Settings, cache: StateCache) -> None:
        self.settings = settings
        self.cache = cache
        self.engine: Engine = cache.engine

    @cached_property
    def recorder(self) -> Engine:
        from geoservice.db import create_engine

        return create_engine(self.settings, "recorder", primary=True, pool_size=1)

    @cached_property
    def _indexes(self) -> StateCache:
        from geoservice.state import StateCache

        return StateCache(self.engine, full=False, store=self.cache.store)

    def index(self, version: int) -> LocateIndex:
        """``version``'s locate index (the current state's, else one built or mapped alone)."""
        current = self.cache.current
        if current is not None and current.version == version:
            return current.index
        return self._indexes.get(version).index


def run_task(task: Task, resources: Resources, spill_dir: str) -> Answer | Failure:
    """Run one task against the cached state of its version; errors become a ``Failure``."""
    name = task.handler.name
    try:
        if task.handler.reads is Reads.RESOURCES:
            answer = task.handler.fn(resources, *task.args)
        else:
            assert task.version is not None
            cache = resources.cache
            get = cache.make_current if task.current else cache.get
            answer = task.handler.fn(get(task.version), *task.args)
    except GeoserviceError as exc:
        problems = exc.problems if isinstance(exc, ValidationFailed) else []
        return Failure(status_of(exc), exc.title, str(exc), problems)
    except sa.exc.SQLAlchemyError as exc:
        status, title, detail = database_problem(exc)
        log.warning("task %s: database error: %s", name, one_line(exc))
        return Failure(status, title, detail)
    except Exception:
        log.error("task %s failed:\n%s", name, traceback.format_exc())
        return Failure(
            500, "Internal Server Error", "internal error; the server log has the details"
        )
    if answer.spill is None and len(answer.body) > SPILL_BYTES:
        fd, path = tempfile.mkstemp(dir=spill_dir, suffix=".json")
        with os.fdopen(fd, "wb") as out:
            out.write(answer.body)
        return Answer(answer.media_type, b"", path, len(answer.body), answer.status, answer.headers)
    return answer


def main(conn: Connection, spill_dir: str, settings_json: str) -> None:
    """A worker process: answer the tasks that arrive on ``conn`` until it closes."""
    from geoservice.db import create_engine
    from geoservice.state import StateCache
    from geoservice.state_files import StateStore

    logging.basicConfig(level=logging.INFO, format="%(asctime)s worker %(message)s")
    os.nice(WORKER_NICE)
    settings = Settings.model_validate_json(settings_json)
    engine = create_engine(settings)
    cache = StateCache(engine, full=True, store=StateStore(settings.resolved_state_dir))
    resources = Resources(settings, cache)
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        conn.send(run_task(task, resources, spill_dir))
