"""How soon after a publish every server process serves the new version (demo).

    .venv/bin/python -m benchmarks.version_switch [--workers 2] [--rounds 3]

Serves the local cluster's current version (``make setup`` and ``geoservice demo`` first)
with ``--workers`` server processes, each with its two analysis workers, on a fresh state
directory. Then publishes through the ETL, as GIS staff do, alternately one of two officers
files (one officer renamed: a version on the same grids, roads and stations) and one of two
grid layers (one grid renamed: a new grid snapshot, so the grids' tables and the coverage
demand are built anew). For each publish it times, from the ETL command's return (its
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


def variants(demo: Path, out: Path) -> dict[str, list[list[str]]]:
    """Per kind of publish, the two ETL commands that alternate (each a change)."""
    officers = pd.read_csv(demo / "officers.csv", dtype=str)
    renamed = officers.copy()
    renamed.loc[0, "name"] = renamed.loc[0, "name"] + "甲"
    paths = [out / "officers_a.csv", out / "officers_b.csv"]
    officers.to_csv(paths[0], index=False)
    renamed.to_csv(paths[1], index=False)
    grids = gpd.read_file(demo / "huicheng_boundaries.gpkg", layer="grid")
    layers = [out / "grids_a.gpkg", out / "grids_b.gpkg"]
    grids.to_file(layers[0], layer="grid")
    grids.loc[0, "name"] = grids.loc[0, "name"] + "甲"
    grids.to_file(layers[1], layer="grid")
    etl = [sys.executable, "-m", "geoservice", "etl"]
    return {
        "officers only": [[*etl, "officers", str(p)] for p in paths],
        "grid layer": [[*etl, "boundaries", str(p), "--layer", "grid"] for p in layers],
    }


def version_seen(base: str, key: str) -> int:
    request = urllib.request.Request(
        f"{base}/v1/locate?lon=114.41&lat=23.11", headers={"Authorization": f"Bearer {key}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return int(json.loads(response.read())["dataset_version"])


def switch_s(base: str, key: str, command: list[str], deadline_s: float = 120.0) -> float:
    """Seconds from ``command``'s return until ``IN_A_ROW`` lookups answer its version."""
    before = version_seen(base, key)
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
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
        commands = variants(demo, work)
        with bench_key("dispatch") as key, serving(serve, port, env) as base:
            print(f"{args.workers} server processes, 2 analysis workers each, demo data")
            for kind, pair in commands.items():
                times = [switch_s(base, key, pair[(k + 1) % 2]) for k in range(args.rounds + 1)]
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
