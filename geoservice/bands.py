"""Minute bands: the time limits an isochrone or a coverage answer is given for."""

from __future__ import annotations

from collections.abc import Iterable
from numbers import Real
from typing import Final

from geoservice.errors import InvalidInput, shown

MAX_MINUTES: Final = 60.0
MAX_BANDS: Final = 6


class Bands(tuple[float, ...]):
    """Minute limits, ascending and distinct, each in (0, 60], one to six.

    ``Bands((5, 1, 3, 3))`` is ``(1.0, 3.0, 5.0)``; ``Bands.parse("1,3,5")`` reads the text
    of a query string or a command line. Anything else raises ``InvalidInput`` naming it.
    """

    __slots__ = ()

    def __new__(cls, minutes: Iterable[float]) -> Bands:
        values: set[float] = set()
        for m in minutes:
            if isinstance(m, bool) or not isinstance(m, Real):
                msg = f"minutes {shown(m)} is not a number; expected e.g. minutes=1,3,5"
                raise InvalidInput(msg)
            if not 0 < m <= MAX_MINUTES:
                msg = f"minutes '{m:g}' is out of range; each must be in (0, {MAX_MINUTES:g}]"
                raise InvalidInput(msg)
            values.add(float(m))
        if not values:
            msg = "minutes is empty; expected e.g. minutes=1,3,5"
            raise InvalidInput(msg)
        if len(values) > MAX_BANDS:
            listed = ",".join(f"{m:g}" for m in sorted(values))
            msg = f"{len(values)} bands requested ({listed}); at most {MAX_BANDS}"
            raise InvalidInput(msg)
        return super().__new__(cls, sorted(values))

    @classmethod
    def parse(cls, text: str) -> Bands:
        """Comma-separated minutes, such as ``"1,3,5"``."""
        minutes = []
        for part in text.split(","):
            try:
                minutes.append(float(part))
            except ValueError:
                msg = f"minutes {shown(part)} is not a number; expected e.g. minutes=1,3,5"
                raise InvalidInput(msg) from None
        return cls(minutes)


DEFAULT_BANDS: Final = Bands((1.0, 3.0, 5.0))
