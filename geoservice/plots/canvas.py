"""A map's axes in EPSG:4547 (CGCS2000 / 3-degree Gauss-Kruger CM 114E, metres): a new
figure on an Agg canvas (safe in worker threads, no pyplot state) or the caller's axes,
its extent, and drawing a frame on it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from geoservice.crs import METRIC_EPSG

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

METRIC_CRS = f"EPSG:{METRIC_EPSG}"
"""The maps' CRS: one data unit is one metre, so the scale bar is exact across the district."""


def draw(frame: Any, **style: Any) -> None:
    """``frame.plot(**style)``, unless there is nothing to draw (geopandas warns then)."""
    if len(frame):
        frame.plot(**style)


def canvas(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    """``ax`` and its figure, or a new figure of ``figsize`` inches on an Agg canvas; the
    axes hidden, one metre the same length both ways."""
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


def set_extent(ax: Axes, bounds: Sequence[float], margin: float = 0.04) -> None:
    """Show ``bounds`` (minx, miny, maxx, maxy in metres) with ``margin`` of the longer side
    around them."""
    minx, miny, maxx, maxy = bounds
    pad = margin * max(maxx - minx, maxy - miny, 1.0)
    ax.set_xlim(minx - pad, maxx + pad)
    ax.set_ylim(miny - pad, maxy + pad)
