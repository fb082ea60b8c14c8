"""The demo at province scale: N districts' worth of the same synthetic structure.

One district is generated as ``write_demo`` does; copy k (k ≥ 1) is that district moved
``k`` steps along a grid of columns and rows, its codes renumbered (district ``44kkkk``
instead of ``441302``, and every code below it alike; officers ``JYkkk-nnnn``), its roads
given node and way ids of their own. N = 20 is about Huizhou and its neighbours; N = 122 is
Guangdong's count of county-level divisions (about 310,000 grids and 12.6 million directed
road edges). Roads are written as OSM PBF. Everything is synthetic and says so.
"""

from __future__ import annotations

import math
from pathlib import Path

import geopandas as gpd
import numpy as np
import osmium
import pandas as pd
import shapely

from geoservice.synthetic import DemoFiles, write_demo

STEP_DEG = (0.7, 0.6)
"""Columns and rows of the copies, degrees apart (the district spans about 0.62° × 0.52°)."""
BASE_CODE = "441302"
ID_STRIDE = 10_000_000
"""OSM node and way ids of copy k start at k × this."""


def district_code(k: int) -> str:
    return BASE_CODE if k == 0 else f"44{k:04d}"


def _offsets(copies: int) -> list[tuple[float, float]]:
    columns = math.ceil(math.sqrt(copies))
    return [((k % columns) * STEP_DEG[0], (k // columns) * STEP_DEG[1]) for k in range(copies)]


def _moved(frame: gpd.GeoDataFrame, dx: float, dy: float) -> gpd.GeoDataFrame:
    out = frame.copy()
    out["geometry"] = shapely.transform(frame.geometry.values, lambda xy: xy + np.array([dx, dy]))
    return out


def _recode(values: pd.Series, k: int) -> pd.Series:
    if k == 0:
        return values
    return values.astype(str).str.replace(BASE_CODE, district_code(k), regex=False)


def write_scaled_demo(out: Path, copies: int, seed: int = 2020) -> DemoFiles:
    """Write ``copies`` districts as one bundle folder under ``out``; deterministic."""
    if copies < 1:
        msg = f"scale {copies} must be at least 1"
        raise ValueError(msg)
    base = write_demo(out / "one-district", seed=seed)
    out.mkdir(parents=True, exist_ok=True)
    offsets = _offsets(copies)
    files = DemoFiles(
        folder=out,
        district=out / "district.geojson",
        boundaries=out / "boundaries.gpkg",
        stations=out / "stations.geojson",
        officers=out / "officers.csv",
        patrols=out / "patrols.geojson",
        roads=out / "roads.osm.pbf",
        population=out / "population.gpkg",
    )

    def copies_of(frame: gpd.GeoDataFrame, columns: tuple[str, ...]) -> gpd.GeoDataFrame:
        parts = []
        for k, (dx, dy) in enumerate(offsets):
            part = _moved(frame, dx, dy)
            for column in columns:
                part[column] = _recode(part[column], k)
            if "code" not in columns and k:  # codes without the district's (patrol segments)
                part["code"] = part["code"] + f"-{k:03d}"
            parts.append(part)
        return gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), crs="EPSG:4326")

    district = copies_of(gpd.read_file(base.district), ("code",))
    district.to_file(files.district, driver="GeoJSON")
    files.boundaries.unlink(missing_ok=True)
    for layer in ("town", "unit", "large_grid", "grid"):
        frame = copies_of(gpd.read_file(base.boundaries, layer=layer), ("code", "parent_code"))
        frame.to_file(files.boundaries, layer=layer, driver="GPKG")
    stations = gpd.read_file(base.stations)
    copies_of(stations, ("code", "area_code")).to_file(files.stations, driver="GeoJSON")
    copies_of(gpd.read_file(base.patrols), ()).to_file(files.patrols, driver="GeoJSON")
    people = copies_of(gpd.read_file(base.population), ("code",))
    people.to_file(files.population, layer="population", driver="GPKG")
    officers = pd.read_csv(base.officers, dtype=str, keep_default_na=False)
    pd.concat(
        [
            officers.assign(
                code=officers.code if k == 0 else f"JY{k:03d}-" + officers.code.str[2:],
                station_code=_recode(officers.station_code, k),
                unit_codes=_recode(officers.unit_codes, k),
            )
            for k in range(copies)
        ],
        ignore_index=True,
    ).to_csv(files.officers, index=False)
    _write_roads(base.roads, files.roads, offsets)
    (out / "README.txt").write_text(
        f"SYNTHETIC: {copies} copies of the synthetic Huicheng demo (seed {seed}), "
        "moved and renumbered; not real places, roads or people.\n",
        encoding="utf-8",
    )
    return files


def _write_roads(source: Path, target: Path, offsets: list[tuple[float, float]]) -> None:
    """The base roads once per copy, moved, with ids of their own, as OSM PBF."""
    nodes: list[tuple[int, float, float]] = []
    ways: list[tuple[int, list[int], dict[str, str]]] = []
    for item in osmium.FileProcessor(str(source)):
        if isinstance(item, osmium.osm.Node):
            nodes.append((item.id, item.location.lon, item.location.lat))
        elif isinstance(item, osmium.osm.Way):
            ways.append((item.id, [n.ref for n in item.nodes], dict(item.tags)))
    ids = np.array([n[0] for n in nodes])
    lon = np.array([n[1] for n in nodes])
    lat = np.array([n[2] for n in nodes])
    target.unlink(missing_ok=True)
    writer = osmium.SimpleWriter(str(target))
    try:
        for k, (dx, dy) in enumerate(offsets):
            base = k * ID_STRIDE
            for i, x, y in zip(ids.tolist(), (lon + dx).tolist(), (lat + dy).tolist(), strict=True):
                writer.add_node(osmium.osm.mutable.Node(id=base + i, location=(x, y)))
            for way_id, refs, tags in ways:
                writer.add_way(
                    osmium.osm.mutable.Way(
                        id=base + way_id, nodes=[base + r for r in refs], tags=tags
                    )
                )
    finally:
        writer.close()
