"""A missing value is SQL NULL in every layer and every column, whatever file it came from."""

from __future__ import annotations

import geopandas as gpd
import osmium
import pandas as pd
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from geoservice.server.app import create_app
from tests.cli import run_cli
from tests.conftest import FIXTURES, auth


def assert_no_nan_text(engine) -> None:
    """No text column anywhere in the schema holds 'nan'/'NaN', no float column NaN."""
    with engine.connect() as conn:
        columns = conn.execute(
            sa.text(
                "SELECT table_name, column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = 'geoservice' AND data_type IN "
                "('text', 'double precision', 'real') AND table_name NOT LIKE 'current_%'"
            )
        ).all()
        for table, column, kind in columns:
            value = "'NaN'::float8" if kind != "text" else "ANY (ARRAY['nan', 'NaN', 'None'])"
            bad = conn.execute(
                sa.text(f"SELECT count(*) FROM geoservice.{table} WHERE {column} = {value}")
            ).scalar_one()
            assert bad == 0, f"{table}.{column}: {bad} rows hold a stringified missing value"


def test_the_demo_stores_unnamed_roads_as_null(demo_engine) -> None:
    with demo_engine.connect() as conn:
        unnamed, named = conn.execute(
            sa.text("SELECT count(*) FILTER (WHERE name IS NULL), count(name) FROM road_edges")
        ).one()
    assert unnamed > 100_000 and 0 < named < 1_000
    assert_no_nan_text(demo_engine)


def test_close_roads_named_nan_is_refused(demo_settings) -> None:
    with TestClient(
        create_app(demo_settings.model_copy(update={"analysis_workers": 1})), headers=auth()
    ) as c:
        response = c.post("/v1/coverage/scenario", json={"close_roads": ["nan"]})
    assert response.status_code == 422
    assert "no road named 'nan'" in response.json()["detail"]


@pytest.mark.parametrize("suffix", [".geojson", ".gpkg", ".shp", ".csv"])
def test_boundaries_with_missing_population_in_every_format(
    suffix, demo_files, demo_settings, demo_engine, tmp_path
) -> None:
    towns = gpd.read_file(demo_files.boundaries, layer="town")
    towns["population"] = towns["population"].astype("float64")
    towns.loc[[0, 3], "population"] = None
    towns = towns.drop(columns=["kind", "source"]).rename(columns={"parent_code": "parent"})
    path = tmp_path / f"town{suffix}"
    if suffix == ".csv":
        pd.DataFrame(towns.drop(columns="geometry")).assign(
            wkt=towns.geometry.to_wkt(rounding_precision=-1)
        ).to_csv(path, index=False)
        extra = ["--crs", "wgs84"]
    else:
        towns.to_file(path)
        extra = []
    # "parent", not "parent_code": what fits a DBF field name (10 characters)
    result = run_cli(
        "etl", "boundaries", str(path), "--layer", "town", *extra, settings=demo_settings
    )
    assert result.returncode == 0, result.stderr
    with demo_engine.connect() as conn:
        rows = dict(
            conn.execute(sa.text("SELECT code, population FROM geoservice.current_town")).all()
        )
    missing = {towns.code[0], towns.code[3]}
    assert {code for code, population in rows.items() if population is None} == missing
    assert_no_nan_text(demo_engine)


def test_officers_and_patrols_with_missing_fields(demo_files, demo_settings, demo_engine, tmp_path):
    officers = pd.read_csv(demo_files.officers, dtype=str, keep_default_na=False)
    officers.loc[:9, ["rank", "phone", "station_code"]] = ""
    officers_csv = tmp_path / "officers.csv"
    officers.to_csv(officers_csv, index=False)
    patrols = gpd.read_file(demo_files.patrols)
    patrols["team"] = patrols["team"].astype(object)
    patrols.loc[:2, "team"] = None
    patrols_file = tmp_path / "patrols.gpkg"
    patrols.to_file(patrols_file)
    for command in (("officers", str(officers_csv)), ("patrols", str(patrols_file))):
        result = run_cli("etl", *command, settings=demo_settings)
        assert result.returncode == 0, result.stderr
    with demo_engine.connect() as conn:
        blank_officers = conn.execute(
            sa.text(
                "SELECT count(*) FROM geoservice.current_officer "
                "WHERE rank IS NULL AND phone IS NULL AND station_code IS NULL"
            )
        ).scalar_one()
        no_team = conn.execute(
            sa.text("SELECT count(*) FROM geoservice.current_patrol_segment WHERE team IS NULL")
        ).scalar_one()
    assert (blank_officers, no_team) == (10, 3)
    assert_no_nan_text(demo_engine)


@pytest.mark.parametrize("kind", ["osm", "pbf", "graphml"])
def test_unnamed_roads_without_maxspeed_are_null_from_every_road_format(
    kind, settings, engine, tmp_path
) -> None:
    source = FIXTURES / "osm" / "west_oakland.osm.bz2"
    if kind == "osm":
        path = source
    elif kind == "pbf":
        path = tmp_path / "oakland.osm.pbf"
        writer = osmium.SimpleWriter(str(path))
        for item in osmium.FileProcessor(str(source)):
            writer.add(item)
        writer.close()
    else:
        import osmnx

        path = tmp_path / "oakland.graphml"
        osmnx.save_graphml(osmnx.graph_from_xml(source, simplify=True), path)
    result = run_cli("etl", "roads", str(path), "--allow-outside", settings=settings)
    assert result.returncode == 0, result.stderr
    with engine.connect() as conn:
        unnamed, no_speed = conn.execute(
            sa.text(
                "SELECT count(*) FILTER (WHERE name IS NULL), "
                "count(*) FILTER (WHERE maxspeed_kmh IS NULL) FROM road_edges"
            )
        ).one()
    assert unnamed > 0 and no_speed > 0
    assert_no_nan_text(engine)
