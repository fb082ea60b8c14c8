"""Boundary ETL: each validation rule refuses its broken input with an exact message and
leaves the current dataset as it was; dry runs change nothing; repairs are listed."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pytest
import shapely

from geoservice.crs import to_metric
from tests.cli import run_cli
from tests.conftest import row_counts

GRID = "4413020010030103"  # the grid the broken variants touch (FEATURE = 10)


def _refused(result, *fragments: str) -> str:
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr
    return result.stderr


@pytest.mark.parametrize(
    ("variant", "message"),
    [
        ("self_intersection", f"grid '{GRID}': Self-intersection at 114.41851766"),
        (
            "unknown_parent",
            f"grid '{GRID}': parent '44130299999901' is not a large grid of the current dataset",
        ),
        ("duplicate_code", f"code '{GRID}' appears 2 times"),
        ("gap", "in large grid '44130200100301' covered by no grid, near 114.41"),
        ("overlap", f"grids '{GRID}' and '4413020010030104' overlap by"),
    ],
)
def test_broken_grid_layers_are_refused_and_nothing_changes(
    variant, message, broken, demo_settings, demo_engine
) -> None:
    before = row_counts(demo_engine)
    result = run_cli(
        "etl", "boundaries", str(broken[variant]), "--layer", "grid", settings=demo_settings
    )
    stderr = _refused(result, message, "nothing was published")
    assert f"grid layer from grid_{variant}.gpkg" in stderr
    assert row_counts(demo_engine) == before


def test_a_gap_names_the_grids_around_it(broken, demo_settings) -> None:
    result = run_cli(
        "etl",
        "boundaries",
        str(broken["gap"]),
        "--layer",
        "grid",
        "--dry-run",
        settings=demo_settings,
    )
    gap_lines = [line for line in result.stderr.splitlines() if "gap of" in line]
    assert gap_lines, result.stderr
    # the shrunk grid and its neighbours border the gap: a technician finds it at once
    assert all("bordered by grids" in line and f"'{GRID}'" in line for line in gap_lines)


def test_repair_fixes_a_self_intersection_and_says_so(broken, demo_settings, demo_engine) -> None:
    before = row_counts(demo_engine)
    result = run_cli(
        "etl",
        "boundaries",
        str(broken["self_intersection"]),
        "--layer",
        "grid",
        "--repair",
        "--dry-run",
        settings=demo_settings,
    )
    # the bow tie, once valid, overlaps its neighbours: repaired, then refused for that
    assert f"repaired: grid '{GRID}': Self-intersection at" in result.stderr
    assert "made valid with make_valid" in result.stderr
    assert result.returncode == 2
    assert row_counts(demo_engine) == before


def test_gbk_shapefile_is_refused_until_the_encoding_is_given(broken, demo_settings) -> None:
    path = str(broken["gbk_shapefile"])
    result = run_cli(
        "etl",
        "boundaries",
        path,
        "--layer",
        "unit",
        "--parent-field",
        "parent",
        "--dry-run",
        settings=demo_settings,
    )
    _refused(
        result,
        "the attribute text is not UTF-8",
        "It decodes as GBK (东湖社区居委",
        "pass --encoding gbk",
    )
    ok = run_cli(
        "etl",
        "boundaries",
        path,
        "--layer",
        "unit",
        "--parent-field",
        "parent",
        "--encoding",
        "gbk",
        "--dry-run",
        settings=demo_settings,
    )
    assert ok.returncode == 0, ok.stderr
    assert "216 units read" in ok.stderr
    assert "dry run: valid, nothing published" in ok.stderr


def test_a_gcj02_file_lands_within_a_millimetre_of_its_wgs84_original(broken, demo_files) -> None:
    from etl.readers import read_vector

    original = gpd.read_file(demo_files.boundaries, layer="town")
    loaded = read_vector(broken["gcj02_copy"], crs="gcj02")
    a = shapely.get_coordinates(original.geometry.values)
    b = shapely.get_coordinates(loaded.geometry.values)
    ax, ay = to_metric(a[:, 0], a[:, 1])
    bx, by = to_metric(b[:, 0], b[:, 1])
    assert np.hypot(ax - bx, ay - by).max() < 0.001
    shifted = shapely.get_coordinates(gpd.read_file(broken["gcj02_copy"]).geometry.values)
    sx, sy = to_metric(shifted[:, 0], shifted[:, 1])
    assert np.hypot(ax - sx, ay - sy).min() > 100  # GCJ-02 really is hundreds of metres off


def test_gcj02_file_with_crs_publishes_unchanged_towns(broken, demo_settings) -> None:
    result = run_cli(
        "etl",
        "boundaries",
        str(broken["gcj02_copy"]),
        "--layer",
        "town",
        "--crs",
        "gcj02",
        "--dry-run",
        settings=demo_settings,
    )
    assert result.returncode == 0, result.stderr
    assert "no change to the 16 towns" in result.stderr


def test_dry_run_reports_the_diff_and_changes_nothing(
    demo_files, demo_settings, demo_engine, tmp_path
) -> None:
    towns = gpd.read_file(demo_files.boundaries, layer="town")
    towns.loc[0, "name"] = "新桥东街道"
    towns.loc[1, "population"] = 1
    path = tmp_path / "towns.geojson"
    towns.to_file(path, driver="GeoJSON")
    before = row_counts(demo_engine)
    result = run_cli(
        "etl", "boundaries", str(path), "--layer", "town", "--dry-run", settings=demo_settings
    )
    assert result.returncode == 0, result.stderr
    assert "1 renamed: 441302001" in result.stderr
    assert "1 with changed population: 441302002" in result.stderr
    assert row_counts(demo_engine) == before


def test_removing_a_town_that_units_name_is_refused(demo_files, demo_settings, tmp_path) -> None:
    towns = gpd.read_file(demo_files.boundaries, layer="town").drop(index=[15])
    path = tmp_path / "towns.geojson"
    towns.to_file(path, driver="GeoJSON")
    result = run_cli(
        "etl", "boundaries", str(path), "--layer", "town", "--dry-run", settings=demo_settings
    )
    _refused(
        result,
        "town '441302450' is retired but 2 units still name it: 441302450501, 441302450503",
        "town '441302450' is retired but 1 station still names it: PS441302450",
        "in district '441302' covered by no town",
    )


def test_publish_then_rollback(demo_files, demo_settings, demo_engine, tmp_path) -> None:
    towns = gpd.read_file(demo_files.boundaries, layer="town")
    towns.loc[0, "name"] = "新桥东街道"
    path = tmp_path / "towns.geojson"
    towns.to_file(path, driver="GeoJSON")
    before = row_counts(demo_engine)
    result = run_cli(
        "etl",
        "boundaries",
        str(path),
        "--layer",
        "town",
        "--note",
        "rename",
        settings=demo_settings,
    )
    assert result.returncode == 0, result.stderr
    new_version = before["current"] + 1
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith(f"published dataset version {new_version}: 16 towns from towns.geojson")
    )
    listed = json.loads(run_cli("datasets", "--json", settings=demo_settings).stdout)
    assert [v["current"] for v in listed] == [False, True]
    assert listed[1]["sources"][0]["path"] == str(path)
    assert listed[1]["layers"]["grid"] == listed[0]["layers"]["grid"]  # shared, not copied
    assert run_cli("rollback", str(before["current"]), settings=demo_settings).returncode == 0
    after = row_counts(demo_engine)
    assert after["current"] == before["current"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.geojson", "--layer", "town"], "missing.geojson: no such file"),
        (["{towns}", "--layer", "parish"], "unknown layer 'parish'; expected one of district"),
        (
            ["{towns}", "--layer", "town", "--code-field", "CODE"],
            "no field 'CODE'; the file has ['code', 'name', 'parent_code'",
        ),
        (
            ["{towns}", "--layer", "town", "--crs", "EPSG:99999"],
            "unknown CRS 'EPSG:99999': PROJ does not know EPSG:99999",
        ),
        (
            ["{gpkg}", "--layer", "town"],
            "holds 4 layers ['town', 'unit', 'large_grid', 'grid']; choose one with --layer-name",
        ),
        (["{gpkg}", "--layer", "town", "--layer-name", "towns"], "no layer 'towns'"),
        (
            ["{towns}", "--layer", "town", "--crs", "EPSG:4547"],
            "towns.geojson lies 2,589 km from Huicheng District at its nearest (its centre is at "
            "109.5141 0.0002",
        ),
    ],
)
def test_bad_arguments_are_named(args, message, demo_files, demo_settings, tmp_path) -> None:
    towns = tmp_path / "towns.geojson"
    gpd.read_file(demo_files.boundaries, layer="town").to_file(towns, driver="GeoJSON")
    paths = {"towns": str(towns), "gpkg": str(demo_files.boundaries)}
    argv = [a.format(**paths) for a in args]
    result = run_cli("etl", "boundaries", *argv, "--dry-run", settings=demo_settings)
    _refused(result, message)


def test_far_away_data_is_refused_with_the_distance_and_cause(
    demo_files, demo_settings, tmp_path
) -> None:
    towns = gpd.read_file(demo_files.boundaries, layer="town")
    swapped = towns.set_geometry(shapely.transform(towns.geometry.values, lambda c: c[:, ::-1]))
    path = tmp_path / "swapped.geojson"
    swapped.to_file(path, driver="GeoJSON")
    result = run_cli(
        "etl", "boundaries", str(path), "--layer", "town", "--dry-run", settings=demo_settings
    )
    _refused(
        result,
        "swapped.geojson lies",
        "km from Huicheng District",
        "lon and lat look swapped",
        "Pass --allow-outside",
    )

    metres = towns.to_crs(4547).set_crs(None, allow_override=True)
    path = tmp_path / "metres.csv"
    metres.assign(wkt=metres.geometry.to_wkt()).drop(columns="geometry").to_csv(path, index=False)
    no_crs = run_cli(
        "etl", "boundaries", str(path), "--layer", "town", "--dry-run", settings=demo_settings
    )
    _refused(no_crs, "metres.csv: the file does not state its CRS", "pass --crs")
    as_degrees = run_cli(
        "etl",
        "boundaries",
        str(path),
        "--layer",
        "town",
        "--crs",
        "wgs84",
        "--dry-run",
        settings=demo_settings,
    )
    _refused(as_degrees, "look like projected metres read as degrees")
    right = run_cli(
        "etl",
        "boundaries",
        str(path),
        "--layer",
        "town",
        "--crs",
        "EPSG:4547",
        "--dry-run",
        settings=demo_settings,
    )
    assert right.returncode == 0, right.stderr


def test_children_before_parents_are_refused(demo_files, settings) -> None:
    result = run_cli(
        "etl",
        "boundaries",
        str(demo_files.boundaries),
        "--layer",
        "unit",
        "--layer-name",
        "unit",
        settings=settings,
    )
    _refused(result, "no town layer is published yet: load the towns before the units")
