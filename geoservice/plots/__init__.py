"""Figures a planner can show (being split into one module per concern)."""

from geoservice.plots.coverage import *  # noqa: F403
from geoservice.plots.coverage import MINUTE_COLOURS, before_minutes, town_names  # noqa: F401
