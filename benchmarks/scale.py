"""How the work grows with the number of districts: 1 (Huicheng), 20 (Huizhou and its
neighbours), 122 (Guangdong's county-level divisions).

    .venv/bin/python -m benchmarks.scale --districts 1 20 122

For each N: a database ``geoservice_scale_N`` in the local cluster, loaded once with
``geoservice demo --scale N`` (the load is timed); then, each in a fresh process so that
memory is its own: the locate index build (time, memory) with single and batch locate;
the road network build with one-origin 1/3/5-minute isochrones (40 random origins); the
coverage model and one evaluation; coverage district by district on a two-worker Dask
``LocalCluster`` (``--by-district``: first with an empty state directory, so the workers
build the version's state, then again mapping it). A part the machine cannot hold is
recorded as such. The figures go to ``docs/scaling.json`` and the curves to
``docs/scaling.png``; ``--parts`` measures only some parts (the others' figures stay).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * 4096 / 1e6


PARTS = ("index", "network", "coverage", "by_district")
"""Measured each in a process of its own, so that memory is its own and a part the
machine cannot hold (killed by the kernel) leaves the others' figures."""


def measure(url: str, part: str) -> dict[str, float]:
    """One part's figures on the database at ``url``."""
    from geoservice.bands import DEFAULT_BANDS
    from geoservice.coverage import CoverageModel, OriginKind
    from geoservice.coverage.partitioned import response_by_district
    from geoservice.db import create_engine
    from geoservice.isochrones import isochrones
    from geoservice.locate import build_index
    from geoservice.locate.index import labels_part
    from geoservice.network import load_network
    from geoservice.settings import Settings

    engine = create_engine(Settings(database_url=url), "owner")
    out: dict[str, float] = {}
    rng = np.random.default_rng(3)
    gc.collect()
    before = rss_mb()
    start = time.perf_counter()
    if part == "index":
        index = build_index(engine)
        out["index_build_s"] = time.perf_counter() - start
        out["index_mb"] = rss_mb() - before
        out["grids"] = len(index.grids)
        parts = (index.geometry_part(), labels_part(index.version, index.grids, index.district))
        out["index_state_mb"] = sum(a.nbytes for p in parts for a in p.arrays.values()) / 1e6
        polygons = index.polygons[rng.integers(0, len(index.polygons), 2000)]
        centres = np.array([p.representative_point().coords[0] for p in polygons])
        lon = np.repeat(centres[:, 0], 500) + rng.normal(0, 0.002, 1_000_000)
        lat = np.repeat(centres[:, 1], 500) + rng.normal(0, 0.002, 1_000_000)
        start = time.perf_counter()
        index.locate_many(lon, lat)
        out["batch_points_per_s"] = len(lon) / (time.perf_counter() - start)
        singles = []
        for x, y in zip(lon[:50_000:7].tolist(), lat[:50_000:7].tolist(), strict=True):
            t = time.perf_counter()
            index.locate(x, y)
            singles.append(time.perf_counter() - t)
        out["single_p50_us"] = float(np.median(singles) * 1e6)
    elif part == "network":
        network = load_network(engine, "car")
        out["network_build_s"] = time.perf_counter() - start
        out["network_mb"] = rss_mb() - before
        out["edges"] = network.n_edges
        origins = network.node_lonlat[rng.integers(0, network.n_nodes, 40)]
        for x, y in origins[:3]:  # warm-up: the per-network caches
            isochrones(network, x, y, (1, 3, 5))
        times = []
        for x, y in origins:
            t = time.perf_counter()
            isochrones(network, x, y, (1, 3, 5))
            times.append(time.perf_counter() - t)
        out["isochrone_p50_ms"] = float(np.median(times) * 1e3)
    elif part == "coverage":
        model = CoverageModel.load(engine)
        out["coverage_model_s"] = time.perf_counter() - start
        start = time.perf_counter()
        model.response(DEFAULT_BANDS, OriginKind.ALL)
        out["coverage_s"] = time.perf_counter() - start
    else:
        with tempfile.TemporaryDirectory(prefix="geoservice-scale-state-") as state_dir:
            scoped = Settings(database_url=url, state_dir=Path(state_dir))
            for run in ("cold", "warm"):
                start = time.perf_counter()
                response_by_district(scoped, DEFAULT_BANDS, OriginKind.ALL, n_workers=2)
                out[f"by_district_{run}_s"] = time.perf_counter() - start
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
    parser.add_argument("--parts", choices=PARTS, nargs="+", default=list(PARTS))
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    parser.add_argument("--part", choices=PARTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.part)))
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
        for part in args.parts:
            if part in ("coverage", "by_district") and "network_failed" in figures:
                figures[f"{part}_failed"] = "not run: it needs the network"
                continue
            measured = subprocess.run(
                [sys.executable, "-m", "benchmarks.scale", "--measure", text_url, "--part", part],
                capture_output=True,
                text=True,
                cwd=ROOT,
            )
            if measured.returncode == 0:
                figures.update(json.loads(measured.stdout.strip().splitlines()[-1]))
                figures.pop(f"{part}_failed", None)
            else:  # -9: the kernel's out-of-memory killer
                reason = "killed: out of memory" if measured.returncode == -9 else "failed"
                figures[f"{part}_failed"] = reason
                print(f"{n} districts, {part}: {reason}\n{measured.stderr[-2000:]}")
        results[str(n)] = figures
        results_path.write_text(json.dumps(results, indent=1))
        print(
            f"{n:>4} districts: "
            + ", ".join(
                f"{k} {v:,.3g}" if isinstance(v, float | int) else f"{k} {v}"
                for k, v in figures.items()
            )
        )
    plot(results, ROOT / "docs" / "scaling.png")


def plot(results: dict[str, dict[str, float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ns = sorted(int(n) for n in results)
    series = [
        ("index_build_s", "locate index build (s)", "index"),
        ("index_mb", "locate index memory (MB)", "index"),
        ("batch_points_per_s", "batch locate (points/s)", "index"),
        ("single_p50_us", "single locate p50 (µs)", "index"),
        ("isochrone_p50_ms", "one-origin 1/3/5-min isochrone p50 (ms)", "network"),
        ("coverage_s", "coverage evaluation (s)", "coverage"),
        ("by_district_warm_s", "coverage by district, Dask, state mapped (s)", "by_district"),
    ]
    figure, axes = plt.subplots(2, 4, figsize=(17, 7))
    axes.ravel()[-1].axis("off")
    for ax, (key, title, part) in zip(axes.ravel(), series, strict=False):
        values = [float(results[str(n)].get(key, np.nan)) for n in ns]
        ax.plot(ns, values, marker="o")
        for n in ns:
            failed = results[str(n)].get(f"{part}_failed")
            if failed:
                ax.annotate(
                    failed,
                    (n, 0),
                    xytext=(-4, 8),
                    textcoords="offset points",
                    ha="right",
                    fontsize=8,
                    color="firebrick",
                )
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
