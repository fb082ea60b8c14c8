"""Thematic maps of any data: polygons coloured by a column (choropleth) and points
counted in hexagons (density), with the patrol segments."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from geoservice.plots.canvas import METRIC_CRS, canvas, draw, set_extent
from geoservice.plots.furniture import add_legend, add_title, legend_patch
from geoservice.plots.layers import Basemap, draw_roads, furnish
from geoservice.plots.style import style

if TYPE_CHECKING:
    import geopandas as gpd
    import shapely
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def choropleth(
    frame: gpd.GeoDataFrame,
    column: str,
    basemap: Basemap | None = None,
    *,
    label: str,
    title: str,
    cmap: str = "OrRd",
    outline: Any = None,
    outline_label: str | None = None,
    missing_label: str = "无数据",
    area: shapely.Geometry | None = None,
    ax: Axes | None = None,
    figsize: tuple[float, float] = (8.5, 8.0),
) -> Figure:
    """Polygons coloured by ``column`` (a colour bar labelled ``label``); rows where
    ``outline`` (a boolean array) is true outlined in black (``outline_label`` in the
    legend); polygons without a value light grey (``missing_label``)."""
    import shapely
    from matplotlib import rc_context
    from matplotlib.patches import Patch

    with rc_context(style()):
        fig, ax = canvas(ax, figsize)
        data = frame.to_crs(METRIC_CRS)
        mask = np.ones(len(data), dtype=bool)
        if area is not None:
            mask = shapely.intersects(frame.to_crs(4326).geometry.values, area)
            bounds = frame.iloc[:0].set_geometry([area], crs=4326).to_crs(METRIC_CRS).total_bounds
        shown = data[mask]
        set_extent(ax, bounds if area is not None else shown.total_bounds)
        missing = shown[column].isna().to_numpy()
        draw(shown[missing], ax=ax, color="#e6e6e6", edgecolor="white", linewidth=0.1, zorder=1)
        draw(
            shown[~missing],
            ax=ax,
            column=column,
            cmap=cmap,
            edgecolor="white",
            linewidth=0.1,
            legend=True,
            legend_kwds={"label": label, "shrink": 0.55, "pad": 0.01},
            zorder=1,
        )
        draw_roads(ax, basemap)
        handles: list[Any] = []
        if missing.any():
            handles.append(legend_patch("#e6e6e6", missing_label))
        if outline is not None:
            edged = shown[np.asarray(outline, dtype=bool)[mask]]
            draw(edged.boundary, ax=ax, color="#111111", linewidth=1.6, zorder=5)
            handles.append(
                Patch(
                    facecolor="none",
                    edgecolor="#111111",
                    linewidth=1.6,
                    label=f"{outline_label or '勾出的区域'}（{len(edged)} 个）",
                )
            )
        handles += _patrols(ax, basemap)
        handles += furnish(ax, basemap)
        add_legend(ax, handles, "图例")
        add_title(ax, title, basemap.dataset_version if basemap is not None else None)
    return fig


def density_map(
    points: gpd.GeoDataFrame,
    basemap: Basemap | None = None,
    *,
    label: str,
    title: str,
    gridsize: int = 70,
    ax: Axes | None = None,
    figsize: tuple[float, float] = (8.5, 8.0),
) -> Figure:
    """Points counted in hexagons (logarithmic colours, a colour bar labelled ``label``),
    with the patrol segments."""
    from matplotlib import rc_context
    from matplotlib.colors import LogNorm

    with rc_context(style()):
        fig, ax = canvas(ax, figsize)
        xy = points.to_crs(METRIC_CRS).geometry
        bounds = basemap.district.total_bounds if basemap is not None else xy.total_bounds
        set_extent(ax, bounds)
        hexes = ax.hexbin(
            xy.x,
            xy.y,
            gridsize=gridsize,
            mincnt=1,
            cmap="inferno_r",
            norm=LogNorm(),
            linewidths=0.1,
            zorder=2,
        )
        fig.colorbar(hexes, ax=ax, shrink=0.55, pad=0.01, label=label)
        draw_roads(ax, basemap)
        handles: list[Any] = []
        handles += _patrols(ax, basemap)
        handles += furnish(ax, basemap)
        add_legend(ax, handles, "图例")
        add_title(ax, title, basemap.dataset_version if basemap is not None else None)
    return fig


def _patrols(ax: Axes, basemap: Basemap | None) -> list[Any]:
    """The patrol segments over a thematic map, and their legend handle (none without)."""
    from matplotlib.lines import Line2D

    if basemap is None or not len(basemap.patrols):
        return []
    draw(basemap.patrols, ax=ax, color="#00a6e0", linewidth=1.6, zorder=6)
    return [Line2D([], [], color="#00a6e0", linewidth=1.6, label="一级巡段")]
