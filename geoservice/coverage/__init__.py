"""Coverage for planners: officers per unit and 1/3/5-minute response (``model``)."""

from geoservice.coverage.model import (
    Coverage,
    CoverageModel,
    Demand,
    Grids,
    Origins,
    Scenario,
    combine,
    evaluate,
    officer_coverage,
)

__all__ = [
    "Coverage",
    "CoverageModel",
    "Demand",
    "Grids",
    "Origins",
    "Scenario",
    "combine",
    "evaluate",
    "officer_coverage",
]
