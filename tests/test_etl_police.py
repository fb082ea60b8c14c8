"""Officers, stations and patrol segments through the ETL commands."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd
import sqlalchemy as sa

from tests.cli import run_cli
from tests.conftest import row_counts

OFFICER = "JY0011"  # FEATURE = 10 in the broken variants


def test_unknown_unit_code_is_named_with_its_line(broken, demo_settings, demo_engine) -> None:
    before = row_counts(demo_engine)
    result = run_cli(
        "etl", "officers", str(broken["officers_unknown_unit"]), settings=demo_settings
    )
    assert result.returncode == 2
    assert f"line 12: officer '{OFFICER}': unknown unit code '441302999999'" in result.stderr
    assert row_counts(demo_engine) == before


def test_officer_without_unit_is_refused(broken, demo_settings, demo_engine) -> None:
    result = run_cli(
        "etl", "officers", str(broken["officers_without_unit"]), settings=demo_settings
    )
    assert result.returncode == 2
    assert f"line 12: officer '{OFFICER}' has no unit (column unit_codes is empty)" in result.stderr


def test_duplicate_officers_and_missing_columns(demo_files, demo_settings, tmp_path) -> None:
    table = pd.read_csv(demo_files.officers, dtype=str)
    doubled = pd.concat([table, table.iloc[[3]]])
    path = tmp_path / "doubled.csv"
    doubled.to_csv(path, index=False)
    result = run_cli("etl", "officers", str(path), settings=demo_settings)
    assert result.returncode == 2
    assert "officer code 'JY0004' appears 2 times" in result.stderr

    path = tmp_path / "no_units.csv"
    table.drop(columns="unit_codes").to_csv(path, index=False)
    result = run_cli("etl", "officers", str(path), settings=demo_settings)
    assert result.returncode == 2
    assert "missing column(s) unit_codes" in result.stderr


def test_a_file_leaving_a_unit_uncovered_loads_with_a_warning(
    broken, demo_settings, demo_engine
) -> None:
    result = run_cli(
        "etl", "officers", str(broken["officers_uncovered_unit"]), settings=demo_settings
    )
    assert result.returncode == 0, result.stderr
    assert "570 officers assigned to 215 of 216 units" in result.stderr
    assert "warning: 1 units have no officer: 441302001001" in result.stderr
    with demo_engine.connect() as conn:
        covered = conn.execute(
            sa.text("SELECT count(DISTINCT unit_code) FROM geoservice.current_officer_unit")
        ).scalar_one()
    assert covered == 215


def test_stations_with_bad_kind_area_and_position(
    demo_files, demo_settings, demo_engine, tmp_path
) -> None:
    stations = gpd.read_file(demo_files.stations)
    stations.loc[0, "kind"] = "kiosk"
    stations.loc[20, "area_code"] = "441302999999"
    stations.loc[30, "geometry"] = stations.geometry.iloc[30].buffer(0.001)
    stations.loc[40, "geometry"] = gpd.points_from_xy([114.9], [23.6])[0]
    path = tmp_path / "stations.gpkg"
    stations.to_file(path, driver="GPKG")
    before = row_counts(demo_engine)
    result = run_cli("etl", "stations", str(path), settings=demo_settings)
    assert result.returncode == 2
    codes = stations.code
    assert f"station '{codes[0]}': kind 'kiosk' is not one of station, post" in result.stderr
    assert f"post '{codes[20]}': area_code '441302999999' is not a unit" in result.stderr
    assert f"station '{codes[30]}': geometry is Polygon, expected Point" in result.stderr
    assert f"station '{codes[40]}' lies outside the district at 114.900000 23.600000" in (
        result.stderr
    )
    assert row_counts(demo_engine) == before


def test_patrols_dry_run_and_bad_team_size(demo_files, demo_settings, tmp_path) -> None:
    ok = run_cli("etl", "patrols", str(demo_files.patrols), "--dry-run", settings=demo_settings)
    assert ok.returncode == 0, ok.stderr
    assert "17 segments, 340 patrol officers" in ok.stderr
    assert "no change to the 17 patrol segments" in ok.stderr
    patrols = gpd.read_file(demo_files.patrols)
    patrols.loc[2, "team_size"] = -3
    path = tmp_path / "patrols.geojson"
    patrols.to_file(path, driver="GeoJSON")
    bad = run_cli("etl", "patrols", str(path), settings=demo_settings)
    assert bad.returncode == 2
    assert "'XD03': team_size -3 is not a whole number >= 1" in bad.stderr
