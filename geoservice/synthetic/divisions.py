"""The demo's towns and units: real names and codes, chosen by a documented rule.

Rule. Of the 21 town-level units of 441302 (NBS 2023), the five in the Zhongkai zone
(惠环, 陈江, 潼湖, 沥林, 潼侨) are left out: 16 towns/streets remain (13 towns and
streets plus 东江高新科技产业园, 惠南高新科技产业园 and 惠州市林场). They hold 230
villages/communities; 214 are kept by removing, 16 times, the highest-coded unit of
the town that has the most units left (ties: the lowest town code). Two scenic areas
with synthetic codes (441302002901 西湖风景名胜区, 441302002902 红花湖景区) complete
the 216 police units.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from importlib import resources

ZHONGKAI_TOWNS = ("441302007", "441302008", "441302106", "441302107", "441302114")
UNITS_KEPT = 214
SCENIC_AREAS = (
    ("441302002901", "西湖风景名胜区", "441302002"),
    ("441302002902", "红花湖景区", "441302002"),
)

# Approximate town centres (lon, lat); the six central streets sit around the city
# centre near 114.41E 23.11N, the rural towns around them.
TOWN_CENTRES = {
    "441302001": (114.428, 23.112),  # 桥东街道
    "441302002": (114.398, 23.104),  # 桥西街道
    "441302003": (114.392, 23.083),  # 江南街道
    "441302004": (114.412, 23.133),  # 江北街道
    "441302005": (114.372, 23.118),  # 龙丰街道
    "441302006": (114.442, 23.082),  # 河南岸街道
    "441302009": (114.485, 23.140),  # 水口街道
    "441302010": (114.405, 23.200),  # 小金口街道
    "441302100": (114.490, 23.260),  # 汝湖镇
    "441302103": (114.425, 23.020),  # 三栋镇
    "441302109": (114.570, 23.090),  # 马安镇
    "441302110": (114.650, 23.220),  # 横沥镇
    "441302112": (114.600, 23.340),  # 芦洲镇
    "441302401": (114.540, 23.170),  # 东江高新科技产业园
    "441302402": (114.300, 23.040),  # 惠南高新科技产业园
    "441302450": (114.250, 23.160),  # 惠州市林场
}
CENTRAL_STREETS = ("441302001", "441302002", "441302003", "441302004", "441302005", "441302006")


@dataclass(frozen=True)
class Town:
    code: str
    name: str


@dataclass(frozen=True)
class Unit:
    code: str
    name: str
    town_code: str
    kind: str  # village | community | scenic_area


def _rows(name: str) -> list[dict[str, str]]:
    with resources.files("geoservice.data").joinpath(name).open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def unit_kind(name: str) -> str:
    return "community" if "社区" in name else "village"


def towns_and_units() -> tuple[list[Town], list[Unit]]:
    """The 16 towns and 216 units of the demo, in code order."""
    towns = [
        Town(row["code"], row["name"])
        for row in _rows("huicheng_streets.csv")
        if row["code"] not in ZHONGKAI_TOWNS
    ]
    town_codes = {town.code for town in towns}
    by_town: dict[str, list[Unit]] = {code: [] for code in town_codes}
    for row in _rows("huicheng_villages.csv"):
        if row["streetCode"] in town_codes:
            unit = Unit(row["code"], row["name"], row["streetCode"], unit_kind(row["name"]))
            by_town[row["streetCode"]].append(unit)
    for units in by_town.values():
        units.sort(key=lambda unit: unit.code)
    while sum(len(units) for units in by_town.values()) > UNITS_KEPT:
        largest = min(by_town, key=lambda code: (-len(by_town[code]), code))
        by_town[largest].pop()
    units = [unit for code in sorted(by_town) for unit in by_town[code]]
    units += [Unit(code, name, town, "scenic_area") for code, name, town in SCENIC_AREAS]
    units.sort(key=lambda unit: unit.code)
    return towns, units
