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
matplotlib and geopandas are imported only when a figure is drawn.

One module per concern:

- ``style``: the CJK font and rc style, the minute classes, their names and colours.
- ``canvas``: a map's axes in EPSG:4547 (``METRIC_CRS``), its extent.
- ``furniture``: the scale bar, the north arrow, the legend and the title.
- ``layers``: the :class:`Basemap` read for one dataset version, drawn beneath and above
  the data (:func:`furnish`); :func:`demo_rivers`.
- ``coverage``, ``scenario``, ``isochrones``, ``placement``, ``thematic`` (choropleth,
  density): the figures.
"""

from geoservice.plots.canvas import METRIC_CRS
from geoservice.plots.coverage import coverage_map
from geoservice.plots.furniture import north_arrow, scale_bar
from geoservice.plots.isochrones import isochrone_map
from geoservice.plots.layers import Basemap, demo_rivers, furnish, town_names
from geoservice.plots.placement import placement_map
from geoservice.plots.scenario import before_minutes, scenario_map
from geoservice.plots.style import (
    FONT_FAMILY,
    FONT_FILE,
    MINUTE_COLOURS,
    class_colours,
    class_names,
    font,
    minute_classes,
    style,
    use_cjk,
)
from geoservice.plots.thematic import choropleth, density_map

__all__ = [
    "FONT_FAMILY",
    "FONT_FILE",
    "METRIC_CRS",
    "MINUTE_COLOURS",
    "Basemap",
    "before_minutes",
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
    "town_names",
    "use_cjk",
]
