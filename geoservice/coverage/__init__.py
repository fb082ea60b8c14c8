"""Coverage for planners: officers per unit and 1/3/5-minute response along the roads.

``model`` (``CoverageModel``, ``evaluate``: the one grid rule), ``demand`` (grids and their
demand points), ``origins`` (stations, posts, patrol segments), ``result`` (``Coverage``
and its answers), ``scenario`` (what-if changes), ``officers`` (officers per unit),
``kinds`` (``OriginKind``, ``Weight``).
"""

from geoservice.coverage.demand import Demand, Grids
from geoservice.coverage.kinds import OriginKind, Weight
from geoservice.coverage.model import CoverageModel, evaluate
from geoservice.coverage.officers import officer_coverage
from geoservice.coverage.origins import Origins, combine
from geoservice.coverage.result import Coverage
from geoservice.coverage.scenario import Scenario

__all__ = [
    "Coverage",
    "CoverageModel",
    "Demand",
    "Grids",
    "OriginKind",
    "Origins",
    "Scenario",
    "Weight",
    "combine",
    "evaluate",
    "officer_coverage",
]
