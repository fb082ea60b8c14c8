"""Vector tile benchmark: z14 tiles over the city, cold (rendered by PostGIS) and cached, over
HTTP, beside the same tiles rendered by a bare ``ST_AsMVT`` query in the same run.

Run with ``make bench`` against a database holding the demo.
"""

from __future__ import annotations

import http.client
import sys
import time

import numpy as np

from benchmarks._common import bench_key, free_port, serving
from geoservice.datasets import current_version_id
from geoservice.db import create_engine
from geoservice.settings import Settings
from geoservice.tiles import TMS, TileId, render


def _tiles(zoom: int, count: int) -> list[TileId]:
    """``count`` distinct tiles around the city centre at ``zoom``."""
    centre = TMS.tile(114.41, 23.11, zoom)
    side = int(np.ceil(np.sqrt(count)))
    return [
        TileId(zoom, centre.x + dx - side // 2, centre.y + dy - side // 2)
        for dx in range(side)
        for dy in range(side)
    ][:count]


def _get(conn: http.client.HTTPConnection, path: str, key: str) -> float:
    start = time.perf_counter()
    conn.request("GET", path, headers={"authorization": f"Bearer {key}"})
    response = conn.getresponse()
    response.read()
    if response.status != 200:
        raise SystemExit(f"{path} answered {response.status}")
    return (time.perf_counter() - start) * 1e3


def main() -> None:
    settings = Settings()
    tiles = _tiles(14, 64)
    engine = create_engine(settings)
    with engine.connect() as conn:
        version = current_version_id(conn)
        bare = []
        for tile in tiles:
            start = time.perf_counter()
            render(conn, ["grid"], version, tile)
            bare.append((time.perf_counter() - start) * 1e3)
    env = {"GEOSERVICE_DATABASE_URL": settings.sqlalchemy_url().render_as_string(False)}
    port = free_port()
    serve = [sys.executable, "-m", "geoservice", "serve", "--port", str(port)]
    with bench_key("planner") as key, serving(serve, port, env):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        results = {}
        for name, layers in (
            ("grid", "/ogc/collections/grid/tiles/WebMercatorQuad"),
            ("basemap", "/v1/basemap"),
        ):
            paths = [
                f"{layers}/{t.z}/{t.y}/{t.x}" if name == "grid" else f"{layers}/{t.z}/{t.x}/{t.y}"
                for t in tiles
            ]
            cold = [_get(conn, path, key) for path in paths]
            cached = [_get(conn, path, key) for path in paths]
            results[name] = (cold, cached)
    print(f"vector tiles, zoom 14, {len(tiles)} tiles around the city centre, over HTTP")
    for name, (cold, cached) in results.items():
        print(
            f"  {name:<8} cold p50 {np.median(cold):6.1f} ms  p90 {np.percentile(cold, 90):6.1f} ms"
            f"   cached p50 {np.median(cached):5.2f} ms  p90 {np.percentile(cached, 90):5.2f} ms"
        )
    print(
        f"  baseline: the grid layer's ST_AsMVT query alone, in process: p50 {np.median(bare):.1f}"
    )


if __name__ == "__main__":
    main()
