"""Speed profiles: travel speed per OSM highway class, in files under ``profiles/``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from geoservice.errors import InvalidInput

DEFAULT_PROFILE = "car"


@dataclass(frozen=True)
class Profile:
    name: str
    speeds_kmh: dict[str, float]
    oneway: bool  # whether one-way tags bind this mode
    use_maxspeed: bool = True  # whether a maxspeed tag replaces the class speed

    def drivable(self, highway: str) -> bool:
        return highway in self.speeds_kmh

    def speed_kmh(self, highway: str, maxspeed_kmh: float | None) -> float:
        """Travel speed on one way: its ``maxspeed`` tag if the mode follows it, else the
        class speed."""
        if self.use_maxspeed and maxspeed_kmh is not None and maxspeed_kmh > 0:
            return float(maxspeed_kmh)
        return self.speeds_kmh[highway]


def available() -> list[str]:
    folder = resources.files("geoservice").joinpath("profiles")
    return sorted(
        p.name.removesuffix(".json") for p in folder.iterdir() if p.name.endswith(".json")
    )


def check_profile(name: str) -> str:
    """``name`` if it is a shipped profile (the API serves only those)."""
    if name not in available():
        msg = f"unknown profile {name!r}; expected one of {available()}"
        raise InvalidInput(msg)
    return name


def load_profile(name_or_path: str | Path = DEFAULT_PROFILE) -> Profile:
    """A shipped profile by name (``car``, ``foot``) or a JSON file of the same shape."""
    path = Path(name_or_path)
    if path.suffix == ".json":
        if not path.is_file():
            msg = f"profile file {path} does not exist"
            raise InvalidInput(msg)
        text = path.read_text(encoding="utf-8")
    elif str(name_or_path) in available():
        text = (
            resources.files("geoservice")
            .joinpath(f"profiles/{name_or_path}.json")
            .read_text(encoding="utf-8")
        )
    else:
        msg = (
            f"unknown profile {str(name_or_path)!r}; expected one of {available()} or a .json file"
        )
        raise InvalidInput(msg)
    try:
        data = json.loads(text)
        speeds = {str(k): float(v) for k, v in data["speeds_kmh"].items()}
        profile = Profile(
            str(data["name"]),
            speeds,
            bool(data.get("oneway", True)),
            bool(data.get("use_maxspeed", True)),
        )
    except (KeyError, TypeError, ValueError) as exc:
        msg = f"profile {name_or_path}: expected {{'name', 'speeds_kmh': {{class: km/h}}}}: {exc}"
        raise InvalidInput(msg) from None
    bad = {k: v for k, v in speeds.items() if not v > 0}
    if bad:
        msg = f"profile {profile.name}: speeds must be > 0 km/h, got {bad}"
        raise InvalidInput(msg)
    return profile
