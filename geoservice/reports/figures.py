"""The bulletin's figures (matplotlib, object API, Agg: safe in worker threads), as PNG
bytes: categories and towns compared with the previous period, the hot-spot map and the
coverage map (EPSG:4547, a scale bar, a north arrow, town outlines, Chinese labels in
Noto Sans CJK SC). The font, the style, the 1/3/5-minute class colours, the scale bar and
the north arrow are the notebooks' too (``geoservice.plots``)."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from geoservice.events import routing
from geoservice.plots import (
    METRIC_CRS,
    MINUTE_COLOURS,
    north_arrow,
    scale_bar,
    style,
    town_names,
)
from geoservice.reports.data import (
    COVERAGE_CLASSES,
    HOT_CLASSES,
    coverage_classes,
    with_previous,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from geoservice.reports.data import Report

DPI = 200
HOT_COLOURS = {
    3: "#b2182b",
    2: "#ef8a62",
    1: "#fddbc7",
    0: "#eeeeee",
    -1: "#d1e5f0",
    -2: "#67a9cf",
    -3: "#2166ac",
}
COVERAGE_COLOURS = MINUTE_COLOURS
NOW, BEFORE = "#2b6cb0", "#a0aec0"
_style = style


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=DPI)
    return out.getvalue()


def category_chart(report: Report) -> bytes:
    """Events per category, this period beside the previous one."""
    from matplotlib import rc_context

    now = {g["code"]: g["events"] for g in report.current.by_category["groups"]}
    before = {g["code"]: g["events"] for g in report.previous.by_category["groups"]}
    codes = list(routing())
    with rc_context(_style()):
        fig = Figure(figsize=(7.0, 2.6), layout="constrained")
        ax = fig.add_subplot()
        x = np.arange(len(codes))
        a = ax.bar(x - 0.2, [now.get(c, 0) for c in codes], 0.4, color=NOW, label="本期")
        b = ax.bar(x + 0.2, [before.get(c, 0) for c in codes], 0.4, color=BEFORE, label="上期")
        ax.bar_label(a, padding=2, fontsize=8)
        ax.bar_label(b, padding=2, fontsize=8, color="#4a5568")
        ax.set_xticks(x, [routing()[c]["name"] for c in codes])
        ax.set_ylabel("事件数")
        ax.set_title("各类别事件数（本期与上期）")
        ax.margins(y=0.15)
        ax.legend(frameon=False)
        return _png(fig)


def trend_chart(report: Report) -> bytes | None:
    """Events per day of the period beside the previous period's day by day (None for a
    daily bulletin)."""
    from matplotlib import rc_context

    if report.current.period.first == report.current.period.last:
        return None

    def per_day(frame: Any, first: Any, days: int) -> np.ndarray:
        offset = np.array([(t.date() - first).days for t in frame["time"]], dtype=int)
        return np.bincount(offset[(offset >= 0) & (offset < days)], minlength=days)

    cur, prev = report.current.period, report.previous.period
    days = (cur.last - cur.first).days + 1
    now = per_day(report.current.frame, cur.first, days)
    before = per_day(report.previous.frame, prev.first, (prev.last - prev.first).days + 1)
    with rc_context(_style()):
        fig = Figure(figsize=(7.0, 2.3), layout="constrained")
        ax = fig.add_subplot()
        x = np.arange(1, days + 1)
        ax.plot(x, now, color=NOW, linewidth=1.4, marker="o", markersize=2.5, label="本期")
        ax.plot(
            np.arange(1, len(before) + 1),
            before,
            color=BEFORE,
            linewidth=1.0,
            linestyle="--",
            label="上期",
        )
        ax.set_xlim(0.5, max(days, len(before)) + 0.5)
        ax.set_ylim(bottom=0)
        ax.set_xlabel("期内第几天")
        ax.set_ylabel("事件数")
        ax.set_title("每日事件数（本期与上期逐日对比）")
        ax.legend(frameon=True, framealpha=0.85, ncols=2, loc="lower right")
        return _png(fig)


def town_chart(report: Report) -> bytes:
    """Events per town (one town's bulletin: per unit), this period (bars) and the
    previous one (ticks)."""
    from matplotlib import rc_context

    groups = sorted(
        with_previous(report.current.by_area, report.previous.by_area),
        key=lambda g: g["events"],
    )
    before = {g["code"]: g["events"] for g in report.previous.by_area["groups"]}
    level = "村（社区）" if report.town else "镇街"
    names = [g["name"] or report.town_names.get(g["code"] or "", "未定位") for g in groups]
    with rc_context(_style()):
        fig = Figure(figsize=(7.0, max(1.6, 0.24 * len(groups) + 0.8)), layout="constrained")
        ax = fig.add_subplot()
        y = np.arange(len(groups))
        bars = ax.barh(y, [g["events"] for g in groups], 0.6, color=NOW, label="本期")
        ax.bar_label(bars, padding=2, fontsize=7)
        ax.scatter(
            [before.get(g["code"], 0) for g in groups],
            y,
            marker="|",
            s=120,
            color="#e53e3e",
            label="上期",
            zorder=3,
        )
        ax.set_yticks(y, names)
        ax.set_xlabel("事件数")
        ax.set_title(f"各{level}事件数（竖线为上期）")
        ax.margins(x=0.12)
        ax.legend(frameon=False, loc="lower right")
        return _png(fig)


def _map_axes(fig: Figure, report: Report) -> tuple[Axes, Any]:
    ax = fig.add_subplot()
    ax.set_axis_off()
    ax.set_aspect("equal")
    towns = report.towns.to_crs(METRIC_CRS)
    return ax, towns


def _decorate(ax: Axes, towns: Any) -> None:
    """Town outlines and names, a scale bar and a north arrow."""
    towns.boundary.plot(ax=ax, color="#2d3748", linewidth=0.6)
    town_names(ax, towns)
    scale_bar(ax)
    north_arrow(ax)


def _inset(ax: Axes, grids: Any, colours: list[str], towns: Any, bounds: Any) -> None:
    """The hot grids' area enlarged in the upper left corner (where the district leaves
    room), framed on the map, when it is small beside the whole district."""
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    minx, miny, maxx, maxy = bounds
    pad = 0.08 * max(maxx - minx, maxy - miny, 1.0)
    minx, miny, maxx, maxy = minx - pad, miny - pad, maxx + pad, maxy + pad
    if (maxx - minx) > 0.4 * (x1 - x0) or (maxy - miny) > 0.4 * (y1 - y0):
        return
    side = max(maxx - minx, maxy - miny)
    cx, cy = (minx + maxx) / 2, (miny + maxy) / 2
    inset = ax.inset_axes((0.0, 0.56, 0.42, 0.42))
    grids.plot(ax=inset, color=colours, linewidth=0.1, edgecolor="#ffffff")
    towns.boundary.plot(ax=inset, color="#2d3748", linewidth=0.6)
    inset.set_xlim(cx - side / 2, cx + side / 2)
    inset.set_ylim(cy - side / 2, cy + side / 2)
    inset.set_xticks([])
    inset.set_yticks([])
    inset.set_xlabel("")
    inset.set_ylabel("")
    inset.set_title("热点集中区域放大（图中方框）", fontsize=7, pad=2)
    for spine in inset.spines.values():
        spine.set_visible(True)
    ax.indicate_inset(
        (cx - side / 2, cy - side / 2, side, side), edgecolor="#2d3748", linewidth=0.8
    )


def hot_spot_map(report: Report) -> bytes:
    """The grids coloured by their Gi* class."""
    import geopandas as gpd
    from matplotlib import rc_context

    spots = report.hot_spots
    grids = gpd.GeoDataFrame(
        {"cls": spots.classes}, geometry=list(spots.polygons), crs="EPSG:4326"
    ).to_crs(METRIC_CRS)
    with rc_context(_style()):
        fig = Figure(figsize=(7.0, 6.2), layout="constrained")
        ax, towns = _map_axes(fig, report)
        grids.plot(
            ax=ax,
            color=[HOT_COLOURS[int(c)] for c in grids["cls"]],
            linewidth=0.05,
            edgecolor="#ffffff",
        )
        _decorate(ax, towns)
        hot = grids[grids["cls"] >= 2]
        if report.town is None and len(hot):
            centres = hot.geometry.centroid
            core = (  # where most hot grids are: the middle 80% of their centres
                np.quantile(centres.x, 0.1),
                np.quantile(centres.y, 0.1),
                np.quantile(centres.x, 0.9),
                np.quantile(centres.y, 0.9),
            )
            _inset(ax, grids, [HOT_COLOURS[int(c)] for c in grids["cls"]], towns, core)
        shown = [c for c, _ in HOT_CLASSES if (spots.classes == c).any()] or [0]
        names = dict(HOT_CLASSES)
        ax.legend(
            handles=[
                Patch(facecolor=HOT_COLOURS[c], edgecolor="#718096", label=names[c]) for c in shown
            ],
            loc="lower right",
            fontsize=7,
            title="Gi* 热点分级",
            title_fontsize=7.5,
            frameon=True,
        )
        ax.set_title(f"{report.area}事件热点（{report.current.period.label}）", fontsize=11)
        return _png(fig)


def coverage_map(report: Report) -> bytes:
    """The grids classed by minutes to reach, with the stations and posts."""
    import geopandas as gpd
    from matplotlib import rc_context

    cov, mask = report.coverage, report.coverage_mask
    classes = coverage_classes(cov.minutes_to_reach[mask])
    grids = gpd.GeoDataFrame(
        {"cls": classes}, geometry=list(cov.grids.polygons[mask]), crs="EPSG:4326"
    ).to_crs(METRIC_CRS)
    with rc_context(_style()):
        fig = Figure(figsize=(7.0, 6.2), layout="constrained")
        ax, towns = _map_axes(fig, report)
        grids.plot(
            ax=ax,
            color=[COVERAGE_COLOURS[int(c)] for c in classes],
            linewidth=0.05,
            edgecolor="#ffffff",
        )
        stations = report.stations.to_crs(METRIC_CRS)
        if report.town is not None:
            area = towns.union_all()
            stations = stations[stations.within(area.buffer(200))]
        kinds = stations["kind"].astype(str)
        handles: list[Any] = [
            Patch(facecolor=COVERAGE_COLOURS[i], edgecolor="#718096", label=name)
            for i, name in enumerate(COVERAGE_CLASSES)
        ]
        for kind, marker, size, label in (
            ("station", "^", 22, "派出所"),
            ("post", "o", 5, "警务室"),
        ):
            chosen = stations[kinds == kind]
            if len(chosen):
                ax.scatter(
                    chosen.geometry.x,
                    chosen.geometry.y,
                    marker=marker,
                    s=size,
                    color="#1a202c",
                    edgecolor="white",
                    linewidth=0.3,
                    zorder=4,
                )
                handles.append(
                    ax.scatter([], [], marker=marker, s=size, color="#1a202c", label=label)
                )
        _decorate(ax, towns)
        ax.legend(
            handles=handles,
            loc="lower right",
            fontsize=7,
            title="到达时间",
            title_fontsize=7.5,
            frameon=True,
        )
        ax.set_title(
            f"{report.area} 1/3/5 分钟响应覆盖（数据版本 {report.dataset_version}）", fontsize=11
        )
        return _png(fig)
