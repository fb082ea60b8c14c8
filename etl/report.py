"""Validation reports: every finding named, with the feature's code and where it is."""

from __future__ import annotations

from dataclasses import dataclass, field

import shapely
from shapely.geometry.base import BaseGeometry

from geoservice.errors import ValidationFailed

EXPLAINS_DEG = 1e-6
"""A loose edge this close (about 0.1 m) to a reported gap or overlap is its symptom."""


@dataclass(frozen=True)
class Problem:
    """One finding that blocks publishing, and where it is on the map (if it has a place)."""

    message: str
    geometry: BaseGeometry | None = None
    code: str | None = None
    """The feature it is about, when one is."""
    kind: str = "invalid"
    """What sort of problem: ``overlap``, ``gap``, ``outside_parent``, ``edge_mismatch``,
    ``invalid_geometry``, ``bad_reference``, ``missing_value``, ``duplicate_code``,
    ``retired_but_named``, ``conflict``, ``revert`` or ``invalid``."""


@dataclass
class Report:
    """What one ETL input showed: ``errors`` block publishing, the rest informs."""

    subject: str
    layer: str = ""
    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    repairs: list[str] = field(default_factory=list)
    facts: list[str] = field(default_factory=list)
    loose_edges: list[tuple[str, BaseGeometry, str]] = field(default_factory=list)
    """Edges that do not match their neighbour's, held until gaps and overlaps are named."""

    @property
    def errors(self) -> list[str]:
        return [problem.message for problem in self.problems]

    def error(
        self,
        message: str,
        geometry: BaseGeometry | None = None,
        *,
        code: str | None = None,
        kind: str = "invalid",
    ) -> None:
        self.problems.append(Problem(message, geometry, code, kind))

    def report_loose_edges(self) -> None:
        """Report each held edge that no gap or overlap already reported explains (one
        touching it): the technician sees the cause, not its symptom."""
        placed = [p.geometry for p in self.problems if p.geometry is not None]
        explained = shapely.STRtree(placed) if placed else None
        for message, edge, code in self.loose_edges:
            if explained is not None and len(
                explained.query(edge, predicate="dwithin", distance=EXPLAINS_DEG)
            ):
                continue
            self.error(message, edge, code=code, kind="edge_mismatch")
        self.loose_edges.clear()

    def raise_if_failed(self) -> None:
        if self.problems:
            count = len(self.problems)
            msg = (
                f"{self.subject}: {count} problem{'s' if count > 1 else ''}; nothing was published"
            )
            raise ValidationFailed(msg, self.errors)

    def lines(self) -> list[str]:
        out = [f"{self.subject}:"]
        out += [f"  {fact}" for fact in self.facts]
        out += [f"  repaired: {item}" for item in self.repairs]
        out += [f"  warning: {item}" for item in self.warnings]
        out += [f"  problem: {item}" for item in self.errors]
        return out


def where(lon: float, lat: float) -> str:
    """A location as written in messages."""
    return f"{lon:.6f} {lat:.6f}"
