"""GIS staff's round trip: the service's own layers load back unchanged, an edit publishes
only itself, stale bundles are reconciled or refused, and every message says what is wrong.

Exports are made the ways a technician makes them: GDAL's OAPIF driver into a GeoPackage,
``/v1/layers`` GeoJSON (8 decimals), a CGCS2000 Gauss–Kruger (EPSG:4547) GBK Shapefile
written by ``ogr2ogr``, and ``geoservice export``.
"""

from __future__ import annotations

import itertools
import json
import subprocess
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import shapely
import sqlalchemy as sa
from shapely.geometry import MultiPolygon, Polygon

from etl.readers import metadata_of
from geoservice.diff import features_at
from geoservice.export import BASE_KEY
from geoservice.synthetic.revisions import merge_units, neighbouring_villages, write_revisions
from tests.cli import run_cli
from tests.conftest import TEST_KEYS
from tests.server import serving

BOUNDARY_LAYERS = ("district", "town", "unit", "large_grid", "grid")
NO_CHANGE = "no change: nothing to publish"


@pytest.fixture(scope="module")
def server(demo_readonly, tmp_path_factory):
    with serving(demo_readonly, tmp_path_factory.mktemp("round-trip")) as running:
        yield running


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return result


def _exports(layer: str, server, demo_client, folder: Path) -> list[Path]:
    """The layer through OAPIF into a GeoPackage, as /v1/layers GeoJSON, and as a
    CGCS2000 Gauss–Kruger GBK Shapefile made from that GeoJSON."""
    folder.mkdir()
    gpkg = folder / f"{layer}.gpkg"
    key = f"X-API-Key: {TEST_KEYS['planner']}"
    _run("ogr2ogr", "--config", "GDAL_HTTP_HEADERS", key, "-f", "GPKG", str(gpkg),
         f"OAPIF:{server.url}/ogc", layer)  # fmt: skip
    geojson = folder / f"{layer}.geojson"
    geojson.write_bytes(demo_client.get(f"/v1/layers/{layer}").content)
    shp = folder / "shp" / f"{layer}.shp"
    shp.parent.mkdir()
    _run("ogr2ogr", "-f", "ESRI Shapefile", str(shp), str(geojson), "-t_srs", "EPSG:4547",
         "-lco", "ENCODING=GBK")  # fmt: skip
    return [gpkg, geojson, shp]


@pytest.mark.parametrize("layer", BOUNDARY_LAYERS)
def test_every_boundary_layer_loads_back_as_no_change(
    layer, server, demo_client, demo_readonly, tmp_path
) -> None:
    for path in _exports(layer, server, demo_client, tmp_path / layer):
        result = run_cli(
            "etl", "boundaries", str(path), "--layer", layer, "--dry-run", settings=demo_readonly
        )
        assert result.returncode == 0, (path.name, result.stderr)
        assert NO_CHANGE in result.stderr, (path.name, result.stderr)
        assert "kept exactly as stored" in result.stderr


def test_the_export_loads_back_as_no_change_from_the_cli_and_http(
    demo_client, demo_readonly, tmp_path
) -> None:
    out = tmp_path / "v1.gpkg"
    made = run_cli("export", str(out), settings=demo_readonly)
    assert made.returncode == 0, made.stderr
    assert "wrote dataset version 1" in made.stderr and "grid 2,556" in made.stderr
    assert metadata_of(out)[BASE_KEY] == "1"
    officers = pyogrio.read_dataframe(out, layer="officers")
    assert len(officers) == 570 and "phone" not in officers.columns
    again = run_cli("etl", "bundle", str(out), settings=demo_readonly)
    assert again.returncode == 0, again.stderr
    assert NO_CHANGE in again.stderr
    for part in ("district", "grid", "stations", "officers", "patrols"):
        assert f"{part}: no change against the current version" in again.stderr
    http = demo_client.get("/v1/datasets/1/export.gpkg")
    assert http.status_code == 200 and http.headers["content-type"].startswith(
        "application/geopackage+sqlite3"
    )
    via_http = tmp_path / "http.gpkg"
    via_http.write_bytes(http.content)
    assert [n for n, _ in pyogrio.list_layers(via_http)] == [n for n, _ in pyogrio.list_layers(out)]
    assert metadata_of(via_http)[BASE_KEY] == "1"
    assert demo_client.get("/v1/datasets/99/export.gpkg").status_code == 404
    assert demo_client.get("/v1/datasets/99999999999/export.gpkg").status_code == 422


