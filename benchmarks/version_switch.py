"""How soon after a publish every server process serves the new version (demo).

    .venv/bin/python -m benchmarks.version_switch [--workers 2] [--rounds 3]

Serves the local cluster's current version (``make setup`` and ``geoservice demo`` first)
with ``--workers`` server processes, each with its two analysis workers, on a fresh state
directory. Then publishes through the ETL, as GIS staff do, officers files (one officer
renamed: a version on the same grids, roads and stations) and grid layers (one grid
renamed: a new grid snapshot, so the grids' tables and the coverage demand are built
anew). For each publish it times, from the ETL command's return (its
commit is its last step) until 40 lookups in a row, spread over the server processes,
answer with the new ``dataset_version`` (a server switches only when it and all its
workers have built the version, so that is every process). The first publish of each kind
is the warm-up; the figures are the median and the worst of ``--rounds`` after it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from benchmarks._common import ROOT, bench_key, free_port, serving
from geoservice.settings import Settings

IN_A_ROW = 40


class Publishes:
    """ETL commands that each change the data: round ``k`` renames one officer (or one
    grid) to a name no earlier round gave it."""

    def __init__(self, demo: Path, out: Path) -> None:
        self.officers = pd.read_csv(demo / "officers.csv", dtype=str)
        self.grids = gpd.read_file(demo / "huicheng_boundaries.gpkg", layer="grid")
        self.out = out
        self.stamp = time.strftime("%H%M%S")

    def command(self, kind: str, k: int) -> list[str]:
        etl = [sys.executable, "-m", "geoservice", "etl"]
        suffix = f"·{self.stamp}·{k}"
        if kind == "officers only":
            table = self.officers.copy()
            table.loc[0, "name"] += suffix
            path = self.out / f"officers_{k}.csv"
            table.to_csv(path, index=False)
            return [*etl, "officers", str(path)]
        layer = self.grids.copy()
        layer.loc[0, "name"] += suffix
        path = self.out / f"grids_{k}.gpkg"
        layer.to_file(path, layer="grid")
        return [*etl, "boundaries", str(path), "--layer", "grid"]


KINDS = ("officers only", "grid layer")


def version_seen(base: str, key: str) -> int:
    request = urllib.request.Request(
        f"{base}/v1/locate?lon=114.41&lat=23.11", headers={"Authorization": f"Bearer {key}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return int(json.loads(response.read())["dataset_version"])


def switch_s(base: str, key: str, command: list[str], deadline_s: float = 120.0) -> float:
    """Seconds from ``command``'s return until ``IN_A_ROW`` lookups answer its version."""
    before = version_seen(base, key)
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    committed = time.perf_counter()
    streak = 0
    while streak < IN_A_ROW:
        if time.perf_counter() - committed > deadline_s:
            msg = f"no switch from version {before} in {deadline_s} s after {command}"
            raise RuntimeError(msg)
        streak = streak + 1 if version_seen(base, key) > before else 0
        if not streak:
            time.sleep(0.005)
    return time.perf_counter() - committed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, default=2, help="server processes")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    settings = Settings()
    demo = settings.resolved_data_dir / "demo"
    state_dir = Path(tempfile.mkdtemp(prefix="geoservice-switch-state-"))
    work = Path(tempfile.mkdtemp(prefix="geoservice-switch-files-"))
    port = free_port()
    serve = [sys.executable, "-m", "geoservice", "serve", "--port", str(port)]
    serve += ["--workers", str(args.workers)]
    env = {"GEOSERVICE_STATE_DIR": str(state_dir)}
    try:
        publishes = Publishes(demo, work)
        with bench_key("dispatch") as key, serving(serve, port, env) as base:
            print(f"{args.workers} server processes, 2 analysis workers each, demo data")
            for kind in KINDS:
                times = [
                    switch_s(base, key, publishes.command(kind, k)) for k in range(args.rounds + 1)
                ]
                rest = np.array(times[1:])
                print(
                    f"  {kind:<14} every process on the new version "
                    f"{np.median(rest):5.2f} s after the commit (median), worst "
                    f"{rest.max():5.2f} s; first {times[0]:5.2f} s"
                )
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
