"""The Dask cluster province-wide analysis runs on: the scheduler named by
``GEOSERVICE_DASK_SCHEDULER`` (``dask scheduler`` and ``dask worker tcp://…`` hosts), else a
local cluster of this host's cores, started for one analysis and closed after it."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

from distributed import Client, LocalCluster

from geoservice.settings import Settings


@contextmanager
def analysis_client(settings: Settings, *, n_workers: int | None = None) -> Iterator[Client]:
    """A client of the configured scheduler, or of a local cluster of ``n_workers`` worker
    processes (default: one per core) with one thread each, no dashboard and only its
    errors logged; closed (and the local cluster stopped) on leaving."""
    if settings.dask_scheduler:
        with Client(settings.dask_scheduler, timeout=settings.connect_timeout_s * 10) as client:
            yield client
        return
    with (
        LocalCluster(
            n_workers=n_workers or os.cpu_count() or 1,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            scheduler_kwargs={"dashboard_address": ":0"},  # its HTTP endpoint on no fixed port
            silence_logs=logging.ERROR,
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client
