"""Imported once by the workers' forkserver (``geoservice.server.workers``), before it forks
any worker: every module a worker runs, then ``gc.freeze()``.

Each worker is then a fork of one process that has already imported them, so the modules'
objects are pages the workers share rather than ~100 MB copied into each, and starting a
worker costs no imports. ``gc.freeze()`` moves those objects out of the collector's reach:
a collection in a worker would otherwise write to every object's header and so copy every
page. What stays private to a worker is what it builds or maps for its versions.
"""

import gc

import geoservice.db
import geoservice.server.handlers
import geoservice.state
import geoservice.state_files  # noqa: F401 (imported to be shared)

gc.collect()
gc.freeze()
