"""Figures a planner can show: response coverage in 1/3/5-minute classes, what-if scenarios
(grids gained and lost), isochrone bands, patrol placements and plain choropleths — each a
matplotlib ``Figure`` with Chinese titles and labels (Debian's Noto Sans CJK SC), a legend,
a scale bar (``matplotlib-scalebar``), a north arrow, the town outlines, the main roads and
the rivers. The notebooks call these instead of styling maps themselves, and the bulletins
(``geoservice.reports.figures``) share the font, the classes, the scale bar and the arrow.

Maps are drawn in EPSG:4547 (CGCS2000 / 3-degree Gauss-Kruger CM 114E, metres), so one data
unit is one metre and the scale bar is exact across the district. Figures use the object
API on an Agg canvas (safe in worker threads, no pyplot state); in a notebook a helper's
``Figure`` shows as the cell's result, or pass ``ax=`` to draw into an axes of your own.

The dataset has no water layer: the rivers are whatever :class:`Basemap` is given
(:func:`demo_rivers` gives the two rivers the synthetic demo's road network is cut by).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from itertools import pairwise
from typing import TYPE_CHECKING, Any

import numpy as np

from geoservice.errors import ConfigurationError

if TYPE_CHECKING:
    import geopandas as gpd
    import shapely
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from sqlalchemy.engine import Engine

    from geoservice.coverage import Coverage, Scenario
    from geoservice.isochrones import Isochrones
    from geoservice.network import Network
    from geoservice.planning import Instance, Solution

__all__ = [
    "FONT_FAMILY",
    "FONT_FILE",
    "METRIC_CRS",
    "Basemap",
    "choropleth",
    "class_colours",
    "class_names",
    "coverage_map",
    "demo_rivers",
    "density_map",
    "font",
    "furnish",
    "isochrone_map",
    "minute_classes",
    "north_arrow",
    "placement_map",
    "scale_bar",
    "scenario_map",
    "style",
    "use_cjk",
]

FONT_FILE = "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"
FONT_FAMILY = "Noto Sans CJK SC"
METRIC_CRS = "EPSG:4547"
MINUTE_COLOURS = ("#1a9850", "#91cf60", "#fee08b", "#d73027")
"""The 1/3/5-minute classes: within 1, 1–3, 3–5, beyond 5 minutes (or never reached)."""
BAND_COLOURS = ("#b30000", "#e34a33", "#fc8d59", "#fdbb84", "#fdd49e", "#fef0d9")
"""Isochrone bands, the shortest darkest."""
GAINED, LOST, KEPT, NEVER = "#2166ac", "#d7191c", "#c7e9c0", "#f0f0f0"
RIVER = "#4f9bd9"
TOWN_LINE = "#2d3748"
ROAD = "#6b6b6b"
PATROL = "#1f4e9c"
MAIN_ROADS = ("motorway", "trunk", "primary", "secondary")
PROFILE_NAMES = {"car": "警车", "foot": "步行"}
KIND_NAMES = {"station": "派出所", "post": "警务室", "patrol": "巡逻路段", "added": "新增巡逻点"}


# --- style -----------------------------------------------------------------------------------


@cache
def font() -> str:
    """Register Debian's Noto Sans CJK with matplotlib (once); the family name.

    Raises
    ------
    ConfigurationError
        When the font file is missing (``fonts-noto-cjk``, installed by ``make tools``).
    """
    from matplotlib import font_manager

    try:
        font_manager.fontManager.addfont(FONT_FILE)
    except OSError:
        msg = f"the CJK font {FONT_FILE} is missing: install fonts-noto-cjk (`make tools`)"
        raise ConfigurationError(msg) from None
    return FONT_FAMILY


def style() -> Any:
    """The rc parameters of every figure (for ``matplotlib.rc_context``)."""
    return {
        "font.family": [font()],
        "font.size": 9,
        "axes.unicode_minus": False,
        "axes.spines.top": False,
        "axes.spines.right": False,
    }


def use_cjk() -> None:
    """Make pyplot's own figures (histograms, charts in a notebook) use the same style."""
    import matplotlib as mpl

    mpl.rcParams.update(style())