def _shared_edge(grids: gpd.GeoDataFrame) -> tuple[int, int, np.ndarray, np.ndarray]:
    """Two grids of one large grid sharing an edge: their rows and the edge's two ends."""
    for _, group in grids.groupby("parent_code"):
        rows = list(group.index)
        for i in rows:
            ring = np.asarray(grids.geometry[i].geoms[0].exterior.coords)
            for j in rows:
                if j <= i:
                    continue
                theirs = {tuple(p) for p in shapely.get_coordinates(grids.geometry[j]).tolist()}
                for k in range(len(ring) - 1):
                    if tuple(ring[k]) in theirs and tuple(ring[k + 1]) in theirs:
                        return i, j, ring[k], ring[k + 1]
    raise AssertionError("no two grids of one large grid share an edge")


def _bend(geom: MultiPolygon, p: np.ndarray, q: np.ndarray, to: np.ndarray) -> MultiPolygon:
    """The polygon with a vertex ``to`` inserted between ``p`` and ``q``."""
    first = geom.geoms[0]
    ring = np.asarray(first.exterior.coords).tolist()
    out = []
    for a, b in itertools.pairwise(ring):
        out.append(a)
        if {tuple(a), tuple(b)} == {tuple(p), tuple(q)}:
            out.append(list(to))
    out.append(ring[-1])
    polygon = Polygon(out, [hole.coords for hole in first.interiors])
    return MultiPolygon([polygon, *list(geom.geoms)[1:]])


def test_one_edit_publishes_only_itself_with_before_and_after(
    demo_settings, demo_client, tmp_path
) -> None:
    """Two neighbouring grids get a new shared vertex 5 m off their edge in the layer's
    GeoJSON (8 decimals): only they change, their rounded vertices are snapped back, and
    the diff holds both geometries."""
    geojson = tmp_path / "grid.geojson"
    geojson.write_bytes(demo_client.get("/v1/layers/grid").content)
    grids = gpd.read_file(geojson)
    i, j, p, q = _shared_edge(grids)
    to = (p + q) / 2 + np.array([4e-5, 3e-5])
    edited = [grids.code[i], grids.code[j]]
    for row in (i, j):
        grids.loc[row, "geometry"] = _bend(grids.geometry[row], p, q, to)
    grids.to_file(geojson, driver="GeoJSON")
    result = run_cli("etl", "boundaries", str(geojson), "--layer", "grid", settings=demo_settings)
    assert result.returncode == 0, result.stderr
    assert "2,554 grids equal to the current ones" in result.stderr
    assert "snapped" in result.stderr and "of 2 grids" in result.stderr
    assert "published dataset version 2" in result.stderr
    diff = run_cli("diff", "1", "2", "--json", "--out", str(tmp_path / "d.gpkg"),
                   settings=demo_settings)  # fmt: skip
    assert diff.returncode == 0, diff.stderr
    layers = json.loads(diff.stdout)["layers"]
    assert list(layers) == ["grid"] and layers["grid"]["geometry"] == sorted(edited)
    assert layers["grid"]["attributes"] == []
    after = pyogrio.read_dataframe(tmp_path / "d.gpkg", layer="grid")
    before = pyogrio.read_dataframe(tmp_path / "d.gpkg", layer="grid_before")
    assert sorted(after["code"]) == sorted(before["code"]) == sorted(edited)
    was = gpd.read_file(tmp_path / "d.gpkg", layer="grid_before").set_index("code")
    for code in edited:
        new_vertex = shapely.points(to)
        assert shapely.distance(after.set_index("code").geometry[code], new_vertex) < 1e-7
        assert shapely.distance(was.geometry[code].boundary, new_vertex) > 1e-5
    # every vertex but the new one is the stored one, bit for bit
    engine = sa.create_engine(demo_settings.sqlalchemy_url())
    with engine.connect() as conn:
        stored, published = (
            features_at(conn, "grid", version).set_index("code").geometry[edited]
            for version in (1, 2)
        )
    engine.dispose()
    for code in edited:
        old = {tuple(c) for c in shapely.get_coordinates(stored[code]).tolist()}
        new = [tuple(c) for c in shapely.get_coordinates(published[code]).tolist()]
        assert sum(c not in old for c in new) == 1  # the new vertex; the rest as stored
        assert shapely.coverage_is_valid(np.array(list(published.values)))


