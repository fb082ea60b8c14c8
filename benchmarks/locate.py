"""Locate benchmark: geoservice beside shapely, geopandas, PostGIS, on the demo data.

Run with ``make bench`` (or ``.venv/bin/python -m benchmarks.locate``) against a database
holding the demo. Every figure is printed next to its baseline, measured in the same run;
the ratios matter, since these machines are noisy. Nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
import urllib.request

import geopandas as gpd
import numpy as np
import shapely
import sqlalchemy as sa

from benchmarks._common import bench_key, best_of, free_port, serving, wrk
from geoservice.db import create_engine
from geoservice.locate import build_index
from geoservice.settings import Settings


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * 4096 / 1e6


def points_in_district(index, n: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Uniform random points inside the grids (incidents happen inside the district)."""
    rng = np.random.default_rng(seed)
    minx, miny, maxx, maxy = shapely.total_bounds(index.polygons)
    lon, lat = [], []
    while sum(len(x) for x in lon) < n:
        x = rng.uniform(minx, maxx, n)
        y = rng.uniform(miny, maxy, n)
        keep = index.locate_many(x, y, nearest=False).status != 2
        lon.append(x[keep])
        lat.append(y[keep])
    return np.concatenate(lon)[:n], np.concatenate(lat)[:n]


def row(name: str, ours: float, base: float, unit: str, higher_is_better: bool = True) -> None:
    ratio = ours / base if higher_is_better else base / ours
    print(f"  {name:<44} {ours:>14,.1f} {unit:<9} baseline {base:>14,.1f} {unit:<9} x{ratio:,.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--http-seconds", type=int, default=10)
    args = parser.parse_args()
    settings = Settings()
    engine = create_engine(settings)

    gc.collect()
    before = rss_mb()
    start = time.perf_counter()
    index = build_index(engine)
    build_s = time.perf_counter() - start
    grown = rss_mb() - before
    print(f"locate index, dataset version {index.version}: {len(index.grids):,} grids")
    print(
        f"  build {build_s:.2f} s (target <= 5 s); process memory +{grown:.0f} MB "
        f"(target <= 200 MB); cell table {index.memory_bytes / 1e6:.0f} MB, "
        f"{index.table.boundary_cell_share:.1%} boundary cells"
    )

    lon, lat = points_in_district(index, args.points)
    print(f"\nbatch, {len(lon):,} random points inside the district, one core")
    ours = best_of(lambda: index.locate_many(lon, lat))
    tree = shapely.STRtree(index.polygons)
    strtree = best_of(lambda: tree.query(shapely.points(lon, lat), predicate="intersects"))
    row("geoservice locate_many (points/s)", len(lon) / ours, len(lon) / strtree, "pts/s")
    print("    baseline: shapely STRtree.query(points, predicate='intersects')")
    n_sjoin = min(len(lon), 200_000)
    frame = gpd.GeoDataFrame(geometry=gpd.points_from_xy(lon[:n_sjoin], lat[:n_sjoin]), crs=4326)
    grids = gpd.GeoDataFrame({"code": index.codes}, geometry=index.polygons, crs=4326)
    sjoin = best_of(lambda: gpd.sjoin(frame, grids, predicate="intersects"), repeat=1)
    ours_small = best_of(lambda: index.locate_many(lon[:n_sjoin], lat[:n_sjoin]))
    row("geoservice vs geopandas.sjoin (points/s)", n_sjoin / ours_small, n_sjoin / sjoin, "pts/s")
    n_pg = min(len(lon), 100_000)
    sql = sa.text(
        "SELECT count(*) FROM unnest(CAST(:x AS float8[]), CAST(:y AS float8[])) AS p(x, y) "
        "JOIN geoservice.current_grid g "
        "ON ST_Covers(g.geom, ST_SetSRID(ST_MakePoint(p.x, p.y), 4326))"
    )
    with engine.connect() as conn:
        pg = best_of(
            lambda: conn.execute(
                sql, {"x": lon[:n_pg].tolist(), "y": lat[:n_pg].tolist()}
            ).scalar(),
            repeat=1,
        )
    ours_pg = best_of(lambda: index.locate_many(lon[:n_pg], lat[:n_pg]))
    row("geoservice vs PostGIS ST_Covers join (points/s)", n_pg / ours_pg, n_pg / pg, "pts/s")

    print("\nsingle in-process call, 100,000 calls")
    xs, ys = lon[:100_000].tolist(), lat[:100_000].tolist()
    times = np.empty(len(xs))
    for i, (x, y) in enumerate(zip(xs, ys, strict=True)):
        t = time.perf_counter()
        index.locate(x, y)
        times[i] = time.perf_counter() - t
    prepared = index.polygons
    base_times = np.empty(20_000)
    for i in range(20_000):
        t = time.perf_counter()
        hits = tree.query(shapely.Point(xs[i], ys[i]), predicate="intersects")
        index.grids[int(hits[0])].hierarchy if len(hits) else None
        base_times[i] = time.perf_counter() - t
    del prepared
    row("p50 latency (µs)", np.median(times) * 1e6, np.median(base_times) * 1e6, "µs", False)
    row(
        "p99 latency (µs)",
        np.percentile(times, 99) * 1e6,
        np.percentile(base_times, 99) * 1e6,
        "µs",
        False,
    )
    print("    baseline: one STRtree.query per call (shapely, prepared polygons)")

    http(index, lon, lat, settings, tree, args.http_seconds)


