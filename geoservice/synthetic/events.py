"""A synthetic year of grid events with the 2020 report's totals (SYNTHETIC).

11,029 events in 2020: 1,669 comprehensive governance and stability (``stability``),
7,753 city management (``city``), 1,043 public service (``service``), the remaining 564
other; 10,312 closed and 717 still open, the open ones mostly from the last weeks. Places:
70% where people live (a grid drawn by its residents, a point inside it), 30% along busy
roads (a point on a trunk, primary or secondary road drawn by length). Times of day follow
office hours with an evening tail; handling times are log-normal per category.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import shapely

from geoservice.patrols import CHINA
from geoservice.synthetic.boundaries import Feature
from geoservice.synthetic.roads import RoadNetwork

CATEGORY_COUNTS = {"stability": 1_669, "city": 7_753, "service": 1_043, "other": 564}
TOTAL = 11_029
OPEN = 717
YEAR = 2020
MEDIAN_HANDLING_HOURS = {"stability": 30.0, "city": 18.0, "service": 42.0, "other": 60.0}
BUSY_ROADS = ("trunk", "primary", "secondary")
HOURLY = np.array(
    [1, 1, 1, 1, 1, 2, 4, 8, 12, 14, 14, 12, 9, 10, 13, 14, 13, 11, 9, 8, 6, 4, 3, 2], float
)
DESCRIPTIONS = {
    "stability": ["邻里纠纷调解", "矛盾纠纷排查", "治安隐患报告"],
    "city": ["占道经营", "乱堆乱放", "路面破损", "井盖缺失", "违规广告牌"],
    "service": ["困难群众救助", "社保咨询", "证件办理咨询"],
    "other": ["其他事项"],
}


def events_year(
    grids: list[Feature], roads: RoadNetwork, area: shapely.Geometry, rng: np.random.Generator
) -> pd.DataFrame:
    """The year's events as the rows of an events CSV (times in China time), all inside
    ``area`` (the district)."""
    assert sum(CATEGORY_COUNTS.values()) == TOTAL
    category = np.repeat(list(CATEGORY_COUNTS), list(CATEGORY_COUNTS.values()))
    rng.shuffle(category)
    lon, lat = _places(grids, roads, area, rng)
    start = datetime(YEAR, 1, 1, tzinfo=CHINA)
    day = rng.integers(0, 366, TOTAL)  # 2020 is a leap year
    hour = rng.choice(24, TOTAL, p=HOURLY / HOURLY.sum())
    seconds = day * 86_400 + hour * 3_600 + rng.integers(0, 3_600, TOTAL)
    order = np.argsort(seconds, kind="stable")
    seconds, category = seconds[order], category[order]
    # the open ones: drawn with weights rising towards the year's end
    weight = np.exp((seconds - seconds.max()) / (30 * 86_400))
    is_open = np.zeros(TOTAL, dtype=bool)
    is_open[rng.choice(TOTAL, OPEN, replace=False, p=weight / weight.sum())] = True
    median = np.array([MEDIAN_HANDLING_HOURS[c] for c in category])
    handling_h = median * np.exp(rng.normal(0.0, 0.8, TOTAL))
    times = [start + timedelta(seconds=int(s)) for s in seconds]
    closed = [
        None if is_open[i] else times[i] + timedelta(hours=float(handling_h[i]))
        for i in range(TOTAL)
    ]
    return pd.DataFrame(
        {
            "id": [f"SJ{YEAR}{i + 1:05d}" for i in range(TOTAL)],
            "time": [t.isoformat() for t in times],
            "category": category,
            "status": np.where(is_open, "open", "closed"),
            "lon": np.round(lon[order], 6),
            "lat": np.round(lat[order], 6),
            "description": [str(rng.choice(DESCRIPTIONS[c])) for c in category],
            "closed_at": [c.isoformat(timespec="seconds") if c else "" for c in closed],
        }
    )


def _places(
    grids: list[Feature], roads: RoadNetwork, area: shapely.Geometry, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """70% in grids drawn by residents, 30% on busy roads drawn by length."""
    in_grids = TOTAL * 7 // 10
    population = np.array([g.population for g in grids], float)
    chosen = rng.choice(len(grids), in_grids, p=population / population.sum())
    lon, lat = np.empty(TOTAL), np.empty(TOTAL)
    for i, g in enumerate(chosen.tolist()):
        lon[i], lat[i] = _inside(grids[g].geom, rng)
    busy = np.flatnonzero(np.isin(roads.highway, BUSY_ROADS))
    x0, y0 = roads.lon[roads.u[busy]], roads.lat[roads.u[busy]]
    x1, y1 = roads.lon[roads.v[busy]], roads.lat[roads.v[busy]]
    inside = shapely.contains_xy(area, x0, y0) & shapely.contains_xy(area, x1, y1)
    busy, x0, y0, x1, y1 = busy[inside], x0[inside], y0[inside], x1[inside], y1[inside]
    length = np.hypot(x1 - x0, y1 - y0)
    pick = rng.choice(len(busy), TOTAL - in_grids, p=length / length.sum())
    t = rng.random(len(pick))
    lon[in_grids:] = x0[pick] + (x1[pick] - x0[pick]) * t
    lat[in_grids:] = y0[pick] + (y1[pick] - y0[pick]) * t
    mix = rng.permutation(TOTAL)
    return lon[mix], lat[mix]


def _inside(polygon: shapely.Geometry, rng: np.random.Generator) -> tuple[float, float]:
    """A uniform point inside ``polygon`` (rejection sampling in its box)."""
    minx, miny, maxx, maxy = polygon.bounds
    for _ in range(1_000):
        x, y = rng.uniform(minx, maxx), rng.uniform(miny, maxy)
        if shapely.contains_xy(polygon, x, y):
            return x, y
    point = polygon.representative_point()
    return point.x, point.y


def write_events(
    path: Path,
    grids: list[Feature],
    roads: RoadNetwork,
    area: shapely.Geometry,
    rng: np.random.Generator,
) -> Path:
    """Write the year's events as an events CSV (``geoservice etl events``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    events_year(grids, roads, area, rng).to_csv(path, index=False)
    return path
