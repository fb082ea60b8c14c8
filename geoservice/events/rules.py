"""The routing rules (``geoservice/data/event_routing.json``), kept as data: each category
goes to the event's town, to a district department with a deadline, or to a lead
department with helpers; and the statuses sources write, mapped to the two kept."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

STATUS_NAMES = {
    "open": "open",
    "in_progress": "open",
    "in progress": "open",
    "在办": "open",
    "办理中": "open",
    "closed": "closed",
    "办结": "closed",
    "已办结": "closed",
}
"""Statuses as sources write them, to the two the register keeps."""


@cache
def routing() -> dict[str, dict[str, Any]]:
    """The routing rules by category code (the shipped file)."""
    text = resources.files("geoservice.data").joinpath("event_routing.json").read_text("utf-8")
    return json.loads(text)["categories"]


@cache
def category_names() -> dict[str, str]:
    """Category codes and names (as sources write them) to codes."""
    return {
        **{rule["name"]: code for code, rule in routing().items()},
        **{code: code for code in routing()},
    }


def handler(category: str, town: str | None) -> dict[str, Any]:
    """Who an event of ``category`` in ``town`` goes to, and the deadline in days."""
    rule = routing()[category]
    route = rule["route"]
    out: dict[str, Any] = {"route": route, "deadline_days": rule["deadline_days"]}
    if route == "town":
        out["handler"] = town
    elif route == "department":
        out["handler"] = rule["department"]
    else:
        out["handler"] = rule["lead"]
        out["helpers"] = list(rule["helpers"])
    return out
