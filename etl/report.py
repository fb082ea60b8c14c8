"""Validation reports: every finding named, with the feature's code and where it is."""

from __future__ import annotations

from dataclasses import dataclass, field

from shapely.geometry.base import BaseGeometry

from geoservice.errors import ValidationFailed


@dataclass(frozen=True)
class Problem:
    """One finding that blocks publishing, and where it is on the map (if it has a place)."""

    message: str
    geometry: BaseGeometry | None = None


@dataclass
class Report:
    """What one ETL input showed: ``errors`` block publishing, the rest informs."""

    subject: str
    layer: str = ""
    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    repairs: list[str] = field(default_factory=list)
    facts: list[str] = field(default_factory=list)

    @property
    def errors(self) -> list[str]:
        return [problem.message for problem in self.problems]

    def error(self, message: str, geometry: BaseGeometry | None = None) -> None:
        self.problems.append(Problem(message, geometry))

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
