"""What every map draws beneath and above its data: the :class:`Basemap` of one dataset
version (district, towns, stations and posts, patrol segments, main roads, rivers) in
EPSG:4547, the main roads drawn under the data, and :func:`furnish` on top (rivers,
outlines, town names, scale bar, north arrow).

The dataset has no water layer: the rivers are whatever :class:`Basemap` is given
(:func:`demo_rivers` gives the two rivers the synthetic demo's road network is cut by).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from geoservice.plots.canvas import METRIC_CRS, draw
from geoservice.plots.furniture import north_arrow, scale_bar
from geoservice.plots.style import RIVER, ROAD, TOWN_LINE

if TYPE_CHECKING:
    import geopandas as gpd
    from matplotlib.axes import Axes
    from sqlalchemy.engine import Engine

    from geoservice.network import Network

MAIN_ROADS = ("motorway", "trunk", "primary", "secondary")


def demo_rivers() -> gpd.GeoDataFrame:
    """The Dongjiang and the Xizhijiang as the synthetic demo draws them (its road network
    crosses them only on bridges): the demo's rivers, in EPSG:4326. The dataset holds no
    water layer; on real data pass your own lines to :meth:`Basemap.load`."""
    import geopandas as gpd
    from shapely.geometry import LineString

    from geoservice.synthetic.roads import DONGJIANG, XIZHIJIANG

    return gpd.GeoDataFrame(
        {"name": ["东江", "西枝江"]},
        geometry=[LineString(DONGJIANG), LineString(XIZHIJIANG)],
        crs="EPSG:4326",
    )


@dataclass(frozen=True)
class Basemap:
    """What every map draws beneath and above its data, in EPSG:4547: the district, its towns,
    the stations and posts, the patrol segments, the main roads and the rivers."""

    district: gpd.GeoDataFrame
    towns: gpd.GeoDataFrame
    stations: gpd.GeoDataFrame  # code, name, kind (station or post)
    patrols: gpd.GeoDataFrame  # code, name
    roads: gpd.GeoDataFrame | None = None  # highway
    rivers: gpd.GeoDataFrame | None = None  # name
    dataset_version: int | None = None

    @classmethod
    def load(
        cls,
        engine: Engine,
        *,
        network: Network | None = None,
        rivers: gpd.GeoDataFrame | None = None,
        version: int | None = None,
    ) -> Basemap:
        """The layers of one dataset version (``network``'s, else ``version``, else the
        current one); the main roads from ``network`` when given; ``rivers`` any lines with
        a ``name`` (for example :func:`demo_rivers`)."""
        from geoservice.layers import read_layer

        if network is not None:
            version = network.version
        layers = {
            name: read_layer(engine, name, version=version).to_crs(METRIC_CRS)
            for name in ("district", "town", "station", "patrol_segment")
        }
        return cls(
            district=layers["district"],
            towns=layers["town"],
            stations=layers["station"],
            patrols=layers["patrol_segment"],
            roads=main_roads(network) if network is not None else None,
            rivers=_clipped(rivers, layers["district"]),
            dataset_version=version if version is not None else _current(engine),
        )


def _clipped(rivers: gpd.GeoDataFrame | None, district: gpd.GeoDataFrame) -> Any:
    """``rivers`` in EPSG:4547, within the district."""
    if rivers is None:
        return None
    rivers = rivers.to_crs(METRIC_CRS)
    return rivers.clip(district) if len(district) else rivers


def _current(engine: Engine) -> int | None:
    from geoservice.datasets import current_version_id

    with engine.connect() as conn:
        return current_version_id(conn)


def main_roads(network: Network, classes: Sequence[str] = MAIN_ROADS) -> gpd.GeoDataFrame:
    """The network's roads of ``classes`` (motorway to secondary), EPSG:4547."""
    import geopandas as gpd

    keep = np.isin(network.highway.astype(str), list(classes))
    return gpd.GeoDataFrame(
        {"highway": network.highway[keep]}, geometry=list(network.lines[keep]), crs="EPSG:4326"
    ).to_crs(METRIC_CRS)


def draw_roads(ax: Axes, basemap: Basemap | None) -> None:
    """The main roads under the data (motorways, trunk and primary roads bolder)."""
    if basemap is None:
        return
    if basemap.roads is not None and len(basemap.roads):
        major = basemap.roads["highway"].isin(["motorway", "trunk", "primary"])
        draw(basemap.roads[~major], ax=ax, color=ROAD, linewidth=0.25, alpha=0.45, zorder=2)
        draw(basemap.roads[major], ax=ax, color=ROAD, linewidth=0.6, alpha=0.6, zorder=2)


def furnish(ax: Axes, basemap: Basemap | None = None, *, names: bool = True) -> list[Any]:
    """Rivers, the district and town outlines, town names, the scale bar and the north arrow
    on a map of your own (an axes in EPSG:4547, its extent set); the legend handles they
    need (rivers, town lines, roads). The axes keep their extent."""
    from matplotlib.lines import Line2D

    xlim, ylim = ax.get_xlim(), ax.get_ylim()
    ax.set_xlim(xlim)
    ax.set_ylim(ylim)
    handles: list[Any] = []
    if basemap is not None:
        if basemap.rivers is not None and len(basemap.rivers):
            draw(basemap.rivers, ax=ax, color=RIVER, linewidth=2.2, alpha=0.9, zorder=5.5)
            handles.append(Line2D([], [], color=RIVER, linewidth=2.2, label="河流"))
        draw(basemap.district.boundary, ax=ax, color="black", linewidth=1.0, zorder=3)
        draw(basemap.towns.boundary, ax=ax, color=TOWN_LINE, linewidth=0.6, zorder=3)
        handles.append(Line2D([], [], color=TOWN_LINE, linewidth=0.8, label="镇街界"))
        if names:
            town_names(ax, basemap.towns)
        if basemap.roads is not None and len(basemap.roads):
            handles.append(Line2D([], [], color=ROAD, linewidth=0.6, label="主要道路"))
    scale_bar(ax)
    north_arrow(ax)
    return handles


def town_names(ax: Axes, towns: gpd.GeoDataFrame) -> None:
    """Each town's name at a point inside it, where the map shows it."""
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    for row in towns.itertuples():
        point = row.geometry.representative_point()
        if not (x0 < point.x < x1 and y0 < point.y < y1):
            continue
        ax.annotate(
            str(row.name),
            (point.x, point.y),
            ha="center",
            va="center",
            fontsize=6.5,
            color="#1a202c",
            bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.6},
            zorder=6,
            annotation_clip=True,
        )
