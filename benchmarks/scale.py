"""How the work grows with the number of districts: 1 (Huicheng), 20 (Huizhou and its
neighbours), 122 (Guangdong's county-level divisions).

    .venv/bin/python -m benchmarks.scale --districts 1 20 122

For each N: a database ``geoservice_scale_N`` in the local cluster, loaded once with
``geoservice demo --scale N`` (the load is timed); then, in a fresh process so that
memory is its own, the locate index build (time, memory), single and batch locate, the
road network build, one-origin 1/3/5-minute isochrones, and a coverage evaluation. The
figures go to ``docs/scaling.json`` and the curves to ``docs/scaling.png``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * 4096 / 1e6


def measure(url: str) -> dict[str, float]:
    """Everything timed on the database at ``url`` (run in its own process)."""
    from geoservice.coverage import CoverageModel
    from geoservice.db import create_engine
    from geoservice.isochrones import isochrones
    from geoservice.locate import build_index
    from geoservice.network import load_network
    from geoservice.settings import Settings

    engine = create_engine(Settings(database_url=url), "owner")
    out: dict[str, float] = {}
    gc.collect()
    before = rss_mb()
    start = time.perf_counter()
    index = build_index(engine)
    out["index_build_s"] = time.perf_counter() - start
    out["index_mb"] = rss_mb() - before
    out["grids"] = len(index.grids)
    rng = np.random.default_rng(3)
    points = []
    polygons = index.polygons[rng.integers(0, len(index.polygons), 2000)]
    for polygon in polygons:  # points inside grids across every district
        x, y = polygon.representative_point().coords[0]
        points.append((x, y))
    lon = np.repeat([p[0] for p in points], 500) + rng.normal(0, 0.002, 1_000_000)
    lat = np.repeat([p[1] for p in points], 500) + rng.normal(0, 0.002, 1_000_000)
    start = time.perf_counter()
    index.locate_many(lon, lat)
    out["batch_points_per_s"] = len(lon) / (time.perf_counter() - start)
    singles = []
    for x, y in zip(lon[:50_000:7].tolist(), lat[:50_000:7].tolist(), strict=True):
        t = time.perf_counter()
        index.locate(x, y)
        singles.append(time.perf_counter() - t)
    out["single_p50_us"] = float(np.median(singles) * 1e6)
    before = rss_mb()
    start = time.perf_counter()
    network = load_network(engine, "car", index.version)
    out["network_build_s"] = time.perf_counter() - start
    out["network_mb"] = rss_mb() - before
    out["edges"] = network.n_edges
    centres = [index.locate(*p)["point"] for p in points[:40]]
    times = []
    for c in centres:
        t = time.perf_counter()
        try:
            isochrones(network, c["lon"], c["lat"], (1, 3, 5))
        except Exception:
            continue
        times.append(time.perf_counter() - t)
    out["isochrone_p50_ms"] = float(np.median(times) * 1e3)
    start = time.perf_counter()
    model = CoverageModel(engine, network, index)
    model.response((1, 3, 5), "all")
    out["coverage_s"] = time.perf_counter() - start
    return out


def database(admin: sa.Engine, n: int) -> str:
    name = f"geoservice_scale_{n}"
    with admin.connect() as conn:
        exists = conn.execute(
            sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
        ).scalar()
        if not exists:
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
    return name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--districts", type=int, nargs="+", default=[1, 20])
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure)))
        return
    from geoservice.db import create_engine, upgrade
    from geoservice.settings import Settings

    settings = Settings()
    admin = sa.create_engine(
        settings.sqlalchemy_url().set(database="postgres"), isolation_level="AUTOCOMMIT"
    )
    results_path = ROOT / "docs" / "scaling.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    for n in args.districts:
        url = settings.sqlalchemy_url().set(database=database(admin, n))
        text_url = url.render_as_string(hide_password=False)
        scoped = Settings(database_url=text_url)
        owner = create_engine(scoped, "owner")
        with owner.connect() as conn:
            conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS postgis")
            conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pgrouting")
            conn.commit()
        upgrade(owner)
        with owner.connect() as conn:
            loaded = conn.execute(
                sa.text("SELECT count(*) FROM geoservice.dataset_version")
            ).scalar()
        figures = results.get(str(n), {})
        if not loaded:
            env = {**os.environ, "GEOSERVICE_DATABASE_URL": text_url}
            start = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "geoservice", "demo", "--scale", str(n), "--by", "scale"],
                env=env,
                check=True,
                cwd=ROOT,
            )
            figures["load_s"] = time.perf_counter() - start
        owner.dispose()
        measured = subprocess.run(
            [sys.executable, "-m", "benchmarks.scale", "--measure", text_url],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        )
        figures.update(json.loads(measured.stdout.strip().splitlines()[-1]))
        results[str(n)] = figures
        results_path.write_text(json.dumps(results, indent=1))
        print(f"{n:>4} districts: " + ", ".join(f"{k} {v:,.3g}" for k, v in figures.items()))
    plot(results, ROOT / "docs" / "scaling.png")


def plot(results: dict[str, dict[str, float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ns = sorted(int(n) for n in results)
    series = [
        ("index_build_s", "locate index build (s)"),
        ("index_mb", "locate index memory (MB)"),
        ("batch_points_per_s", "batch locate (points/s)"),
        ("single_p50_us", "single locate p50 (µs)"),
        ("isochrone_p50_ms", "one-origin 1/3/5-min isochrone p50 (ms)"),
        ("coverage_s", "coverage evaluation (s)"),
    ]
    figure, axes = plt.subplots(2, 3, figsize=(13, 7))
    for ax, (key, title) in zip(axes.ravel(), series, strict=True):
        values = [results[str(n)].get(key, np.nan) for n in ns]
        ax.plot(ns, values, marker="o")
        ax.set_xscale("log")
        ax.set_xticks(ns, [str(n) for n in ns])
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("districts")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
    figure.suptitle("geoservice as the work grows (synthetic districts, one 2-core machine)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
