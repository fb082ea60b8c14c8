"""Fastest-responder and live-coverage benchmark on the demo (``make bench``).

Responders: the demo's 232 stations and posts and 100 patrol units at positions on the
central city's roads. Printed side by side, measured in this run:

1. In process, one incident: ours (one reverse search, ``responders.fastest``) against
   one search per responder (what a loop over Valhalla/ORS routes or OSMnx paths does)
   and pgRouting's many-to-one ``pgr_dijkstraCost`` from the responders' nearest nodes.
2. Over HTTP (a real server): ``GET /v1/dispatch`` p50/p90 (target p50 <= 20 ms) and
   ``GET /v1/coverage/live`` (the live map's refresh) after ``POST /v1/patrols/positions``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.request
from datetime import UTC, datetime

import numpy as np
import sqlalchemy as sa

from benchmarks._common import bench_key, free_port, serving
from geoservice.db import create_engine
from geoservice.responders import fastest, place
from geoservice.settings import Settings
from geoservice.state import VersionState

PGR_SQL = """
SELECT start_vid, agg_cost FROM pgr_dijkstraCost(
  'SELECT id, source, target, cost, reverse_cost FROM road_edges', :starts, :goal)
ORDER BY agg_cost LIMIT 3
"""
NEAREST_NODE = """
SELECT id FROM geoservice.current_road_node
ORDER BY geom <-> ST_SetSRID(ST_MakePoint(:x, :y), 4326) LIMIT 1
"""


def percentiles(seconds: list[float]) -> str:
    ms = np.array(seconds) * 1e3
    p50, p90 = np.percentile(ms, [50, 90])
    return f"p50 {p50:7.1f} ms  p90 {p90:7.1f} ms  (n={len(ms)})"


def incidents(state: VersionState, n: int, rng: np.random.Generator) -> np.ndarray:
    """A point in each of ``n`` grids drawn at random."""
    chosen = rng.choice(len(state.index.polygons), n)
    points = [state.index.polygons[g].representative_point() for g in chosen]
    return np.array([(p.x, p.y) for p in points])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--incidents", type=int, default=300)
    args = parser.parse_args()
    settings = Settings()
    engine = create_engine(settings)
    rng = np.random.default_rng(7)
    state = VersionState.build(engine, full=True)
    reverse, fixed = state.responders()
    units = list(state.patrol_units().values())[:100]
    network = state.network()
    central = np.flatnonzero(
        np.hypot(network.node_lonlat[:, 0] - 114.41, network.node_lonlat[:, 1] - 23.10) < 0.04
    )
    spots = network.node_lonlat[rng.choice(central, len(units), replace=False)]
    moving = place(
        reverse,
        ["patrol"] * len(units),
        [u.code for u in units],
        [u.name for u in units],
        spots[:, 0],
        spots[:, 1],
    )
    responders = fixed + moving
    points = incidents(state, args.incidents, rng)
    print(f"responders: {len(fixed.codes)} stations and posts + {len(units)} patrol units")

    ours = []
    for lon, lat in points:
        start = time.perf_counter()
        fastest(reverse, responders, lon, lat, 3)
        ours.append(time.perf_counter() - start)
    print(f"  ours: one reverse search              {percentiles(ours)}")

    per_responder = []
    s = responders.snaps
    for lon, lat in points[:10]:
        start = time.perf_counter()
        goal = network.snap_points([lon], [lat])
        for row in range(len(s.edge)):
            origin = network.snap_points([s.lon[row]], [s.lat[row]])
            network.reach(origin, 600.0).time_at(goal.edge, goal.fraction)
        per_responder.append(time.perf_counter() - start)
    print(f"  one search per responder (332)       {percentiles(per_responder)}")

    owner = create_engine(settings, "owner")
    with owner.connect() as conn:
        starts = [
            conn.execute(sa.text(NEAREST_NODE), {"x": float(x), "y": float(y)}).scalar_one()
            for x, y in zip(s.lon.tolist(), s.lat.tolist(), strict=True)
        ]
        pgr = []
        for lon, lat in points[:10]:
            start = time.perf_counter()
            goal = conn.execute(sa.text(NEAREST_NODE), {"x": lon, "y": lat}).scalar_one()
            conn.execute(sa.text(PGR_SQL), {"starts": starts, "goal": goal}).all()
            pgr.append(time.perf_counter() - start)
    owner.dispose()
    print(f"  pgRouting pgr_dijkstraCost many-to-one {percentiles(pgr)}")
    print(
        f"  ours is x{np.median(per_responder) / np.median(ours):,.0f} faster than a search per "
        f"responder, x{np.median(pgr) / np.median(ours):,.0f} faster than pgRouting"
    )
    http(settings, points, units, spots)


def http(settings: Settings, points: np.ndarray, units, spots: np.ndarray) -> None:
    env = {"GEOSERVICE_DATABASE_URL": settings.sqlalchemy_url().render_as_string(False)}
    port = free_port()
    serve = [sys.executable, "-m", "geoservice", "serve", "--port", str(port)]
    # admin: since device keys, only admin keys or keys bound to units post positions
    with bench_key("admin") as key, serving(serve, port, env) as base:
        headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}
        now = datetime.now(UTC).isoformat()
        body = {
            "positions": [
                {"unit": u.code, "lon": float(x), "lat": float(y), "time": now}
                for u, (x, y) in zip(units, spots, strict=True)
            ]
        }
        request = urllib.request.Request(
            f"{base}/v1/patrols/positions", json.dumps(body).encode(), headers, method="POST"
        )
        with urllib.request.urlopen(request) as response:
            recorded = json.loads(response.read())["recorded"]

        def get(path: str) -> float:
            start = time.perf_counter()
            with urllib.request.urlopen(urllib.request.Request(base + path, None, headers)) as r:
                r.read()
            return time.perf_counter() - start

        for lon, lat in points[:20]:  # warm-up
            get(f"/v1/dispatch?lon={lon}&lat={lat}")
        dispatch = [get(f"/v1/dispatch?lon={lon}&lat={lat}") for lon, lat in points]
        live = [get("/v1/coverage/live?grids=true") for _ in range(10)]
        print(f"HTTP, {recorded} patrol positions recorded:")
        print(f"  GET /v1/dispatch (k=3)                {percentiles(dispatch)}  target p50 <= 20")
        print(f"  GET /v1/coverage/live?grids=true      {percentiles(live)}  target < 1000")


if __name__ == "__main__":
    main()
