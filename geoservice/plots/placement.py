"""The placement map: the patrol points each labelled solution chooses among the
candidates, over the grids of an area."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from geoservice.plots.canvas import METRIC_CRS, canvas, draw, set_extent
from geoservice.plots.furniture import add_legend, add_title, scatter_points
from geoservice.plots.layers import Basemap, draw_roads, furnish
from geoservice.plots.style import plain_number, style

if TYPE_CHECKING:
    import geopandas as gpd
    import shapely
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from geoservice.planning import Instance, Solution


def placement_map(
    instance: Instance,
    solutions: Mapping[str, Solution],
    basemap: Basemap | None = None,
    *,
    area: shapely.Geometry | None = None,
    grids: gpd.GeoDataFrame | None = None,
    title: str | None = None,
    ax: Axes | None = None,
    figsize: tuple[float, float] = (8.0, 8.0),
) -> Figure:
    """Patrol points chosen by each labelled solution (for example ``{"最优解（HiGHS）":
    best, "贪心算法": greedy}``), among the candidates, over the grids of ``area``."""
    import geopandas as gpd
    import shapely
    from matplotlib import rc_context

    styles = (
        {"marker": "*", "s": 230, "color": "#d7191c", "edgecolor": "white", "linewidth": 0.7},
        {"marker": "s", "s": 70, "color": "#2166ac", "edgecolor": "white", "linewidth": 0.7},
        {"marker": "D", "s": 60, "color": "#1a9850", "edgecolor": "white", "linewidth": 0.7},
    )
    if len(solutions) > len(styles):
        msg = f"placement_map draws at most {len(styles)} solutions, got {len(solutions)}"
        raise ValueError(msg)
    with rc_context(style()):
        fig, ax = canvas(ax, figsize)
        candidates = gpd.GeoDataFrame(
            geometry=gpd.points_from_xy(*instance.candidate_lonlat.T), crs="EPSG:4326"
        ).to_crs(METRIC_CRS)
        if area is not None:
            bounds = gpd.GeoSeries([area], crs="EPSG:4326").to_crs(METRIC_CRS).total_bounds
        else:
            bounds = candidates.total_bounds
        set_extent(ax, bounds)
        if grids is not None:
            shown = (
                grids if area is None else grids[shapely.intersects(grids.geometry.values, area)]
            )
            draw(
                shown.to_crs(METRIC_CRS),
                ax=ax,
                color="#f4f4f4",
                edgecolor="#c8c8c8",
                linewidth=0.25,
                zorder=1,
            )
        draw_roads(ax, basemap)
        handles = [
            scatter_points(
                ax,
                candidates,
                f"候选点（道路交叉口，{len(candidates)} 个）",
                marker="o",
                s=3,
                color="#8a8a8a",
                zorder=4,
            )
        ]
        if basemap is not None and len(basemap.patrols):
            from matplotlib.lines import Line2D

            draw(basemap.patrols, ax=ax, color="#ef8a00", linewidth=1.4, zorder=5)
            handles.append(Line2D([], [], color="#ef8a00", linewidth=1.4, label="一级巡段"))
        for (label, solution), marker in zip(solutions.items(), styles, strict=False):
            handles.append(
                scatter_points(
                    ax,
                    candidates.iloc[np.asarray(solution.chosen, dtype=int)],
                    f"{label}（{len(solution.chosen)} 个点）",
                    zorder=8,
                    **marker,
                )
            )
        handles += furnish(ax, basemap)
        minutes = plain_number(instance.seconds / 60.0)
        add_legend(ax, handles, f"{minutes}分钟内可达的巡逻点位")
        add_title(
            ax,
            title or f"巡逻点位选址（{minutes}分钟）",
            basemap.dataset_version if basemap is not None else None,
        )
    return fig
