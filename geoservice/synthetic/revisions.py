"""Example revisions of the demo, as GIS staff make them: each a bundle folder.

- ``merge``: two neighbouring villages of one town merge (撤村并居): the second unit is
  retired, its large grids now belong to the first (whose boundary grows to cover both),
  its post closes and its officers move to the first unit.
- ``split``: a community splits: some of its large grids form a new community with a new
  post, and some of its officers move there.

Each folder holds the whole unit, large grid and station layers and the officers, so it
loads with ``geoservice etl bundle``; like the demo, everything is synthetic.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import pandas as pd
import shapely

from geoservice.synthetic import SYNTHETIC_NOTE, DemoFiles


@dataclass(frozen=True)
class Revision:
    folder: Path
    retired: list[str]
    created: list[str]
    summary: str


def write_revisions(files: DemoFiles, out: Path) -> dict[str, Revision]:
    """Write the ``merge`` and ``split`` bundles under ``out``; what each does."""
    units = gpd.read_file(files.boundaries, layer="unit")
    large = gpd.read_file(files.boundaries, layer="large_grid")
    stations = gpd.read_file(files.stations)
    officers = pd.read_csv(files.officers, dtype=str, keep_default_na=False)
    keep, gone = neighbouring_villages(units)
    community = _community_to_split(units, large, exclude={keep, gone})
    return {
        "merge": merge_units(out / "merge", units, large, stations, officers, keep, gone),
        "split": _split(out / "split", units, large, stations, officers, community),
    }


def neighbouring_villages(units: gpd.GeoDataFrame) -> tuple[str, str]:
    """The first two villages of one town sharing an edge (by code)."""
    villages = units[units["kind"] == "village"].sort_values("code")
    for _, first in villages.iterrows():
        same_town = villages[
            (villages["parent_code"] == first["parent_code"]) & (villages["code"] > first["code"])
        ]
        for _, second in same_town.iterrows():
            shared = shapely.intersection(first.geometry, second.geometry)
            if shapely.length(shared) > 0:
                return first["code"], second["code"]
    msg = "no two neighbouring villages in one town"
    raise ValueError(msg)


def _community_to_split(units: gpd.GeoDataFrame, large: gpd.GeoDataFrame, exclude: set[str]) -> str:
    counts = large.groupby("parent_code").size()
    for code in sorted(units.loc[units["kind"] == "community", "code"]):
        if code not in exclude and counts.get(code, 0) >= 4:
            return code
    msg = "no community with four large grids"
    raise ValueError(msg)


def _write(folder: Path, units, large, stations, officers) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    columns = ["code", "name", "parent_code", "kind", "population", "geometry"]
    for name, frame in (("unit", units), ("large_grid", large)):
        frame = frame[[c for c in columns if c in frame.columns]].assign(source=SYNTHETIC_NOTE)
        path = folder / f"{name}.geojson"
        path.unlink(missing_ok=True)
        frame.to_file(path, driver="GeoJSON")
    path = folder / "stations.geojson"
    path.unlink(missing_ok=True)
    stations.to_file(path, driver="GeoJSON")
    officers.to_csv(folder / "officers.csv", index=False)


def _union(frame: gpd.GeoDataFrame) -> shapely.Geometry:
    geom = shapely.coverage_union_all(frame.geometry.values)
    return geom if isinstance(geom, shapely.MultiPolygon) else shapely.MultiPolygon([geom])


def _reassign(officers: pd.DataFrame, chosen: pd.Series, old: str, new: str) -> pd.DataFrame:
    def swap(codes: str) -> str:
        parts = [new if c == old else c for c in codes.split(";")]
        return ";".join(dict.fromkeys(parts))

    officers = officers.copy()
    officers.loc[chosen, "unit_codes"] = officers.loc[chosen, "unit_codes"].map(swap)
    return officers


def _serves(officers: pd.DataFrame, unit: str) -> pd.Series:
    return officers["unit_codes"].map(lambda codes: unit in codes.split(";"))


def merge_units(folder, units, large, stations, officers, keep: str, gone: str) -> Revision:
    """A bundle folder merging unit ``gone`` into ``keep``: its large grids, post and
    officers move with it (the frames are any version's layers, e.g. an export's)."""
    large = large.copy()
    moved = large["parent_code"] == gone
    large.loc[moved, "parent_code"] = keep
    units = units[units["code"] != gone].copy()
    merged = large[large["parent_code"] == keep]
    row = units.index[units["code"] == keep][0]
    units.loc[row, "geometry"] = _union(merged)
    units.loc[row, "population"] = int(merged["population"].sum())
    stations = stations[~((stations["kind"] == "post") & (stations["area_code"] == gone))]
    officers = _reassign(officers, _serves(officers, gone), gone, keep)
    _write(folder, units, large, stations, officers)
    return Revision(folder, [gone], [], f"unit {gone} merged into {keep}")


def _split(folder, units, large, stations, officers, community: str) -> Revision:
    mine = large[large["parent_code"] == community].sort_values("code")
    town = community[:9]
    taken = set(units["code"])
    new = next(f"{town}{n:03d}" for n in range(900, 1000) if f"{town}{n:03d}" not in taken)
    moving = mine.index[len(mine) // 2 :]
    large = large.copy()
    large.loc[moving, "parent_code"] = new
    units = units.copy()
    old_row = units.index[units["code"] == community][0]
    staying = large[large["parent_code"] == community]
    leaving = large[large["parent_code"] == new]
    base = units.loc[old_row, "name"]
    units.loc[old_row, "geometry"] = _union(staying)
    units.loc[old_row, "population"] = int(staying["population"].sum())
    added = gpd.GeoDataFrame(
        {
            "code": [new],
            "name": [f"{base.removesuffix('社区居委会')}新城社区居委会"],
            "parent_code": [town],
            "kind": ["community"],
            "population": [int(leaving["population"].sum())],
        },
        geometry=[_union(leaving)],
        crs=units.crs,
    )
    units = pd.concat([units, added], ignore_index=True)
    post = gpd.GeoDataFrame(
        {
            "code": [f"PP{new}"],
            "name": [f"{added.name[0].removesuffix('社区居委会')}警务室"],
            "kind": ["post"],
            "area_code": [new],
            "source": [SYNTHETIC_NOTE],
        },
        geometry=[shapely.point_on_surface(added.geometry[0])],
        crs=stations.crs,
    )
    stations = pd.concat([stations, post], ignore_index=True)
    serving = officers.index[_serves(officers, community)]
    movers = serving[len(serving) // 2 :] if len(serving) > 1 else serving
    officers = _reassign(officers, officers.index.isin(movers), community, new)
    if len(serving) == 1:  # one officer keeps both
        officers.loc[serving, "unit_codes"] += f";{community}"
    _write(folder, units, large, stations, officers)
    return Revision(folder, [], [new], f"community {community} split: new community {new}")
