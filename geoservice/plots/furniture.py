"""Map furniture: the scale bar (``matplotlib-scalebar``, in 米/公里), the north arrow, the
legend and its handles (patches, point markers), and the title with the dataset version."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from geoservice.plots.style import font, font_properties, plain_number

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def _km(value: float, units: str) -> str:
    return f"{plain_number(value)} 公里" if units == "km" else f"{plain_number(value)} 米"


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
        fontproperties=font_properties(9),
        arrowprops={"arrowstyle": "-|>,head_width=0.35,head_length=0.7", "color": "black"},
        zorder=10,
    )


def add_legend(ax: Axes, handles: list[Any], title: str, loc: Any = "lower right") -> None:
    """The legend of ``handles`` under ``title``, above everything drawn."""
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


def add_title(ax: Axes, text: str, version: int | None) -> None:
    """``text`` as the title, the dataset version (when known) on a line below it."""
    if version is not None:
        text = f"{text}\n数据版本 {version}"
    ax.set_title(text, fontsize=11.5)


def legend_patch(colour: str, label: str) -> Any:
    """A legend entry for polygons filled with ``colour``."""
    from matplotlib.patches import Patch

    return Patch(facecolor=colour, edgecolor="#718096", linewidth=0.5, label=label)


def scatter_points(ax: Axes, frame: Any, label: str, **style: Any) -> Any:
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
