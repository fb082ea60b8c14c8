"""The scenario map: a what-if's grids gained and lost within a band, with its added
points and closed roads."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from geoservice.plots.canvas import METRIC_CRS, canvas, draw, set_extent
from geoservice.plots.coverage import grids_frame
from geoservice.plots.furniture import add_legend, add_title, legend_patch, scatter_points
from geoservice.plots.layers import Basemap, draw_roads, furnish
from geoservice.plots.style import GAINED, KEPT, LOST, NEVER, plain_number, style

if TYPE_CHECKING:
    import shapely
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from geoservice.coverage import Coverage, Scenario
    from geoservice.network import Network


def scenario_map(
    result: Coverage,
    basemap: Basemap | None = None,
    *,
    minutes: float | None = None,
    scenario: Scenario | None = None,
    network: Network | None = None,
    area: shapely.Geometry | None = None,
    title: str | None = None,
    ax: Axes | None = None,
    figsize: tuple[float, float] = (8.5, 8.0),
) -> Figure:
    """A what-if's grids gained and lost within ``minutes`` (default the largest band).

    Parameters
    ----------
    result
        ``CoverageModel.scenario()``'s answer: its ``extra["changed_grids"]`` holds each
        changed grid's minutes before and after.
    scenario, network
        Draw the scenario's added points and closed roads (the roads from ``network``, the
        model's: ``model.network``).
    minutes, area, title, ax, figsize
        As in :func:`coverage_map`; ``minutes`` must be one of ``result.minutes``.

    Raises
    ------
    ValueError
        ``result`` is not a scenario's answer, or ``minutes`` is not one of its bands.
    """
    from matplotlib import rc_context

    if "changed_grids" not in result.extra:
        msg = "scenario_map needs CoverageModel.scenario()'s answer (it has no changed_grids)"
        raise ValueError(msg)
    limit = float(minutes if minutes is not None else result.minutes[-1])
    if limit not in result.minutes:
        msg = f"minutes {limit:g} is not one of the scenario's bands {list(result.minutes)}"
        raise ValueError(msg)
    before = before_minutes(result)
    with rc_context(style()):
        fig, ax = canvas(ax, figsize)
        grids, bounds = grids_frame(result, area)
        rows = grids["row"].to_numpy()
        was = before[rows] <= limit
        now = result.minutes_to_reach[rows] <= limit
        states = np.select([~was & now, was & ~now, was & now], [0, 1, 2], 3)
        colours = (GAINED, LOST, KEPT, NEVER)
        if area is None and (states < 2).any():
            bounds = _around(grids[states < 2].total_bounds, bounds)
        set_extent(ax, bounds)
        draw(
            grids,
            ax=ax,
            color=[colours[s] for s in states],
            edgecolor="white",
            linewidth=0.08,
            zorder=1,
        )
        draw_roads(ax, basemap)
        t = plain_number(limit)
        handles = [
            legend_patch(GAINED, f"新进入{t}分钟覆盖（{int((states == 0).sum())} 个网格）"),
            legend_patch(LOST, f"失去{t}分钟覆盖（{int((states == 1).sum())} 个网格）"),
            legend_patch(KEPT, f"{t}分钟内，不变（{int((states == 2).sum())} 个）"),
            legend_patch(NEVER, f"{t}分钟外，不变（{int((states == 3).sum())} 个）"),
        ]
        if scenario is not None and network is not None and scenario.close_roads:
            import geopandas as gpd

            closed = np.isin(network.names.astype(str), list(scenario.close_roads))
            roads = gpd.GeoSeries(list(network.lines[closed]), crs="EPSG:4326").to_crs(METRIC_CRS)
            draw(roads, ax=ax, color="black", linewidth=3.2, zorder=8)
            draw(roads, ax=ax, color="#ffd400", linewidth=1.4, zorder=8)
            marks = gpd.GeoDataFrame(
                geometry=[
                    roads[network.names[closed] == name].union_all().centroid
                    for name in scenario.close_roads
                ],
                crs=METRIC_CRS,
            )
            handles.append(
                scatter_points(
                    ax,
                    marks,
                    f"封闭道路（{len(scenario.close_roads)} 处）",
                    marker="X",
                    s=70,
                    color="#ffd400",
                    edgecolor="black",
                    linewidth=0.8,
                    zorder=9,
                )
            )
        if scenario is not None and scenario.add_points:
            import geopandas as gpd

            added = gpd.GeoDataFrame(
                geometry=gpd.points_from_xy(*zip(*scenario.add_points, strict=True)),
                crs="EPSG:4326",
            ).to_crs(METRIC_CRS)
            handles.append(
                scatter_points(
                    ax,
                    added,
                    f"新增巡逻点（{len(added)} 个）",
                    marker="*",
                    s=190,
                    color="#ffd400",
                    edgecolor="black",
                    linewidth=0.8,
                    zorder=9,
                )
            )
        handles += furnish(ax, basemap)
        add_legend(ax, handles, f"{t}分钟覆盖的变化")
        add_title(ax, title or f"情景推演：{t}分钟覆盖的得与失", result.dataset_version)
    return fig


def _around(changed: Any, whole: Any, least_m: float = 8000.0) -> Any:
    """The changed grids' bounds with room around them (at least ``least_m`` a side, a
    quarter more than they span), within ``whole``."""
    minx, miny, maxx, maxy = changed
    cx, cy = (minx + maxx) / 2, (miny + maxy) / 2
    half = max(maxx - minx, maxy - miny, least_m / 1.25) * 1.25 / 2
    return (
        max(cx - half, whole[0]),
        max(cy - half, whole[1]),
        min(cx + half, whole[2]),
        min(cy + half, whole[3]),
    )


def before_minutes(result: Coverage) -> np.ndarray:
    """Each grid's minutes to reach before a scenario (``inf`` when not reached), from the
    scenario's ``changed_grids``: the grids not listed kept their minutes."""
    before = np.array(result.minutes_to_reach, dtype=float, copy=True)
    position = {str(code): i for i, code in enumerate(result.grids.codes)}
    for grid in result.extra["changed_grids"]:
        value = grid["before"]
        before[position[grid["code"]]] = np.inf if value is None else float(value)
    return before
