"""Workers sharing one version's state: start time and private memory, built in memory
(each process for itself, as before the state directory) beside mapped from the state
directory (built once per host).

    .venv/bin/python -m benchmarks.state_share [--workers 3] [--baseline DIR]

``--baseline DIR`` (a checkout of an earlier commit, e.g. ``git worktree add DIR <commit>``)
also runs the state-directory workers from that code, in the same run, for before/after
figures.

Each "worker" does what a worker does when a version becomes current (locate index, car
network, coverage model, responders), started one after another and kept alive together:
a fresh interpreter building for itself ("each builds", before the state directory), a fresh
interpreter mapping the state directory ("fresh interpreters"), and the service's own
workers, forked from its forkserver ("service workers": ``WorkerPool`` running the
``ready`` task a server sends on a new version). The figures read from
``/proc/<pid>/smaps_rollup`` show what each adds beside the others. USS (private memory) is
what a process costs the machine on top of the pages it shares; PSS splits the shared pages
between their users. The run uses the local cluster's current version (``make setup`` and
``geoservice demo`` first).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from geoservice.server.workers import Answer, Lane, Reads, Resources, Task, WorkerPool, handler

ROOT = Path(__file__).resolve().parents[1]

CHILD = textwrap.dedent(
    """
    import json, os, sys, time
    from benchmarks.state_share import rollup
    import geoservice.server.workers  # what a worker imports
    from geoservice.db import create_engine
    from geoservice.settings import Settings
    from geoservice.state import StateCache
    from geoservice.state_files import StateStore
    settings = Settings()
    engine = create_engine(settings)
    with engine.connect() as conn:
        from geoservice.datasets import current_version_id
        version = current_version_id(conn)
    imported = rollup(os.getpid())["uss_mb"]
    store = StateStore(sys.argv[1]) if sys.argv[1] != "-" else None
    began = time.perf_counter()
    cache = StateCache(engine, full=True, store=store)
    state = cache.make_current(version)
    print(json.dumps({"serve_s": time.perf_counter() - began, "imports_uss_mb": imported,
                      "pid": os.getpid()}), flush=True)
    sys.stdin.readline()
    """
)


def rollup(pid: int) -> dict[str, float]:
    figures = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            key, *rest = line.split()
            if rest and rest[0].isdigit():
                figures[key.rstrip(":")] = int(rest[0]) / 1024
    return {
        "uss_mb": figures["Private_Clean"] + figures["Private_Dirty"],
        "pss_mb": figures["Pss"],
        "rss_mb": figures["Rss"],
    }


def run(mode: str, workers: int, state_dir: str, root: Path = ROOT) -> list[dict[str, float]]:
    """Start ``workers`` children one after another (built in memory for ``mode`` "memory",
    else from ``state_dir``) with the code under ``root``; each one's start-to-serve time
    (s) and USS/PSS/RSS (MB), read while all of them are alive."""
    children, rows = [], []
    try:
        for _ in range(workers):
            child = subprocess.Popen(
                [sys.executable, "-c", CHILD, state_dir if mode == "files" else "-"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                cwd=root,
                env={**os.environ, "PYTHONPATH": str(root)},
            )
            children.append(child)
            rows.append(json.loads(child.stdout.readline()))
        for row in rows:  # read together, while every process maps what it maps
            row.update(rollup(int(row["pid"])))
            row["state_uss_mb"] = row["uss_mb"] - row["imports_uss_mb"]
    finally:
        for child in children:
            child.communicate("\n", timeout=60)
    return rows


@handler(Lane.CONTROL, Reads.RESOURCES)
def pid(resources: Resources) -> Answer:
    """The worker's process id (run in the worker)."""
    return Answer("text/plain", str(os.getpid()).encode())


def run_pool(workers: int, state_dir: str) -> list[dict[str, float]]:
    """Start ``workers`` service workers one after another (a ``WorkerPool`` of one each,
    all forked from this process's forkserver), each made ready on the current version from
    ``state_dir``; start-to-serve time (s) and USS/PSS/RSS (MB) read while all are alive."""
    from geoservice.datasets import current_version_id
    from geoservice.db import create_engine
    from geoservice.server import handlers
    from geoservice.settings import Settings

    settings = Settings(state_dir=Path(state_dir))
    with create_engine(settings).connect() as conn:
        version = current_version_id(conn)
    pools, rows = [], []
    try:
        for _ in range(workers):
            began = time.perf_counter()
            pool = WorkerPool(settings, 1)
            pools.append(pool)
            pool.broadcast(Task(handlers.ready, version, current=True))[0].result()
            serve_s = time.perf_counter() - began
            worker = int(pool.broadcast(Task(pid, None))[0].result().body)
            rows.append({"serve_s": serve_s, "pid": worker})
        for row in rows:
            row.update(rollup(int(row["pid"])))
    finally:
        for pool in pools:
            pool.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--baseline", type=Path, help="an earlier checkout to compare with")
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory(prefix="geoservice-state-bench-") as state_dir:
        results["memory"] = run("memory", args.workers, state_dir)
        if args.baseline is not None:
            with tempfile.TemporaryDirectory(prefix="geoservice-state-bench-") as old_dir:
                results["baseline"] = run("files", args.workers, old_dir, args.baseline)
        results["files"] = run("files", args.workers, state_dir)
        results["pool"] = run_pool(args.workers, state_dir)
    print(f"{'':46}" + "".join(f"{f'worker {k + 1}':>10}" for k in range(args.workers)))
    labels = [
        ("memory", "each builds"),
        ("baseline", "baseline files"),
        ("files", "fresh interpreters"),
        ("pool", "service workers"),
    ]
    for mode, label in ((m, label) for m, label in labels if m in results):
        rows = results[mode]
        for key, name in (
            ("serve_s", "start to serve, s"),
            ("uss_mb", "USS, MB"),
            ("state_uss_mb", "  of it the state, MB"),
            ("pss_mb", "PSS, MB"),
        ):
            if key not in rows[0]:
                continue
            print(f"{label + ': ' + name:<46}" + "".join(f"{r[key]:>10.2f}" for r in rows))
        print()
    print(json.dumps(results))


if __name__ == "__main__":
    os.environ.setdefault("GEOSERVICE_ANALYSIS_WORKERS", "1")
    main()
