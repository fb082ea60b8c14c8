"""The isochrone map: bands along the roads (the shortest darkest) with each band's area,
the roads reached, the origin and the stations nearby."""

from __future__ import annotations

from typing import TYPE_CHECKING

from geoservice.plots.canvas import METRIC_CRS, canvas, draw, set_extent
from geoservice.plots.furniture import add_legend, add_title, legend_patch, scatter_points
from geoservice.plots.layers import Basemap, draw_roads, furnish
from geoservice.plots.style import BAND_COLOURS, KIND_NAMES, plain_number, style

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from geoservice.isochrones import Isochrones

PROFILE_NAMES = {"car": "警车", "foot": "步行"}


def isochrone_map(
    iso: Isochrones,
    basemap: Basemap | None = None,
    *,
    edges: bool = True,
    title: str | None = None,
    ax: Axes | None = None,
    figsize: tuple[float, float] = (8.0, 8.0),
) -> Figure:
    """Isochrone bands (the shortest darkest) with a band legend giving each band's area,
    the reached roads of the largest band and the origin."""
    import geopandas as gpd
    from matplotlib import rc_context
    from matplotlib.lines import Line2D

    with rc_context(style()):
        fig, ax = canvas(ax, figsize)
        bands = gpd.GeoDataFrame(
            {
                "minutes": [b.minutes for b in iso.bands],
                "area_km2": [b.area_km2 for b in iso.bands],
            },
            geometry=[b.polygon for b in iso.bands],
            crs="EPSG:4326",
        ).to_crs(METRIC_CRS)
        set_extent(ax, bands.total_bounds, margin=0.15)
        draw_roads(ax, basemap)
        colours = BAND_COLOURS[: len(bands)]
        handles = []
        for i in reversed(range(len(bands))):
            draw(
                bands.iloc[[i]],
                ax=ax,
                color=colours[i],
                alpha=0.85,
                edgecolor="white",
                linewidth=0.4,
                zorder=4,
            )
        for i, row in enumerate(bands.itertuples()):
            handles.append(
                legend_patch(
                    colours[i],
                    f"{plain_number(row.minutes)}分钟可达（{row.area_km2:.1f} 平方公里）",
                )
            )
        if edges and len(iso.bands):
            reached = iso.reached_edges(iso.bands[-1].minutes)
            draw(
                gpd.GeoSeries(list(reached["geometry"]), crs="EPSG:4326").to_crs(METRIC_CRS),
                ax=ax,
                color="#3a1c0f",
                linewidth=0.2,
                alpha=0.45,
                zorder=5,
            )
            handles.append(
                Line2D(
                    [],
                    [],
                    color="#3a1c0f",
                    linewidth=0.6,
                    label=f"{plain_number(iso.bands[-1].minutes)}分钟内可达道路",
                )
            )
        if iso.origin is not None:
            origin = gpd.GeoDataFrame(
                geometry=gpd.points_from_xy([iso.origin["lon"]], [iso.origin["lat"]]),
                crs="EPSG:4326",
            ).to_crs(METRIC_CRS)
            handles.append(
                scatter_points(
                    ax,
                    origin,
                    "出发点",
                    marker="*",
                    s=260,
                    color="#1f4e9c",
                    edgecolor="white",
                    linewidth=0.8,
                    zorder=9,
                )
            )
        if basemap is not None:
            x0, x1 = ax.get_xlim()
            y0, y1 = ax.get_ylim()
            stations = basemap.stations.cx[x0:x1, y0:y1]
            kind = stations["kind"].astype(str)
            for name, marker, size in (("station", "^", 46), ("post", "o", 11)):
                chosen = stations[kind == name]
                if len(chosen):
                    handles.append(
                        scatter_points(
                            ax,
                            chosen,
                            KIND_NAMES[name],
                            marker=marker,
                            s=size,
                            color="#111111",
                            edgecolor="white",
                            linewidth=0.4,
                            zorder=7,
                        )
                    )
        handles += furnish(ax, basemap)
        profile = PROFILE_NAMES.get(iso.reach.network.profile, iso.reach.network.profile)
        minutes = "/".join(plain_number(b.minutes) for b in iso.bands)
        add_legend(ax, handles, "沿道路可达范围")
        add_title(ax, title or f"{minutes} 分钟等时圈（{profile}，沿道路）", iso.dataset_version)
    return fig
