"""Prometheus metrics of a server process (``GET /metrics``, admin role).

Requests by route, method and status, with latency histograms per route; the dataset
version served; how long each version took to build here and in the workers, and how
many builds failed. With several server processes (``--workers N``), each answers for
itself: scrape each, or run one process per port behind a balancer.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

REGISTRY = CollectorRegistry(auto_describe=True)

REQUESTS = Counter(
    "geoservice_requests",
    "HTTP requests answered, by route template, method and status.",
    ["route", "method", "status"],
    registry=REGISTRY,
)
LATENCY = Histogram(
    "geoservice_request_seconds",
    "Time to answer, by route template.",
    ["route"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)
DATASET_VERSION = Gauge(
    "geoservice_dataset_version", "The dataset version being served.", registry=REGISTRY
)
BUILD_SECONDS = Histogram(
    "geoservice_state_build_seconds",
    "Time to build a dataset version's in-memory state, in the server or a worker process.",
    ["where"],
    buckets=(0.5, 1, 2, 4, 8, 16, 32, 64, 128),
    registry=REGISTRY,
)
BUILD_FAILURES = Counter(
    "geoservice_state_build_failures",
    "Dataset versions that could not be built (the previous one stayed in service).",
    registry=REGISTRY,
)

POSITIONS_REFUSED = Counter(
    "geoservice_positions_refused",
    "Patrol positions refused: 'speed' (a jump faster than GEOSERVICE_MAX_SPEED_KMH from the "
    "unit's last position), 'unit' (a unit the key is not bound to; the whole body refused).",
    ["reason"],
    registry=REGISTRY,
)

POSITIONS_JOURNALED = Counter(
    "geoservice_positions_journaled",
    "Patrol positions written to the local journal because PostgreSQL was unavailable.",
    registry=REGISTRY,
)
POSITIONS_REPLAYED = Counter(
    "geoservice_positions_replayed",
    "Journaled patrol positions written to PostgreSQL once it was back.",
    registry=REGISTRY,
)

CONTENT_TYPE = CONTENT_TYPE_LATEST


def exposition() -> bytes:
    """The registry in Prometheus' text format."""
    return generate_latest(REGISTRY)
