"""One evaluation's answer: per grid minutes to reach, per band shares, and what a
scenario changes; as JSON, a table, a GeoDataFrame or a map."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from geoservice.bands import Bands
from geoservice.coverage.demand import Grids
from geoservice.coverage.kinds import Weight
from geoservice.isochrones import plain_number


@dataclass
class Coverage:
    """The evaluation of one set of origins over one network."""

    minutes: Bands
    origins: str  # an OriginKind, or "live"
    grids: Grids
    minutes_to_reach: NDArray[np.float64]  # per grid; inf beyond the horizon
    nearest_origin: list[str | None]
    dataset_version: int
    weight: Weight = Weight.RESIDENTS
    extra: dict[str, Any] = field(default_factory=dict)

    def bands(self) -> list[dict[str, Any]]:
        total_pop = float(self.grids.population.sum()) or 1.0
        total_area = float(self.grids.area_km2.sum()) or 1.0
        out = []
        for m in self.minutes:
            covered = self.minutes_to_reach <= m
            out.append(
                {
                    "minutes": plain_number(m),
                    "grids_total": len(covered),
                    "grids_covered": int(covered.sum()),
                    "grid_share": round(float(covered.mean()), 6),
                    "area_share": round(float(self.grids.area_km2[covered].sum()) / total_area, 6),
                    "population_share": round(
                        float(self.grids.population[covered].sum()) / total_pop, 6
                    ),
                }
            )
        return out

    def table(self) -> pd.DataFrame:
        """One row per grid, for planners (CSV, GeoJSON, maps)."""
        reach = np.where(np.isfinite(self.minutes_to_reach), self.minutes_to_reach, np.nan)
        frame = pd.DataFrame(
            {
                "code": self.grids.codes,
                "name": self.grids.names,
                "town_code": self.grids.towns,
                "population" if self.weight == Weight.RESIDENTS else "events": (
                    self.grids.population
                ),
                "area_km2": self.grids.area_km2,
                "minutes_to_reach": round_up(reach, 3),
                "nearest_origin": self.nearest_origin,
            }
        )
        for m in self.minutes:
            frame[f"covered_{plain_number(m)}min"] = self.minutes_to_reach <= m
        return frame

    def grid_minutes(self) -> dict[str, Any]:
        """Every grid's minutes to reach (rounded up; null beyond the horizon), as two
        parallel lists in code order (``GET /v1/coverage/grids``)."""
        return {
            "minutes": [plain_number(m) for m in self.minutes],
            "origins": self.origins,
            "codes": [str(code) for code in self.grids.codes],
            "minutes_to_reach": [shown_minutes(m) for m in self.minutes_to_reach],
            "weight": self.weight,
            "dataset_version": self.dataset_version,
        }

    def geodataframe(self) -> Any:
        import geopandas as gpd

        return gpd.GeoDataFrame(self.table(), geometry=list(self.grids.polygons), crs=4326)

    def plot(self, basemap: Any = None, **options: Any) -> Any:
        """A map of this coverage in its minute classes (``geoservice.plots.coverage_map``),
        or, for a scenario's answer, of the grids it gains and loses
        (``plots.scenario_map``); a matplotlib Figure."""
        from geoservice import plots

        if "changed_grids" in self.extra:
            return plots.scenario_map(self, basemap, **options)
        return plots.coverage_map(self, basemap, **options)

    def to_json(self) -> dict[str, Any]:
        """The answer of ``GET /v1/coverage/response``."""
        largest = self.minutes[-1]
        order = np.argsort(
            -np.where(np.isfinite(self.minutes_to_reach), self.minutes_to_reach, 1e9)
        )
        uncovered = [
            {
                "code": str(self.grids.codes[i]),
                "name": self.grids.names[i],
                "minutes_to_reach": shown_minutes(self.minutes_to_reach[i]),
            }
            for i in order.tolist()
            if not self.minutes_to_reach[i] <= largest
        ]
        return {
            "minutes": [plain_number(m) for m in self.minutes],
            "origins": self.origins,
            "bands": self.bands(),
            "uncovered_grids": uncovered,
            "weight": self.weight,
            **self.extra,
            "dataset_version": self.dataset_version,
        }


def round_up(minutes: Any, decimals: int) -> Any:
    """Minutes rounded *up* to ``decimals``: a displayed figure is never below the true one,
    so a grid not covered within T never shows T or less (5.004 is shown as 5.01)."""
    scale = 10.0**decimals
    shown = np.ceil(np.asarray(minutes, dtype=float) * scale) / scale
    # the product can round down in floating point; one more step then
    return np.where(shown < minutes, shown + 1 / scale, shown)


def shown_minutes(minutes: float) -> float | None:
    """Minutes as an answer shows them: rounded up to 0.01, None beyond the horizon."""
    return float(round_up(minutes, 2)) if np.isfinite(minutes) else None


def difference(after: Coverage, before: Coverage) -> list[dict[str, Any]]:
    """Per band, the scenario's figures minus the current dataset's."""
    out = []
    for a, b in zip(after.bands(), before.bands(), strict=True):
        out.append(
            {
                "minutes": a["minutes"],
                **{
                    key: round(a[key] - b[key], 6)
                    for key in ("grids_covered", "grid_share", "area_share", "population_share")
                },
            }
        )
    return out


def changed_grids(after: Coverage, before: Coverage) -> list[dict[str, Any]]:
    """The grids whose coverage changes in some band: minutes before and after (rounded up,
    ``null`` beyond the horizon), so a map can show what is gained and what is lost."""
    limits = np.array(after.minutes)
    was = before.minutes_to_reach[:, None] <= limits
    now = after.minutes_to_reach[:, None] <= limits
    return [
        {
            "code": str(after.grids.codes[i]),
            "before": shown_minutes(before.minutes_to_reach[i]),
            "after": shown_minutes(after.minutes_to_reach[i]),
        }
        for i in np.flatnonzero((was != now).any(axis=1)).tolist()
    ]
