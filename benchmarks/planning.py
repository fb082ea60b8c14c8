"""Planning benchmark: exact MILP (HiGHS) beside greedy on the demo's central city.

Run with ``make bench`` (or ``.venv/bin/python -m benchmarks.planning``) against a database
holding the demo. The issue's bar: at least 2,000 demand points x 1,000 candidates solved
within 60 s on this machine. Nothing here asserts a timing.
"""

from __future__ import annotations

import time

from geoservice import planning
from geoservice.coverage import CoverageModel
from geoservice.db import create_engine
from geoservice.settings import Settings


def main() -> None:
    engine = create_engine(Settings())
    model = CoverageModel.load(engine)
    for minutes, problems in ((3.0, ("max 5", "max 10")), (5.0, ("set",))):
        start = time.perf_counter()
        instance = planning.build_instance(model, minutes)
        built = time.perf_counter() - start
        rows, candidates = instance.cover.shape
        print(
            f"{minutes:g} min: {instance.demand_points:,} demand points ({rows:,} after merging "
            f"identical ones) x {candidates:,} candidates, {instance.cover.nnz:,} pairs; "
            f"built in {built:.1f} s"
        )
        for problem in problems:
            if problem == "set":
                exact = planning.set_covering(instance)
                greedy = planning.greedy_set_cover(instance)
                label = "set covering (points)"
            else:
                k = int(problem.split()[1])
                exact = planning.maximal_covering(instance, k)
                greedy = planning.greedy_maximal(instance, k)
                label = f"maximal covering k={k} (residents)"
            print(
                f"  {label:<34} HiGHS {exact.objective:>10,.0f} gap {exact.gap:.2%} "
                f"{exact.seconds:6.1f} s ({exact.status}) | greedy {greedy.objective:>10,.0f} "
                f"{greedy.seconds:6.2f} s"
            )


if __name__ == "__main__":
    main()