def _font_properties(size: float) -> Any:
    from matplotlib.font_manager import FontProperties

    return FontProperties(family=font(), size=size)


# --- classes ---------------------------------------------------------------------------------


def minute_classes(minutes: Any, limits: Sequence[float] = (1.0, 3.0, 5.0)) -> np.ndarray:
    """Each value's class: 0 within ``limits[0]``, i within ``limits[i]``, ``len(limits)``
    beyond the last (or never reached: ``inf``/``nan``)."""
    values = np.asarray(minutes, dtype=float)
    out = np.full(len(values), len(limits), dtype=int)
    for i, limit in reversed(list(enumerate(limits))):
        out[values <= limit] = i
    return out


def _number(value: float) -> str:
    return f"{value:g}"


def class_names(limits: Sequence[float] = (1.0, 3.0, 5.0)) -> tuple[str, ...]:
    """``("1分钟内", "1—3分钟", "3—5分钟", "超过5分钟")`` for (1, 3, 5)."""
    names = [f"{_number(limits[0])}分钟内"]
    names += [f"{_number(a)}—{_number(b)}分钟" for a, b in pairwise(limits)]
    names.append(f"超过{_number(limits[-1])}分钟")
    return tuple(names)


def class_colours(count: int) -> tuple[str, ...]:
    """``count`` class colours, fastest green to slowest red (the bulletins' four for
    1/3/5 minutes)."""
    if count == len(MINUTE_COLOURS):
        return MINUTE_COLOURS
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    ramp = colormaps["RdYlGn_r"]
    return tuple(to_hex(ramp(x)) for x in np.linspace(0.08, 0.92, count))


# --- what lies beneath -----------------------------------------------------------------------


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


# --- map furniture ---------------------------------------------------------------------------


def _km(value: float, units: str) -> str:
    return f"{_number(value)} 公里" if units == "km" else f"{_number(value)} 米"


def scale_bar(ax: Axes, *, location: str = "lower left") -> None:
    """A scale bar (``matplotlib-scalebar``) in 米/公里 on an axes in metres."""
    from matplotlib_scalebar.scalebar import ScaleBar

    bar = ax.add_artist(
        ScaleBar(
            1.0,
            "m",
            location=location,
            length_fraction=0.22,
            width_fraction=0.008,
            box_alpha=0.75,
            border_pad=0.6,
            scale_formatter=_km,
            font_properties={"family": font(), "size": 7.5},
        )
    )
    bar.set_zorder(20)


def north_arrow(ax: Axes, *, x: float = 0.95, y: float = 0.97) -> None:
    """An arrow pointing up labelled 北 (north is up in EPSG:4547 near 114°E), at ``x``,
    ``y`` in axes fractions (the arrow's tip)."""
    ax.annotate(
        "北",
        xy=(x, y),
        xytext=(x, y - 0.09),
        xycoords="axes fraction",
        textcoords="axes fraction",
        ha="center",
        va="top",
        fontsize=9,
        fontproperties=_font_properties(9),
        arrowprops={"arrowstyle": "-|>,head_width=0.35,head_length=0.7", "color": "black"},
        zorder=10,
    )


def _draw(frame: Any, **style: Any) -> None:
    """``frame.plot(**style)``, unless there is nothing to draw (geopandas warns then)."""
    if len(frame):
        frame.plot(**style)