def test_a_rename_round_trip_through_a_shapefile_changes_one_name(
    demo_settings, demo_client, tmp_path
) -> None:
    geojson = tmp_path / "grid.geojson"
    geojson.write_bytes(demo_client.get("/v1/layers/grid").content)
    grids = gpd.read_file(geojson)
    grids.loc[7, "name"] = "改名网格"
    grids.to_file(geojson, driver="GeoJSON")
    shp = tmp_path / "shp" / "grid.shp"
    shp.parent.mkdir()
    _run("ogr2ogr", "-f", "ESRI Shapefile", str(shp), str(geojson), "-t_srs", "EPSG:4547",
         "-lco", "ENCODING=GBK")  # fmt: skip
    result = run_cli("etl", "boundaries", str(shp), "--layer", "grid", settings=demo_settings)
    assert result.returncode == 0, result.stderr
    layers = json.loads(run_cli("diff", "1", "2", "--json", settings=demo_settings).stdout)
    assert layers["layers"]["grid"] == {
        "added": [],
        "removed": [],
        "geometry": [],
        "attributes": [grids.code[7]],
    }


def test_a_merge_built_from_exported_files_goes_live(demo_settings, demo_client, tmp_path):
    """Units and large grids as /v1/layers GeoJSON (rounded to 8 decimals), stations and
    officers from the export: the merge is published and dispatch sees it."""
    out = tmp_path / "v1.gpkg"
    assert run_cli("export", str(out), settings=demo_settings).returncode == 0
    layer = {
        name: gpd.read_file(json.dumps(demo_client.get(f"/v1/layers/{name}").json()))
        for name in ("unit", "large_grid")
    }
    stations = gpd.read_file(out, layer="stations")
    officers = pyogrio.read_dataframe(out, layer="officers").fillna("")
    keep, gone = neighbouring_villages(layer["unit"])
    merge = merge_units(tmp_path / "merge", layer["unit"], layer["large_grid"], stations,
                        officers, keep, gone)  # fmt: skip
    result = run_cli("etl", "bundle", str(merge.folder), settings=demo_settings)
    assert result.returncode == 0, result.stderr
    assert f"unit {gone} merged into {keep}" in result.stderr
    assert "published dataset version 2" in result.stderr
    engine = sa.create_engine(demo_settings.sqlalchemy_url())
    with engine.connect() as conn:
        codes = set(conn.execute(sa.text("SELECT code FROM geoservice.current_unit")).scalars())
        phones = conn.execute(
            sa.text("SELECT count(*) FROM geoservice.current_officer WHERE phone IS NOT NULL")
        ).scalar_one()
    engine.dispose()
    assert gone not in codes and keep in codes and len(codes) == 215
    assert phones == 570  # an export has no phone numbers: loading it keeps them


def test_a_stale_bundle_is_merged_or_refused_naming_its_conflicts(
    demo_files, demo_settings, tmp_path
) -> None:
    out = tmp_path / "v1.gpkg"
    assert run_cli("export", str(out), settings=demo_settings).returncode == 0
    revisions = write_revisions(demo_files, tmp_path / "revisions")
    merged = run_cli("etl", "bundle", str(revisions["merge"].folder), settings=demo_settings)
    assert merged.returncode == 0, merged.stderr  # version 2: a merge
    keep = revisions["merge"].summary.split()[-1]
    # the v1 export, edited elsewhere: merged with the merge, which it knows nothing of
    grids = gpd.read_file(out, layer="grid")
    grids.loc[3, "name"] = "改名网格"
    pyogrio.write_dataframe(grids, out, layer="grid", layer_options={"OVERWRITE": "YES"})
    assert metadata_of(out)[BASE_KEY] == "1"
    rename = run_cli("etl", "bundle", str(out), "--dry-run", settings=demo_settings)
    assert rename.returncode == 0, rename.stderr
    assert "made from version 1" in rename.stderr
    assert "kept as published" in rename.stderr and keep in rename.stderr
    # the same export also renaming the unit the merge changed: a conflict, named
    units = gpd.read_file(out, layer="unit")
    units.loc[units["code"] == keep, "name"] = "改名社区"
    pyogrio.write_dataframe(units, out, layer="unit", layer_options={"OVERWRITE": "YES"})
    conflict = run_cli("etl", "bundle", str(out), settings=demo_settings)
    assert conflict.returncode == 2
    assert f"unit '{keep}' changed both in this bundle and since version 1" in conflict.stderr
    # a folder made from version 1 (no metadata): refused as a revert, then merged with --base
    split = revisions["split"].folder
    stale = run_cli("etl", "bundle", str(split), "--dry-run", settings=demo_settings)
    assert stale.returncode == 2
    assert f"unit '{keep}' would be put back as it was in version 1" in stale.stderr
    assert "pass --base 1" in stale.stderr
    based = run_cli("etl", "bundle", str(split), "--base", "1", settings=demo_settings)
    assert based.returncode == 0, based.stderr
    assert "published dataset version 3" in based.stderr
    engine = sa.create_engine(demo_settings.sqlalchemy_url())
    with engine.connect() as conn:
        codes = set(conn.execute(sa.text("SELECT code FROM geoservice.current_unit")).scalars())
    engine.dispose()
    assert revisions["merge"].retired[0] not in codes  # the merge stays
    assert len(codes) == 216  # and the split is in


