"""The coverage map: grids classed by minutes to reach (1/3/5: within 1, 1–3, 3–5, beyond
5 minutes), with the stations, posts and patrol segments that reach some grid first."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from geoservice.plots.canvas import METRIC_CRS, canvas, draw, set_extent
from geoservice.plots.furniture import add_legend, add_title, legend_patch, scatter_points
from geoservice.plots.layers import Basemap, draw_roads, furnish
from geoservice.plots.style import (
    KIND_NAMES,
    PATROL,
    class_colours,
    class_names,
    minute_classes,
    plain_number,
    style,
)

if TYPE_CHECKING:
    import geopandas as gpd
    import shapely
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from geoservice.coverage import Coverage


def grids_frame(coverage: Coverage, area: shapely.Geometry | None) -> tuple[gpd.GeoDataFrame, Any]:
    """The grids (code, row in ``coverage``) in EPSG:4547, those meeting ``area`` (WGS84)
    only; the bounds to show."""
    import geopandas as gpd
    import shapely

    frame = gpd.GeoDataFrame(
        {"code": coverage.grids.codes, "row": np.arange(len(coverage.grids.codes))},
        geometry=list(coverage.grids.polygons),
        crs="EPSG:4326",
    )
    if area is not None:
        frame = frame[shapely.intersects(frame.geometry.values, area)]
        bounds = gpd.GeoSeries([area], crs="EPSG:4326").to_crs(METRIC_CRS).total_bounds
        return frame.to_crs(METRIC_CRS), bounds
    frame = frame.to_crs(METRIC_CRS)
    return frame, frame.total_bounds


def _origins(ax: Axes, basemap: Basemap | None, drivers: set[str], bounds: Any) -> list[Any]:
    """Stations, posts and patrol segments; those nearest to some grid (the ones that drive
    coverage) dark, the others hollow."""
    from matplotlib.lines import Line2D

    if basemap is None:
        return []
    handles = []
    x0, y0, x1, y1 = bounds
    stations = basemap.stations.cx[x0:x1, y0:y1]
    driving = stations["code"].isin(drivers)
    kind = stations["kind"].astype(str)
    for name, marker, size in (("station", "^", 46), ("post", "o", 11)):
        chosen = stations[(kind == name) & driving]
        if len(chosen) or name == "station":
            handles.append(
                scatter_points(
                    ax,
                    chosen,
                    f"{KIND_NAMES[name]}（{len(chosen)} 个，最先到达网格）",
                    marker=marker,
                    s=size,
                    color="#111111",
                    edgecolor="white",
                    linewidth=0.4,
                    zorder=7,
                )
            )
    idle = stations[~driving]
    if len(idle):
        handles.append(
            scatter_points(
                ax,
                idle,
                f"派出所/警务室（{len(idle)} 个，未最先到达任何网格）",
                marker="o",
                s=11,
                facecolor="none",
                edgecolor="#111111",
                linewidth=0.5,
                zorder=7,
            )
        )
    patrols = basemap.patrols[basemap.patrols["code"].isin(drivers)]
    if len(patrols):
        draw(patrols, ax=ax, color=PATROL, linewidth=1.8, zorder=6)
        handles.append(
            Line2D([], [], color=PATROL, linewidth=1.8, label=f"一级巡段（{len(patrols)} 条）")
        )
    return handles


def coverage_map(
    coverage: Coverage,
    basemap: Basemap | None = None,
    *,
    area: shapely.Geometry | None = None,
    title: str | None = None,
    ax: Axes | None = None,
    figsize: tuple[float, float] = (8.5, 8.0),
) -> Figure:
    """The grids classed by minutes to reach (1/3/5: within 1, 1–3, 3–5, beyond 5 minutes),
    with the stations, posts and patrol segments that reach some grid first.

    Parameters
    ----------
    coverage
        A ``CoverageModel.response()`` (or ``evaluate``) result; its ``minutes`` are the
        class limits.
    basemap
        Towns, stations, roads and rivers (:meth:`Basemap.load`); without it the map shows
        the grids, the scale bar and the north arrow only.
    area
        A WGS84 polygon to show (for example ``planning.central_area(engine)``); the whole
        district by default.
    title
        Replaces the default title (the dataset version is added below it).
    ax
        Draw into this axes (its figure is returned) instead of a new figure.
    """
    from matplotlib import rc_context

    limits = coverage.minutes
    with rc_context(style()):
        fig, ax = canvas(ax, figsize)
        grids, bounds = grids_frame(coverage, area)
        classes = minute_classes(coverage.minutes_to_reach[grids["row"].to_numpy()], limits)
        colours = class_colours(len(limits) + 1)
        set_extent(ax, bounds)
        draw(
            grids,
            ax=ax,
            color=[colours[c] for c in classes],
            edgecolor="white",
            linewidth=0.08,
            zorder=1,
        )
        draw_roads(ax, basemap)
        names = class_names(limits)
        handles = [
            legend_patch(colours[i], f"{name}（{int((classes == i).sum())} 个网格）")
            for i, name in enumerate(names)
        ]
        drivers = {c for c in coverage.nearest_origin if c}
        handles += _origins(ax, basemap, drivers, ax.get_xlim() + ax.get_ylim())
        handles += furnish(ax, basemap)
        add_legend(ax, handles, "到达时间（网格半数道路点）")
        weight = "按事件" if coverage.weight == "events" else "按居民"
        origins = _ORIGIN_NAMES.get(coverage.origins, coverage.origins)
        bands = "/".join(plain_number(m) for m in limits)
        add_title(
            ax, title or f"{bands} 分钟响应覆盖（{origins}，{weight}）", coverage.dataset_version
        )
    return fig


_ORIGIN_NAMES = {
    "stations": "派出所出发",
    "posts": "警务室出发",
    "patrols": "巡段出发",
    "all": "派出所、警务室与巡段出发",
}
