"""Single lookups alone and under heavy traffic, and a mixed batch over HTTP.

1. ``GET /v1/locate`` one at a time (one client, its own process): p50/p99/max alone, then
   while two clients post 100,000-point batches and one posts coverage scenarios, as a
   dispatch centre's traffic would mix them. Target under load: p99 <= 10 ms, max <= 100 ms.
2. ``POST /v1/locate`` with 100,000 points drawn over the district's bounding box (about
   60% outside) end to end over HTTP, beside what a user writes in-process for the same
   answer: shapely ``STRtree.query(..., "covered_by")``, then ``query_nearest`` for the
   misses (baseline, same run).

Run with ``make bench`` against a database holding the demo.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import sys
import time

import numpy as np
import shapely

from benchmarks._common import bench_key, best_of, free_port, serving
from geoservice.db import create_engine
from geoservice.locate import build_index
from geoservice.settings import Settings

SCENARIO = {
    "origins": "all",
    "minutes": [1, 3, 5],
    "add_points": [[114.43, 23.09]],
    "close_roads": ["东江2号桥"],
}


def _post_loop(port: int, path: str, body: bytes, key: str, stop, counter) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    headers = {"content-type": "application/json", "authorization": f"Bearer {key}"}
    while not stop.is_set():
        conn.request("POST", path, body, headers)
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            raise SystemExit(f"{path} answered {response.status}")
        with counter.get_lock():
            counter.value += 1


def singles(
    port: int, points: np.ndarray, seconds: float, key: str, pause_s: float = 0.005
) -> np.ndarray:
    """Latencies (ms) of sequential single lookups over one keep-alive connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"authorization": f"Bearer {key}"}
    times = []
    end = time.perf_counter() + seconds
    i = 0
    while time.perf_counter() < end:
        x, y = points[i % len(points)]
        start = time.perf_counter()
        conn.request("GET", f"/v1/locate?lon={x}&lat={y}", headers=headers)
        response = conn.getresponse()
        response.read()
        times.append(time.perf_counter() - start)
        if response.status != 200:
            raise SystemExit(f"single lookup answered {response.status}")
        i += 1
        time.sleep(pause_s)
    return np.array(times) * 1e3


def describe(name: str, ms: np.ndarray) -> str:
    return (
        f"  {name:<38} p50 {np.median(ms):7.2f} ms   p99 {np.percentile(ms, 99):7.2f} ms   "
        f"max {ms.max():7.2f} ms   ({len(ms):,} lookups)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    settings = Settings()
    index = build_index(create_engine(settings))
    rng = np.random.default_rng(5)
    minx, miny, maxx, maxy = shapely.total_bounds(index.polygons)
    box = np.column_stack([rng.uniform(minx, maxx, 100_000), rng.uniform(miny, maxy, 100_000)])
    inside = box[index.locate_many(box[:, 0], box[:, 1], nearest=False).status != 2]

    env = {"GEOSERVICE_DATABASE_URL": settings.sqlalchemy_url().render_as_string(False)}
    port = free_port()
    serve = [sys.executable, "-m", "geoservice", "serve", "--port", str(port)]
    with bench_key("planner") as key, serving(serve, port, env):
        batch = json.dumps({"points": box.tolist()}).encode()
        scenario = json.dumps(SCENARIO).encode()
        singles(port, inside, 2.0, key)  # warm-up
        alone = singles(port, inside, args.seconds / 2, key)

        stop = mp.Event()
        counters = [mp.Value("i", 0) for _ in range(3)]
        loads = [
            mp.Process(target=_post_loop, args=(port, "/v1/locate", batch, key, stop, counters[0])),
            mp.Process(target=_post_loop, args=(port, "/v1/locate", batch, key, stop, counters[1])),
            mp.Process(
                target=_post_loop,
                args=(port, "/v1/coverage/scenario", scenario, key, stop, counters[2]),
            ),
        ]
        for process in loads:
            process.start()
        time.sleep(2.0)
        loaded = singles(port, inside, args.seconds, key)
        stop.set()
        for process in loads:
            process.join(timeout=300)
        failed = [p.exitcode for p in loads if p.exitcode != 0]

        def post() -> int:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
            headers = {"content-type": "application/json", "authorization": f"Bearer {key}"}
            conn.request("POST", "/v1/locate", batch, headers)
            response = conn.getresponse()
            return len(response.read())

        size = post()
        post_s = best_of(post)

    print("single GET /v1/locate, one client, sequential (1 front process, 2 workers)")
    print(describe("alone", alone))
    print(describe("under 2 batch + 1 scenario clients", loaded))
    print(
        f"    during the load: {counters[0].value + counters[1].value} batches of 100,000 and "
        f"{counters[2].value} scenarios answered; failed clients: {failed or 'none'}"
    )
    print("    target under load: p99 <= 10 ms, max <= 100 ms")

    tree = shapely.STRtree(index.polygons)

    def baseline() -> None:
        points = shapely.points(box[:, 0], box[:, 1])
        hit_point, _ = tree.query(points, predicate="covered_by")
        missing = np.setdiff1d(np.arange(len(points)), hit_point)
        tree.query_nearest(points[missing], all_matches=False)

    base_s = best_of(baseline)
    outside = (index.locate_many(box[:, 0], box[:, 1], nearest=False).status == 2).mean()
    print(
        f"\nPOST /v1/locate, 100,000 points over the district's bounding box ({outside:.0%} "
        f"outside), end to end over HTTP ({size / 1e6:.0f} MB answer)"
    )
    ratio = base_s / post_s
    print(f"  geoservice {post_s * 1e3:8.1f} ms   baseline {base_s * 1e3:8.1f} ms   x{ratio:.2f}")
    print(
        "    baseline: in-process shapely STRtree.query(points, 'covered_by') then "
        "query_nearest for the misses (no JSON, no HTTP)"
    )


if __name__ == "__main__":
    main()