def test_a_strip_along_the_parent_edge_is_named_as_a_gap(demo_files, demo_readonly, tmp_path):
    grids = gpd.read_file(demo_files.boundaries, layer="grid")
    large = gpd.read_file(demo_files.boundaries, layer="large_grid").set_index("code")
    row = 10
    strip = shapely.buffer(large.geometry[grids.parent_code[row]].boundary, 20 / 111_000)
    cut = shapely.difference(grids.geometry[row], strip)
    grids.loc[row, "geometry"] = cut if isinstance(cut, MultiPolygon) else MultiPolygon([cut])
    path = tmp_path / "grid.gpkg"
    grids.to_file(path, layer="grid")
    for extra in ((), ("--repair",)):
        result = run_cli(
            "etl", "boundaries", str(path), "--layer", "grid", "--dry-run", *extra,
            settings=demo_readonly,
        )  # fmt: skip
        assert result.returncode == 2
        assert f"in large grid '{grids.parent_code[row]}' covered by no grid" in result.stderr
        assert f"'{grids.code[row]}'" in result.stderr.split("covered by no grid")[1]
        assert "does not match its neighbour's" not in result.stderr


def test_what_a_technician_gets_wrong_is_named(demo_readonly, tmp_path) -> None:
    out = tmp_path / "v1.gpkg"
    assert run_cli("export", str(out), settings=demo_readonly).returncode == 0
    truncated = tmp_path / "truncated.gpkg"
    truncated.write_bytes(out.read_bytes()[:300_000])
    for args in (
        ("boundaries", str(truncated), "--layer", "grid", "--layer-name", "grid"),
        ("bundle", str(truncated)),
    ):
        result = run_cli("etl", *args, "--dry-run", settings=demo_readonly)
        assert result.returncode == 2
        assert f"{truncated}: not a readable GPKG file" in result.stderr, result.stderr
        assert "internal error" not in result.stderr
    shp = tmp_path / "shp" / "grid.shp"
    shp.parent.mkdir()
    _run("ogr2ogr", "-f", "ESRI Shapefile", str(shp), str(out), "grid")
    shp.with_suffix(".dbf").unlink()
    result = run_cli("etl", "boundaries", str(shp), "--layer", "grid", settings=demo_readonly)
    assert result.returncode == 2
    assert "its .dbf file (the attributes) is missing" in result.stderr


def test_a_foreign_extract_needs_replace_network(demo_readonly) -> None:
    from tests.conftest import FIXTURES

    extract = str(FIXTURES / "osm" / "shenzhen_longgang.osm")
    far = run_cli("etl", "roads", extract, "--dry-run", settings=demo_readonly)
    assert far.returncode == 2
    assert "lies 21 km from Huicheng District at its nearest" in far.stderr
    assert "OSM data is always WGS84" in far.stderr and "--crs" not in far.stderr
    small = run_cli("etl", "roads", extract, "--allow-outside", "--dry-run",
                    settings=demo_readonly)  # fmt: skip
    assert small.returncode == 2
    assert "this network has 731 edges, the current one 102,982" in small.stderr
    assert "--replace-network" in small.stderr
    meant = run_cli("etl", "roads", extract, "--allow-outside", "--replace-network",
                    "--dry-run", settings=demo_readonly)  # fmt: skip
    assert meant.returncode == 0, meant.stderr


def test_tolerance_is_checked_and_zero_keeps_nothing(demo_readonly, demo_client, tmp_path):
    geojson = tmp_path / "town.geojson"
    geojson.write_bytes(demo_client.get("/v1/layers/town").content)
    bad = run_cli("etl", "boundaries", str(geojson), "--layer", "town", "--tolerance-m", "-1",
                  "--dry-run", settings=demo_readonly)  # fmt: skip
    assert bad.returncode == 2 and "--tolerance-m" in bad.stderr
    exact = run_cli("etl", "boundaries", str(geojson), "--layer", "town", "--tolerance-m", "0",
                    "--dry-run", settings=demo_readonly)  # fmt: skip
    assert NO_CHANGE not in exact.stderr  # 8 decimals are not the stored coordinates
