"""The choices a coverage question makes: which origins count, what a grid weighs."""

from __future__ import annotations

from enum import StrEnum
from typing import Self

from geoservice.errors import InvalidInput, shown


class Choice(StrEnum):
    """A choice named by its text."""

    @classmethod
    def parse(cls, value: object, name: str) -> Self:
        """The member whose text is ``value``; ``InvalidInput`` naming ``name`` otherwise."""
        for member in cls:
            if member.value == value:
                return member
        msg = f"{name} {shown(value)} is unknown; expected one of {', '.join(cls)}"
        raise InvalidInput(msg)


class OriginKind(Choice):
    """Which response origins count: stations, unit posts, patrol segments, or all three."""

    STATIONS = "stations"
    POSTS = "posts"
    PATROLS = "patrols"
    ALL = "all"


class Weight(Choice):
    """What a grid weighs: its residents, or the grid events recorded in it."""

    RESIDENTS = "residents"
    EVENTS = "events"