def http(index, lon, lat, settings, tree, seconds: int) -> None:
    url = settings.sqlalchemy_url().render_as_string(hide_password=False)
    env = {"GEOSERVICE_DATABASE_URL": url}
    python = sys.executable
    x, y = float(lon[7]), float(lat[7])
    serve = [python, "-m", "geoservice", "serve", "--workers", "2"]
    port = free_port()
    with serving([*serve, "--port", str(port)], port, {**env, "GEOSERVICE_AUTH": "off"}) as base:
        open_door = wrk(f"{base}/v1/locate?lon={x}&lat={y}", seconds=seconds)
    port = free_port()
    with bench_key("dispatch") as key, serving([*serve, "--port", str(port)], port, env) as base:
        print(
            f"\nHTTP GET /v1/locate, wrk 32 connections {seconds} s, 2 server processes, loopback"
        )
        ours = wrk(f"{base}/v1/locate?lon={x}&lat={y}", seconds=seconds, key=key)
        body = json.dumps({"points": np.column_stack([lon[:100_000], lat[:100_000]]).tolist()})
        data = body.encode()

        def post() -> int:
            request = urllib.request.Request(
                f"{base}/v1/locate",
                data=data,
                headers={"content-type": "application/json", "authorization": f"Bearer {key}"},
            )
            with urllib.request.urlopen(request, timeout=120) as response:
                return len(response.read())

        size = post()
        post_s = best_of(post)
    port = free_port()
    baseline = [
        python,
        "-m",
        "uvicorn",
        "benchmarks.baseline_postgis_app:app",
        "--port",
        str(port),
        "--workers",
        "2",
        "--log-level",
        "warning",
    ]
    with serving(baseline, port, env, ready="/health") as base:
        theirs = wrk(f"{base}/v1/locate?lon={x}&lat={y}", seconds=seconds)
    row("requests/s, with a key", ours["rps"], theirs["rps"], "req/s")
    row("p99 latency (ms), with a key", ours["p99_ms"], theirs["p99_ms"], "ms", False)
    print(
        "    baseline: FastAPI handler with one PostGIS ST_Covers query per request "
        f"(benchmarks/baseline_postgis_app.py); non-2xx: ours {ours['non_2xx']:.0f}, "
        f"baseline {theirs['non_2xx']:.0f}"
    )
    row("requests/s, with a key vs keys off", ours["rps"], open_door["rps"], "req/s")
    print(
        "    baseline: the same server with GEOSERVICE_AUTH=off (loopback), same run; "
        "target: within 10%"
    )
    points = shapely.points(lon[:100_000], lat[:100_000])
    strtree = best_of(
        lambda: tree.query(shapely.points(lon[:100_000], lat[:100_000]), predicate="intersects")
    )
    del points
    print(f"\nPOST /v1/locate, 100,000 points end to end over HTTP ({size / 1e6:.0f} MB answer)")
    row("milliseconds", post_s * 1e3, strtree * 1e3, "ms", False)
    print("    baseline: bare in-process shapely STRtree.query over the same points")


if __name__ == "__main__":
    main()
