"""Grid design benchmark: the whole district proposed in 300-500 households, and one
town's blocks grouped by geoservice beside PySAL spopt's ``MaxPHeuristic`` on the same
blocks.

Run with ``make bench`` (or ``.venv/bin/python -m benchmarks.grid_design``) against a
database holding the demo. The issue's bar: the whole district within 60 s. The demo's
rivers (the Dongjiang and Xizhijiang, synthetic courses: the database holds no water
layer) cut blocks as ``geoservice grids propose --rivers`` would. spopt's max-p has a floor
and no ceiling and does not nest: the figures say how many of its regions pass 500
households or span two large grids. Nothing here asserts a timing.
"""

from __future__ import annotations

import time

import geopandas as gpd
import numpy as np
import shapely
from shapely.geometry import LineString

from geoservice import grid_design
from geoservice.datasets import current_version_id
from geoservice.db import create_engine
from geoservice.grid_design.blocks import Cuts, blocks_of
from geoservice.grid_design.measure import Sizes
from geoservice.grid_design.scope import (
    large_grids_in,
    read_grids,
    read_places,
    read_road_lines,
)
from geoservice.settings import Settings
from geoservice.store import VersionReader
from geoservice.synthetic.roads import DONGJIANG, XIZHIJIANG

TOWN = "441302001"
BAND = grid_design.Band("households", 300, 500)
RIVERS = [LineString(DONGJIANG), LineString(XIZHIJIANG)]


def main() -> None:
    engine = create_engine(Settings())
    with engine.connect() as conn:
        version = current_version_id(conn)
        assert version is not None, "load the demo first: geoservice demo"
        start = time.perf_counter()
        whole = grid_design.propose(conn, version, grid_design.Scope(all=True), BAND, rivers=RIVERS)
        took = time.perf_counter() - start
        report = whole.report()
        print(
            f"whole district: {report['grids_before']:,} grids -> {report['grids_after']:,} "
            f"({report['kept']} kept, {report['in_band']} in {BAND}) in {took:.1f} s "
            "(target <= 60 s)"
        )
        scope = grid_design.Scope(towns=(TOWN,))
        start = time.perf_counter()
        town = grid_design.propose(conn, version, scope, BAND, keep_fitting=False, rivers=RIVERS)
        ours_s = time.perf_counter() - start
        blocks = _blocks(conn, version, scope)
    after = [g for plan in town.plans for g in plan.after]
    print(
        f"town {TOWN}, geoservice (--redraw-all): {len(blocks)} blocks in "
        f"{len(town.plans)} large grids -> {len(after)} grids, "
        f"{sum(BAND.low <= g.size <= BAND.high for g in after)} in the band, "
        f"{sum(g.size > BAND.high for g in after)} over the ceiling, none spanning two "
        f"large grids, in {ours_s:.1f} s (reading included)"
    )
    _spopt(blocks)


def _blocks(conn, version: int, scope: grid_design.Scope) -> gpd.GeoDataFrame:
    """The blocks of the scope's large grids (whole areas), with their households."""
    reader = VersionReader(conn, version)
    parents = large_grids_in(reader, scope)
    points, residents, households = read_places(reader, parents)
    measure = Sizes(points, households, residents, np.empty((0, 2)))
    cuts = Cuts([*read_road_lines(reader, parents), *RIVERS])
    by_parent: dict[str, list] = {}
    for _code, _name, parent, _population, geom in read_grids(reader, parents):
        by_parent.setdefault(parent, []).append(geom)
    rows = []
    for parent, geoms in sorted(by_parent.items()):
        for block in blocks_of(shapely.coverage_union_all(geoms), cuts):
            rows.append((parent, block))
    sizes, _ = measure.of_many([b for _, b in rows])
    return gpd.GeoDataFrame(
        {"households": sizes, "large_grid": [p for p, _ in rows]},
        geometry=[b for _, b in rows],
        crs="EPSG:4326",
    )


def _spopt(blocks: gpd.GeoDataFrame) -> None:
    from libpysal.weights import Rook
    from spopt.region import MaxPHeuristic

    frame = blocks.to_crs(4547)
    frame["x"], frame["y"] = frame.geometry.centroid.x, frame.geometry.centroid.y
    start = time.perf_counter()
    weights = Rook.from_dataframe(frame, use_index=False, silence_warnings=True)
    model = MaxPHeuristic(
        frame, weights, ["x", "y"], "households", BAND.low, top_n=2, verbose=False
    )
    model.solve()
    took = time.perf_counter() - start
    labels = np.asarray(model.labels_)
    sizes = frame.groupby(labels)["households"].sum()
    crossing = frame.groupby(labels)["large_grid"].nunique()
    print(
        f"town {TOWN}, spopt MaxPHeuristic (floor {BAND.low}, no ceiling): {len(frame)} blocks "
        f"-> {len(sizes)} regions, {int(((sizes >= BAND.low) & (sizes <= BAND.high)).sum())} "
        f"in the band, {int((sizes > BAND.high).sum())} over the ceiling, "
        f"{int((crossing > 1).sum())} spanning two large grids, in {took:.1f} s"
    )


if __name__ == "__main__":
    main()
