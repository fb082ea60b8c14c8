"""The demo dataset: exact figures, valid nested coverages, deterministic, synthetic labels."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd
import pytest
import shapely
import sqlalchemy as sa

from geoservice.errors import InvalidInput
from geoservice.synthetic import SYNTHETIC_NOTE, fresh_folder, write_demo
from geoservice.synthetic.divisions import towns_and_units

LAYER_COUNTS = {"district": 1, "town": 16, "unit": 216, "large_grid": 527, "grid": 2556}


def _layer(engine, layer: str) -> gpd.GeoDataFrame:
    with engine.connect() as conn:
        return gpd.read_postgis(
            sa.text(
                f"SELECT code, name, parent_code, kind, population, geom "
                f"FROM geoservice.current_{layer}"
            ),
            conn,
            geom_col="geom",
        )


def test_the_demo_has_the_published_figures(demo_engine) -> None:
    with demo_engine.connect() as conn:
        count = lambda sql: conn.execute(sa.text(sql)).scalar_one()  # noqa: E731
        for layer, expected in LAYER_COUNTS.items():
            assert count(f"SELECT count(*) FROM geoservice.current_{layer}") == expected, layer
        assert count("SELECT count(*) FROM geoservice.current_officer") == 570
        assert count("SELECT count(DISTINCT unit_code) FROM geoservice.current_officer_unit") == 216
        assert count("SELECT count(*) FROM geoservice.current_patrol_segment") == 17
        assert count("SELECT sum(team_size) FROM geoservice.current_patrol_segment") == 340
        assert count("SELECT count(*) FROM geoservice.current_station WHERE kind = 'post'") == 216
        assert count("SELECT count(*) FROM geoservice.current_station WHERE kind = 'station'") == 16
        directed = count(
            "SELECT count(*) + count(*) FILTER (WHERE reverse_cost >= 0) FROM road_edges"
        )
        assert directed >= 100_000
        assert count("SELECT count(*) FROM road_edges WHERE reverse_cost < 0") > 0
        assert count("SELECT count(*) FROM geoservice.current_unit WHERE kind = 'scenic_area'") == 2
        assert count("SELECT sum(population) FROM geoservice.current_grid") == 1_200_000


def test_every_layer_is_a_valid_coverage_nested_in_its_parent(demo_engine) -> None:
    layers = {layer: _layer(demo_engine, layer) for layer in LAYER_COUNTS}
    for child, parent in [
        ("town", "district"),
        ("unit", "town"),
        ("large_grid", "unit"),
        ("grid", "large_grid"),
    ]:
        children, parents = layers[child], layers[parent]
        assert shapely.coverage_is_valid(children.geometry.values), child
        assert set(children.parent_code) == set(parents.code), child
        for code, group in children.groupby("parent_code"):
            union = shapely.coverage_union_all(group.geometry.values)
            outer = parents.set_index("code").geometry[code]
            # identical up to floating-point slivers (areas in degrees²; 1e-12 ≈ 0.01 m²)
            assert shapely.area(shapely.symmetric_difference(union, outer)) < 1e-12, code
        if parent == "district":
            continue  # the real district file carries no population
        population = children.groupby("parent_code").population.sum()
        assert (population == parents.set_index("code").population.loc[population.index]).all()


def test_units_are_real_names_and_codes(demo_engine) -> None:
    units = _layer(demo_engine, "unit")
    real = pd.read_csv("geoservice/data/huicheng_villages.csv", dtype=str).set_index("code")["name"]
    villages = units[units.kind != "scenic_area"]
    assert len(villages) == 214
    assert (villages.set_index("code").name == real.loc[villages.code]).all()
    _, expected = towns_and_units()
    assert sorted(units.code) == sorted(u.code for u in expected)


def test_the_central_streets_sit_around_the_city_centre(demo_engine) -> None:
    towns = _layer(demo_engine, "town").set_index("code")
    centre = shapely.Point(114.41, 23.11)
    central = ["441302001", "441302002", "441302003", "441302004", "441302005", "441302006"]
    assert all(towns.geometry[c].distance(centre) < 0.05 for c in central)
    # dense centre: central grids are smaller than rural ones
    grids = _layer(demo_engine, "grid")
    unit_town = _layer(demo_engine, "unit").set_index("code").parent_code
    lg_unit = _layer(demo_engine, "large_grid").set_index("code").parent_code
    town_of_grid = grids.parent_code.map(lg_unit).map(unit_town)
    area = shapely.area(grids.geometry.values)
    assert area[town_of_grid.isin(central)].mean() * 3 < area[~town_of_grid.isin(central)].mean()


def test_the_demo_is_deterministic_and_labelled_synthetic(demo_files, tmp_path) -> None:
    again = write_demo(tmp_path, seed=2020)
    assert again.roads.read_bytes() == demo_files.roads.read_bytes()
    assert again.officers.read_bytes() == demo_files.officers.read_bytes()
    for layer in ("grid", "unit"):
        first = gpd.read_file(demo_files.boundaries, layer=layer)
        second = gpd.read_file(again.boundaries, layer=layer)
        assert first.drop(columns="geometry").equals(second.drop(columns="geometry"))
        assert shapely.equals_exact(first.geometry.values, second.geometry.values, 0).all()
        assert set(first.source) == {SYNTHETIC_NOTE}
    assert "synthetic" in demo_files.roads.read_text(encoding="utf-8")[:300]
    other = write_demo(tmp_path / "other", seed=7)
    assert other.roads.read_bytes() != demo_files.roads.read_bytes()


@pytest.mark.parametrize("layer", ["town", "unit"])
def test_units_and_towns_nest_in_the_real_district(demo_engine, layer) -> None:
    district = _layer(demo_engine, "district").geometry.iloc[0]
    union = shapely.coverage_union_all(_layer(demo_engine, layer).geometry.values)
    assert shapely.area(shapely.symmetric_difference(union, district)) < 1e-12


def test_the_demo_empties_its_own_folder_and_no_other(tmp_path) -> None:
    """A file an older demo left (another layout) would be read as part of the bundle."""
    folder = tmp_path / "demo"
    folder.mkdir()
    (folder / "README.txt").write_text(f"{SYNTHETIC_NOTE}.\n", encoding="utf-8")
    (folder / "patrol_segments.geojson").write_text("{}", encoding="utf-8")
    fresh_folder(folder)
    assert folder.is_dir() and not any(folder.iterdir())
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("not a demo", encoding="utf-8")
    with pytest.raises(InvalidInput, match="not empty"):
        fresh_folder(mine)
    assert (mine / "notes.txt").exists()
