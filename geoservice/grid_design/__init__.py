"""Grid design (see ``design``)."""

from geoservice.grid_design.design import *  # noqa: F403
from geoservice.grid_design.design import (  # noqa: F401
    _grids,
    _metric,
    _population,
    _road_lines,
    shapely,
)
