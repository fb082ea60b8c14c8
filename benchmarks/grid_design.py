"""Grid design benchmark: the whole district proposed in 300-500 households, and one
town beside PySAL spopt's ``MaxPHeuristic`` on the same building blocks (the town's grids).

Run with ``make bench`` (or ``.venv/bin/python -m benchmarks.grid_design``) against a
database holding the demo. The issue's bar: the whole district within 60 s. spopt's max-p
has a floor and no ceiling: the figures say how many of its regions pass 500 households.
Nothing here asserts a timing.
"""

from __future__ import annotations

import time

import geopandas as gpd
import numpy as np

from geoservice import grid_design
from geoservice.datasets import current_version_id
from geoservice.db import create_engine
from geoservice.settings import Settings

TOWN = "441302001"
BAND = grid_design.Band("households", 300, 500)


def main() -> None:
    engine = create_engine(Settings())
    with engine.connect() as conn:
        version = current_version_id(conn)
        assert version is not None, "load the demo first: geoservice demo"
        start = time.perf_counter()
        whole = grid_design.propose(conn, version, grid_design.Scope(all=True), BAND)
        took = time.perf_counter() - start
        report = whole.report()
        print(
            f"whole district: {report['grids_before']:,} grids -> {report['grids_after']:,} "
            f"({report['kept']} kept, {report['in_band']} in {BAND}) in {took:.1f} s "
            "(target <= 60 s)"
        )
        start = time.perf_counter()
        town = grid_design.propose(conn, version, grid_design.Scope(towns=(TOWN,)), BAND)
        ours_s = time.perf_counter() - start
    after = [g for plan in town.plans for g in plan.after]
    before = [g for plan in town.plans for g in plan.before]
    print(
        f"town {TOWN}, geoservice: {len(before)} grids -> {len(after)}, "
        f"{sum(BAND.low <= g.size <= BAND.high for g in after)} in the band, "
        f"{sum(g.size > BAND.high for g in after)} over the ceiling, in {ours_s:.1f} s"
    )
    _spopt(before)


def _spopt(blocks: list[grid_design.Grid]) -> None:
    from libpysal.weights import Rook
    from spopt.region import MaxPHeuristic

    frame = gpd.GeoDataFrame(
        {
            "households": [g.size for g in blocks],
            "large_grid": [g.parent_code for g in blocks],
        },
        geometry=[g.geometry for g in blocks],
        crs="EPSG:4326",
    ).to_crs(4547)
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