def _canvas(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if ax is None:
        fig = Figure(figsize=figsize, layout="constrained")
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
    fig = ax.get_figure()  # type: ignore[assignment]
    ax.set_axis_off()
    ax.set_aspect("equal")
    return fig, ax


def _extent(ax: Axes, bounds: Sequence[float], margin: float = 0.04) -> None:
    minx, miny, maxx, maxy = bounds
    pad = margin * max(maxx - minx, maxy - miny, 1.0)
    ax.set_xlim(minx - pad, maxx + pad)
    ax.set_ylim(miny - pad, maxy + pad)


def _beneath(ax: Axes, basemap: Basemap | None) -> None:
    """Roads and rivers, under the data."""
    if basemap is None:
        return
    if basemap.roads is not None and len(basemap.roads):
        major = basemap.roads["highway"].isin(["motorway", "trunk", "primary"])
        _draw(basemap.roads[~major], ax=ax, color=ROAD, linewidth=0.25, alpha=0.45, zorder=2)
        _draw(basemap.roads[major], ax=ax, color=ROAD, linewidth=0.6, alpha=0.6, zorder=2)


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
            _draw(basemap.rivers, ax=ax, color=RIVER, linewidth=2.2, alpha=0.9, zorder=5.5)
            handles.append(Line2D([], [], color=RIVER, linewidth=2.2, label="河流"))
        _draw(basemap.district.boundary, ax=ax, color="black", linewidth=1.0, zorder=3)
        _draw(basemap.towns.boundary, ax=ax, color=TOWN_LINE, linewidth=0.6, zorder=3)
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


def _legend(ax: Axes, handles: list[Any], title: str, loc: Any = "lower right") -> None:
    legend = ax.legend(
        handles=handles,
        loc=loc,
        fontsize=7.5,
        title=title,
        title_fontsize=8,
        frameon=True,
        framealpha=0.92,
    )
    legend.set_zorder(20)


def _title(ax: Axes, text: str, version: int | None) -> None:
    if version is not None:
        text = f"{text}\n数据版本 {version}"
    ax.set_title(text, fontsize=11.5)


def _grids(coverage: Coverage, area: shapely.Geometry | None) -> tuple[gpd.GeoDataFrame, Any]:
    """The grids (code, minutes, row index) in EPSG:4547, those meeting ``area`` (WGS84)
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


def _patch(colour: str, label: str) -> Any:
    from matplotlib.patches import Patch

    return Patch(facecolor=colour, edgecolor="#718096", linewidth=0.5, label=label)


def _points(ax: Axes, frame: Any, label: str, **style: Any) -> Any:
    """Scatter the points of ``frame`` (EPSG:4547); a legend handle (one marker)."""
    from matplotlib.lines import Line2D

    if len(frame):
        ax.scatter(frame.geometry.x, frame.geometry.y, label=label, **style)
    face = style.get("facecolor", style.get("color"))
    return Line2D(
        [],
        [],
        linestyle="none",
        marker=style.get("marker", "o"),
        markersize=float(np.sqrt(style.get("s", 20))),
        markerfacecolor=face,
        markeredgecolor=style.get("edgecolor", face),
        markeredgewidth=style.get("linewidth", 0.5),
        label=label,
    )


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
                _points(
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
            _points(
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
        _draw(patrols, ax=ax, color=PATROL, linewidth=1.8, zorder=6)
        handles.append(
            Line2D([], [], color=PATROL, linewidth=1.8, label=f"一级巡段（{len(patrols)} 条）")
        )
    return handles


# --- maps ------------------------------------------------------------------------------------


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
        fig, ax = _canvas(ax, figsize)
        grids, bounds = _grids(coverage, area)
        classes = minute_classes(coverage.minutes_to_reach[grids["row"].to_numpy()], limits)
        colours = class_colours(len(limits) + 1)
        _extent(ax, bounds)
        _draw(
            grids,
            ax=ax,
            color=[colours[c] for c in classes],
            edgecolor="white",
            linewidth=0.08,
            zorder=1,
        )
        _beneath(ax, basemap)
        names = class_names(limits)
        handles = [
            _patch(colours[i], f"{name}（{int((classes == i).sum())} 个网格）")
            for i, name in enumerate(names)
        ]
        drivers = {c for c in coverage.nearest_origin if c}
        handles += _origins(ax, basemap, drivers, ax.get_xlim() + ax.get_ylim())
        handles += furnish(ax, basemap)
        _legend(ax, handles, "到达时间（网格半数道路点）")
        weight = "按事件" if coverage.weight == "events" else "按居民"
        origins = _ORIGIN_NAMES.get(coverage.origins, coverage.origins)
        bands = "/".join(_number(m) for m in limits)
        _title(
            ax, title or f"{bands} 分钟响应覆盖（{origins}，{weight}）", coverage.dataset_version
        )
    return fig


_ORIGIN_NAMES = {
    "stations": "派出所出发",
    "posts": "警务室出发",
    "patrols": "巡段出发",
    "all": "派出所、警务室与巡段出发",
}


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
        fig, ax = _canvas(ax, figsize)
        grids, bounds = _grids(result, area)
        rows = grids["row"].to_numpy()
        was = before[rows] <= limit
        now = result.minutes_to_reach[rows] <= limit
        states = np.select([~was & now, was & ~now, was & now], [0, 1, 2], 3)
        colours = (GAINED, LOST, KEPT, NEVER)
        if area is None and (states < 2).any():
            bounds = _around(grids[states < 2].total_bounds, bounds)
        _extent(ax, bounds)
        _draw(
            grids,
            ax=ax,
            color=[colours[s] for s in states],
            edgecolor="white",
            linewidth=0.08,
            zorder=1,
        )
        _beneath(ax, basemap)
        t = _number(limit)
        handles = [
            _patch(GAINED, f"新进入{t}分钟覆盖（{int((states == 0).sum())} 个网格）"),
            _patch(LOST, f"失去{t}分钟覆盖（{int((states == 1).sum())} 个网格）"),
            _patch(KEPT, f"{t}分钟内，不变（{int((states == 2).sum())} 个）"),
            _patch(NEVER, f"{t}分钟外，不变（{int((states == 3).sum())} 个）"),
        ]
        if scenario is not None and network is not None and scenario.close_roads:
            import geopandas as gpd

            closed = np.isin(network.names.astype(str), list(scenario.close_roads))
            roads = gpd.GeoSeries(list(network.lines[closed]), crs="EPSG:4326").to_crs(METRIC_CRS)
            _draw(roads, ax=ax, color="black", linewidth=3.2, zorder=8)
            _draw(roads, ax=ax, color="#ffd400", linewidth=1.4, zorder=8)
            marks = gpd.GeoDataFrame(
                geometry=[
                    roads[network.names[closed] == name].union_all().centroid
                    for name in scenario.close_roads
                ],
                crs=METRIC_CRS,
            )
            handles.append(
                _points(
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
                _points(
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
        _legend(ax, handles, f"{t}分钟覆盖的变化")
        _title(ax, title or f"情景推演：{t}分钟覆盖的得与失", result.dataset_version)
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
        fig, ax = _canvas(ax, figsize)
        bands = gpd.GeoDataFrame(
            {
                "minutes": [b.minutes for b in iso.bands],
                "area_km2": [b.area_km2 for b in iso.bands],
            },
            geometry=[b.polygon for b in iso.bands],
            crs="EPSG:4326",
        ).to_crs(METRIC_CRS)
        _extent(ax, bands.total_bounds, margin=0.15)
        _beneath(ax, basemap)
        colours = BAND_COLOURS[: len(bands)]
        handles = []
        for i in reversed(range(len(bands))):
            _draw(
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
                _patch(colours[i], f"{_number(row.minutes)}分钟可达（{row.area_km2:.1f} 平方公里）")
            )
        if edges and len(iso.bands):
            reached = iso.reached_edges(iso.bands[-1].minutes)
            _draw(
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
                    label=f"{_number(iso.bands[-1].minutes)}分钟内可达道路",
                )
            )
        if iso.origin is not None:
            origin = gpd.GeoDataFrame(
                geometry=gpd.points_from_xy([iso.origin["lon"]], [iso.origin["lat"]]),
                crs="EPSG:4326",
            ).to_crs(METRIC_CRS)
            handles.append(
                _points(
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
                        _points(
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
        minutes = "/".join(_number(b.minutes) for b in iso.bands)
        _legend(ax, handles, "沿道路可达范围")
        _title(ax, title or f"{minutes} 分钟等时圈（{profile}，沿道路）", iso.dataset_version)
    return fig


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
        fig, ax = _canvas(ax, figsize)
        candidates = gpd.GeoDataFrame(
            geometry=gpd.points_from_xy(*instance.candidate_lonlat.T), crs="EPSG:4326"
        ).to_crs(METRIC_CRS)
        if area is not None:
            bounds = gpd.GeoSeries([area], crs="EPSG:4326").to_crs(METRIC_CRS).total_bounds
        else:
            bounds = candidates.total_bounds
        _extent(ax, bounds)
        if grids is not None:
            shown = (
                grids if area is None else grids[shapely.intersects(grids.geometry.values, area)]
            )
            _draw(
                shown.to_crs(METRIC_CRS),
                ax=ax,
                color="#f4f4f4",
                edgecolor="#c8c8c8",
                linewidth=0.25,
                zorder=1,
            )
        _beneath(ax, basemap)
        handles = [
            _points(
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

            _draw(basemap.patrols, ax=ax, color="#ef8a00", linewidth=1.4, zorder=5)
            handles.append(Line2D([], [], color="#ef8a00", linewidth=1.4, label="一级巡段"))
        for (label, solution), marker in zip(solutions.items(), styles, strict=False):
            handles.append(
                _points(
                    ax,
                    candidates.iloc[np.asarray(solution.chosen, dtype=int)],
                    f"{label}（{len(solution.chosen)} 个点）",
                    zorder=8,
                    **marker,
                )
            )
        handles += furnish(ax, basemap)
        minutes = _number(instance.seconds / 60.0)
        _legend(ax, handles, f"{minutes}分钟内可达的巡逻点位")
        _title(
            ax,
            title or f"巡逻点位选址（{minutes}分钟）",
            basemap.dataset_version if basemap is not None else None,
        )
    return fig


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
        fig, ax = _canvas(ax, figsize)
        data = frame.to_crs(METRIC_CRS)
        mask = np.ones(len(data), dtype=bool)
        if area is not None:
            mask = shapely.intersects(frame.to_crs(4326).geometry.values, area)
            bounds = frame.iloc[:0].set_geometry([area], crs=4326).to_crs(METRIC_CRS).total_bounds
        shown = data[mask]
        _extent(ax, bounds if area is not None else shown.total_bounds)
        missing = shown[column].isna().to_numpy()
        _draw(shown[missing], ax=ax, color="#e6e6e6", edgecolor="white", linewidth=0.1, zorder=1)
        _draw(
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
        _beneath(ax, basemap)
        handles: list[Any] = []
        if missing.any():
            handles.append(_patch("#e6e6e6", missing_label))
        if outline is not None:
            edged = shown[np.asarray(outline, dtype=bool)[mask]]
            _draw(edged.boundary, ax=ax, color="#111111", linewidth=1.6, zorder=5)
            handles.append(
                Patch(
                    facecolor="none",
                    edgecolor="#111111",
                    linewidth=1.6,
                    label=f"{outline_label or '勾出的区域'}（{len(edged)} 个）",
                )
            )
        if basemap is not None and len(basemap.patrols):
            from matplotlib.lines import Line2D

            _draw(basemap.patrols, ax=ax, color="#00a6e0", linewidth=1.6, zorder=6)
            handles.append(Line2D([], [], color="#00a6e0", linewidth=1.6, label="一级巡段"))
        handles += furnish(ax, basemap)
        _legend(ax, handles, "图例")
        _title(ax, title, basemap.dataset_version if basemap is not None else None)
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
    from matplotlib.lines import Line2D

    with rc_context(style()):
        fig, ax = _canvas(ax, figsize)
        xy = points.to_crs(METRIC_CRS).geometry
        bounds = basemap.district.total_bounds if basemap is not None else xy.total_bounds
        _extent(ax, bounds)
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
        _beneath(ax, basemap)
        handles: list[Any] = []
        if basemap is not None and len(basemap.patrols):
            _draw(basemap.patrols, ax=ax, color="#00a6e0", linewidth=1.6, zorder=6)
            handles.append(Line2D([], [], color="#00a6e0", linewidth=1.6, label="一级巡段"))
        handles += furnish(ax, basemap)
        _legend(ax, handles, "图例")
        _title(ax, title, basemap.dataset_version if basemap is not None else None)
    return fig
