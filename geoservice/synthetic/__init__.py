"""The synthetic Huicheng demo dataset, written as ordinary GIS files.

Only the district boundary and the town/unit names and codes are real (see
``geoservice/data/SOURCES.md``); all geometry below the district, populations,
police and roads are synthetic and labelled so in every file.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
from shapely.geometry import MultiPolygon, shape

from geoservice.errors import InvalidInput
from geoservice.synthetic import boundaries, events, police, population, roads
from geoservice.synthetic.divisions import towns_and_units

SYNTHETIC_NOTE = "SYNTHETIC demo data made by geoservice.synthetic; not real boundaries or people"
REAL_DISTRICT_NOTE = (
    "real boundary: ODbL 1.0, © OpenStreetMap contributors (via the R package mapchina)"
)
DISTRICT_FILE = "huicheng_district_wgs84.geojson"


@dataclass(frozen=True)
class DemoFiles:
    """Where ``write_demo`` put each layer: together, one bundle folder (``folder``)."""

    folder: Path
    district: Path
    boundaries: Path  # GeoPackage with layers town, unit, large_grid, grid
    stations: Path
    officers: Path
    patrols: Path
    roads: Path
    population: Path
    events: Path | None = None  # a year of grid events (events/, not a bundle part)


def real_district() -> MultiPolygon:
    """The real Huicheng boundary shipped with geoservice (ODbL, © OpenStreetMap contributors)."""
    text = resources.files("geoservice.data").joinpath(DISTRICT_FILE).read_text(encoding="utf-8")
    geom = shape(json.loads(text)["features"][0]["geometry"])
    return geom if isinstance(geom, MultiPolygon) else MultiPolygon([geom])


def _frame(features: list[boundaries.Feature]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {
            "code": [f.code for f in features],
            "name": [f.name for f in features],
            "parent_code": [f.parent_code for f in features],
            "population": [f.population for f in features],
            "kind": [f.kind for f in features],
            "source": SYNTHETIC_NOTE,
        },
        geometry=[f.geom for f in features],
        crs="EPSG:4326",
    )


def fresh_folder(out_dir: Path) -> None:
    """Make ``out_dir`` an empty folder: one a demo wrote before is emptied (files of an
    older layout would be read as part of the bundle); any other non-empty one is refused."""
    marker = out_dir / "README.txt"
    if marker.is_file() and marker.read_text(encoding="utf-8").startswith(SYNTHETIC_NOTE):
        shutil.rmtree(out_dir)
    elif out_dir.is_dir() and any(out_dir.iterdir()):
        msg = f"{out_dir} is not empty and holds no earlier demo; choose an empty folder"
        raise InvalidInput(msg)
    out_dir.mkdir(parents=True, exist_ok=True)


def write_demo(out_dir: Path, seed: int = 2020) -> DemoFiles:
    """Generate the demo for ``seed`` and write it into ``out_dir`` (emptied first, see
    ``fresh_folder``); deterministic."""
    fresh_folder(out_dir)
    rng = np.random.default_rng(seed)
    district = real_district()
    towns, units = towns_and_units()
    layers = boundaries.generate(district, towns, units, rng)
    network = roads.generate(district, rng)

    files = DemoFiles(
        folder=out_dir,
        district=out_dir / "district.geojson",
        boundaries=out_dir / "huicheng_boundaries.gpkg",
        stations=out_dir / "stations.geojson",
        officers=out_dir / "officers.csv",
        patrols=out_dir / "patrols.geojson",
        roads=out_dir / "roads.osm",
        population=out_dir / "population.gpkg",
        events=out_dir / "events" / "events-2020.csv",
    )
    gpd.GeoDataFrame(
        {"code": ["441302"], "name": ["惠城区"], "source": [REAL_DISTRICT_NOTE]},
        geometry=[district],
        crs="EPSG:4326",
    ).to_file(files.district, driver="GeoJSON")
    files.boundaries.unlink(missing_ok=True)
    for name, features in (
        ("town", layers.towns),
        ("unit", layers.units),
        ("large_grid", layers.large_grids),
        ("grid", layers.grids),
    ):
        _frame(features).to_file(files.boundaries, layer=name, driver="GPKG")

    sites = police.stations(layers)
    gpd.GeoDataFrame(
        {
            "code": [s.code for s in sites],
            "name": [s.name for s in sites],
            "kind": [s.kind for s in sites],
            "area_code": [s.area_code for s in sites],
            "source": SYNTHETIC_NOTE,
        },
        geometry=[s.geom for s in sites],
        crs="EPSG:4326",
    ).to_file(files.stations, driver="GeoJSON")

    people = police.officers(layers, rng)
    pd.DataFrame(
        {
            "code": [o.code for o in people],
            "name": [o.name for o in people],
            "rank": [o.rank for o in people],
            "phone": [o.phone for o in people],
            "station_code": [o.station_code for o in people],
            "unit_codes": [";".join(o.unit_codes) for o in people],
        }
    ).to_csv(files.officers, index=False)

    segments = police.patrol_segments(network, rng)
    gpd.GeoDataFrame(
        {
            "code": [p.code for p in segments],
            "name": [p.name for p in segments],
            "level": [p.level for p in segments],
            "team": [p.team for p in segments],
            "team_size": [p.team_size for p in segments],
            "source": SYNTHETIC_NOTE,
        },
        geometry=[p.geom for p in segments],
        crs="EPSG:4326",
    ).to_file(files.patrols, driver="GeoJSON")

    roads.write_osm(network, files.roads)
    # its own random stream: the layers above stay as they were before it existed
    codes, residents, households, points = population.buildings(
        layers.grids, np.random.default_rng([seed, 7])
    )
    gpd.GeoDataFrame(
        {
            "code": codes,
            "residents": residents,
            "households": households,
            "source": SYNTHETIC_NOTE,
        },
        geometry=points,
        crs="EPSG:4326",
    ).to_file(files.population, layer="population", driver="GPKG")
    assert files.events is not None
    events.write_events(
        files.events, layers.grids, network, district, np.random.default_rng([seed, 2020])
    )
    (out_dir / "README.txt").write_text(
        f"{SYNTHETIC_NOTE}.\nSeed {seed}. The district boundary is real: "
        "ODbL 1.0, © OpenStreetMap contributors (via the R package mapchina).\n",
        encoding="utf-8",
    )
    return files
