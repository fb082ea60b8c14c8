"""Boundary revisions as GIS staff make them: bundles (a merge, a split), code changes
reported, drafts promoted, version and time reads, diffs for QGIS, problems on the map,
GCJ-02 files caught, Shapefile and CSV realities."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from datetime import UTC, datetime

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from geoservice.server.app import create_app
from geoservice.synthetic.revisions import write_revisions
from tests.cli import run_cli
from tests.conftest import auth, row_counts


@pytest.fixture(scope="module")
def revisions(demo_files, tmp_path_factory):
    return write_revisions(demo_files, tmp_path_factory.mktemp("revisions"))


def _current(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT version_id FROM geoservice.current_dataset")).scalar()


def _inside(engine, unit: str, version: int) -> tuple[float, float]:
    """A point inside a unit of a version."""
    with engine.connect() as conn:
        return conn.execute(
            sa.text(
                "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p "
                "FROM geoservice.boundary WHERE code = :c "
                "AND snapshot_id = geoservice.snapshot_of(:v, 'unit')) q"
            ),
            {"c": unit, "v": version},
        ).one()


def test_a_merge_goes_live_as_one_version_and_old_versions_stay_readable(
    revisions, demo_settings, demo_engine
):
    merge = revisions["merge"]
    gone = merge.retired[0]
    keep = merge.summary.split()[-1]
    before = _current(demo_engine)
    dry = run_cli("etl", "bundle", str(merge.folder), "--dry-run", settings=demo_settings)
    assert dry.returncode == 0, dry.stderr
    assert f"unit {gone} merged into {keep}: " in dry.stderr
    assert "2 large grids" in dry.stderr and "3 officers" in dry.stderr
    published_at = datetime.now(UTC)
    time.sleep(0.05)
    result = run_cli(
        "etl",
        "bundle",
        str(merge.folder),
        "--by",
        "张工",
        "--note",
        "撤村并居",
        settings=demo_settings,
    )
    assert result.returncode == 0, result.stderr
    after = _current(demo_engine)
    assert after == before + 1  # one version for the four layers
    with demo_engine.connect() as conn:
        changed = {
            s["layer"]
            for s in conn.execute(
                sa.text("SELECT sources FROM geoservice.dataset_version WHERE id = :v"),
                {"v": after},
            ).scalar_one()
        }
        entry = conn.execute(
            sa.text("SELECT detail FROM geoservice.audit_log WHERE version_id = :v"), {"v": after}
        ).scalar_one()
    assert changed == {"unit", "large_grid", "stations", "officers"}
    assert any(line.startswith(f"unit {gone} merged into {keep}") for line in entry["changes"])

    lon, lat = _inside(demo_engine, gone, before)
    params = {"lon": lon, "lat": lat}
    with TestClient(create_app(demo_settings)) as client:
        now = client.get("/v1/locate", params=params, headers=auth("dispatch")).json()
        assert now["dataset_version"] == after and now["unit"]["code"] == keep
        old = client.get(
            "/v1/locate", params={**params, "version": before}, headers=auth("planner")
        )
        assert old.status_code == 200, old.text
        assert old.json()["unit"]["code"] == gone and old.json()["dataset_version"] == before
        at = client.get(
            "/v1/locate", params={**params, "at": published_at.isoformat()}, headers=auth("planner")
        )
        assert at.json()["unit"]["code"] == gone
        batch = client.post(
            "/v1/locate",
            params={"version": before},
            headers=auth("planner"),
            json={"points": [[lon, lat]]},
        )
        assert batch.json()["results"][0]["unit"]["code"] == gone
        layers = client.get("/v1/layers/unit", params={"version": before}, headers=auth("planner"))
        assert gone in {f["id"] for f in layers.json()["features"]}
        officers = client.get(
            "/v1/coverage/officers", params={"version": before}, headers=auth("planner")
        ).json()
        assert officers["units_total"] == 216 and officers["dataset_version"] == before
        refused = client.get(
            "/v1/locate", params={**params, "version": before}, headers=auth("dispatch")
        )
        assert refused.status_code == 403 and "need 'planner'" in refused.json()["detail"]
        for bad, status, fragment in (
            ({"version": 999}, 404, "dataset version 999 does not exist"),
            ({"at": "1999-01-01T00:00:00+08:00"}, 404, "no dataset version was current"),
            ({"at": "yesterday"}, 422, "at"),
            ({"version": before, "at": published_at.isoformat()}, 422, "not both"),
        ):
            response = client.get("/v1/locate", params={**params, **bad}, headers=auth("planner"))
            assert response.status_code == status, (bad, response.text)
            assert fragment in response.json()["detail"]


def test_a_split_goes_live_as_one_version(revisions, demo_settings, demo_engine):
    split = revisions["split"]
    new = split.created[0]
    before = _current(demo_engine)
    result = run_cli("etl", "bundle", str(split.folder), settings=demo_settings)
    assert result.returncode == 0, result.stderr
    assert f"unit {new} created from " in result.stderr
    assert _current(demo_engine) == before + 1
    lon, lat = _inside(demo_engine, new, before + 1)
    located = run_cli("locate", str(lon), str(lat), settings=demo_settings)
    answer = json.loads(located.stdout)
    assert answer["unit"]["code"] == new and answer["post"]["code"] == f"PP{new}"
    assert answer["officers"]


def test_a_merge_without_its_officers_is_refused_naming_them(
    revisions, demo_settings, demo_engine, tmp_path
):
    merge = revisions["merge"]
    partial = tmp_path / "merge"
    shutil.copytree(merge.folder, partial)
    (partial / "officers.csv").unlink()
    before = row_counts(demo_engine)
    problems = tmp_path / "problems.gpkg"
    result = run_cli(
        "etl", "bundle", str(partial), "--problems", str(problems), settings=demo_settings
    )
    assert result.returncode == 2
    gone = merge.retired[0]
    assert f"unit '{gone}' is retired but 3 officers still name it: JY" in result.stderr
    assert "nothing was published" in result.stderr and "Traceback" not in result.stderr
    assert row_counts(demo_engine) == before
    found = pyogrio.read_dataframe(problems)
    assert any(gone in m for m in found["message"]) and found.geometry.notna().all()


def test_a_draft_is_invisible_to_dispatch_until_promoted(revisions, demo_settings, demo_engine):
    merge = revisions["merge"]
    before = _current(demo_engine)
    result = run_cli("etl", "bundle", str(merge.folder), "--draft", settings=demo_settings)
    assert result.returncode == 0, result.stderr
    draft = before + 1
    assert f"draft dataset version {draft}" in result.stderr
    assert _current(demo_engine) == before
    listed = json.loads(run_cli("datasets", "--json", settings=demo_settings).stdout)
    assert {v["id"]: v["status"] for v in listed}[draft] == "draft"
    gone = merge.retired[0]
    lon, lat = _inside(demo_engine, gone, before)
    with TestClient(create_app(demo_settings)) as client:
        params = {"lon": lon, "lat": lat}
        current = client.get("/v1/locate", params=params, headers=auth("dispatch")).json()
        assert current["dataset_version"] == before and current["unit"]["code"] == gone
        planned = client.get(
            "/v1/coverage/officers", params={"version": draft}, headers=auth("planner")
        ).json()
        assert planned["dataset_version"] == draft and planned["units_total"] == 215
        listing = client.get("/v1/datasets", headers=auth("planner")).json()
        assert next(v for v in listing if v["id"] == draft)["status"] == "draft"
        assert run_cli("rollback", str(draft), settings=demo_settings).returncode == 2
        promoted = run_cli("promote", str(draft), "--by", "审核员", settings=demo_settings)
        assert promoted.returncode == 0, promoted.stderr
        for _ in range(300):
            answer = client.get("/v1/locate", params=params, headers=auth("dispatch")).json()
            if answer["dataset_version"] == draft:
                break
            time.sleep(0.1)
        assert answer["dataset_version"] == draft and answer["unit"]["code"] != gone
    again = run_cli("promote", str(draft), settings=demo_settings)
    assert again.returncode == 2 and "is not a draft" in again.stderr
    entries = json.loads(run_cli("audit", "--json", settings=demo_settings).stdout)
    assert [e["action"] for e in entries[:2]] == ["promote", "draft"]
    assert entries[0]["actor"] == "审核员"


def test_a_draft_made_on_an_older_version_needs_force(revisions, demo_settings, demo_engine):
    run_cli("etl", "bundle", str(revisions["merge"].folder), "--draft", settings=demo_settings)
    draft = _current(demo_engine) + 1
    run_cli("etl", "bundle", str(revisions["split"].folder), settings=demo_settings)
    stale = run_cli("promote", str(draft), settings=demo_settings)
    assert stale.returncode == 2 and "would undo what was published since" in stale.stderr
    forced = run_cli("promote", str(draft), "--force", settings=demo_settings)
    assert forced.returncode == 0 and _current(demo_engine) == draft


def test_diff_as_json_geopackage_and_http(revisions, demo_settings, demo_engine, tmp_path):
    run_cli("etl", "bundle", str(revisions["merge"].folder), settings=demo_settings)
    b = _current(demo_engine)
    out = tmp_path / "changes.gpkg"
    result = run_cli("diff", "1", str(b), "--json", "--out", str(out), settings=demo_settings)
    assert result.returncode == 0, result.stderr
    diff = json.loads(result.stdout)
    gone = revisions["merge"].retired[0]
    assert diff["layers"]["unit"]["removed"] == [gone]
    assert len(diff["layers"]["unit"]["geometry"]) == 1
    assert len(diff["layers"]["large_grid"]["attributes"]) == 2
    assert diff["layers"]["stations"]["removed"] == [f"PP{gone}"]
    assert set(diff["layers"]) == {"unit", "large_grid", "stations", "officers"}
    info = subprocess.run(["ogrinfo", "-q", str(out)], capture_output=True, text=True, check=True)
    for layer in ("unit", "large_grid", "stations", "officers"):
        assert layer in info.stdout
    units = subprocess.run(
        ["ogrinfo", "-q", str(out), "unit"], capture_output=True, text=True, check=True
    ).stdout
    assert "change (String) = removed" in units and "change (String) = geometry" in units
    assert (
        "phone"
        not in subprocess.run(
            ["ogrinfo", "-q", str(out), "officers"], capture_output=True, text=True
        ).stdout
    )
    with TestClient(create_app(demo_settings), headers=auth("planner")) as client:
        assert client.get(f"/v1/datasets/1/diff/{b}").json() == diff
        assert client.get("/v1/datasets/1/diff/999").status_code == 404
        assert client.get("/v1/datasets/1/diff/1").json()["layers"] == {}
    same = run_cli("diff", str(b), str(b), settings=demo_settings)
    assert "hold the same data" in same.stdout


def test_problems_are_written_where_they_are(broken, demo_settings, tmp_path):
    """One layer per geometry type (QGIS wants one), each problem with layer, code, kind
    and message, and a geometry to zoom to."""
    out = tmp_path / "problems.gpkg"
    result = run_cli(
        "etl",
        "boundaries",
        str(broken["gap"]),
        "--layer",
        "grid",
        "--problems",
        str(out),
        settings=demo_settings,
    )
    assert result.returncode == 2 and f"written to {out}" in result.stderr
    found = pyogrio.read_dataframe(out, layer="problem_areas")
    gaps = found[found["kind"] == "gap"]
    assert len(gaps) >= 1 and gaps["message"].str.startswith("gap of").all()
    assert set(gaps.geometry.geom_type) == {"MultiPolygon"} and (gaps["layer"] == "grid").all()
    assert gaps["code"].notna().all()  # the large grid with the gap
    overlap = tmp_path / "overlap.gpkg"
    run_cli(
        "etl",
        "boundaries",
        str(broken["overlap"]),
        "--layer",
        "grid",
        "--problems",
        str(overlap),
        settings=demo_settings,
    )
    layers = {name: kind for name, kind in pyogrio.list_layers(overlap)}
    assert layers["problem_areas"] == "MultiPolygon"
    found = pyogrio.read_dataframe(overlap, layer="problem_areas")
    assert set(found.columns) == {"layer", "code", "kind", "message", "geometry"}
    overlaps = found[found["kind"] == "overlap"]
    assert overlaps["message"].str.contains("overlap by").all() and len(overlaps)
    info = subprocess.run(["ogrinfo", "-q", str(overlap)], capture_output=True, text=True)
    assert "problem_areas" in info.stdout


def test_every_problem_has_a_place_even_without_geometry_of_its_own(
    demo_files, demo_settings, tmp_path
):
    """A bad parent code and a missing name have no geometry of their own: the feature's."""
    grids = gpd.read_file(demo_files.boundaries, layer="grid")
    grids.loc[0, "parent_code"] = "44139999999999"
    grids.loc[1, "name"] = None
    path = tmp_path / "grid.gpkg"
    grids.to_file(path, layer="grid")
    out = tmp_path / "problems.gpkg"
    result = run_cli(
        "etl",
        "boundaries",
        str(path),
        "--layer",
        "grid",
        "--problems",
        str(out),
        settings=demo_settings,
    )
    assert result.returncode == 2
    found = pd.concat(
        [pyogrio.read_dataframe(out, layer=name) for name, _ in pyogrio.list_layers(out)]
    )
    bad = found[found["code"] == grids.code[0]]
    assert "bad_reference" in set(bad["kind"])
    assert bad.geometry.iloc[0].equals_exact(grids.geometry[0], 1e-9)
    nameless = found[found["code"] == grids.code[1]]
    assert set(nameless["kind"]) >= {"missing_value"} and not nameless.geometry.is_empty.any()
    assert found.geometry.notna().all() and not found.geometry.is_empty.any()


def test_a_gcj02_file_labelled_wgs84_is_refused_naming_the_crs(broken, demo_settings):
    result = run_cli(
        "etl",
        "boundaries",
        str(broken["gcj02_copy"]),
        "--layer",
        "town",
        "--dry-run",
        settings=demo_settings,
    )
    assert result.returncode == 2
    assert "GCJ-02 coordinates" in result.stderr and "--crs gcj02" in result.stderr
    ok = run_cli(
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
    assert ok.returncode == 0, ok.stderr


def test_csv_encodings_and_bom(demo_files, demo_settings, tmp_path):
    officers = pd.read_csv(demo_files.officers, dtype=str, keep_default_na=False)
    gbk = tmp_path / "officers_gbk.csv"
    officers.to_csv(gbk, index=False, encoding="gbk")
    refused = run_cli("etl", "officers", str(gbk), "--dry-run", settings=demo_settings)
    assert refused.returncode == 2 and "--encoding gbk" in refused.stderr
    loaded = run_cli(
        "etl", "officers", str(gbk), "--encoding", "gbk", "--dry-run", settings=demo_settings
    )
    assert loaded.returncode == 0, loaded.stderr
    bom = tmp_path / "officers_bom.csv"
    officers.to_csv(bom, index=False, encoding="utf-8-sig")
    assert run_cli("etl", "officers", str(bom), "--dry-run", settings=demo_settings).returncode == 0
    stations = gpd.read_file(demo_files.stations)
    csv = tmp_path / "stations.csv"
    pd.DataFrame(stations.drop(columns="geometry")).assign(
        lon=stations.geometry.x, lat=stations.geometry.y
    ).to_csv(csv, index=False, encoding="gbk")
    result = run_cli(
        "etl",
        "stations",
        str(csv),
        "--crs",
        "wgs84",
        "--encoding",
        "gbk",
        "--dry-run",
        settings=demo_settings,
    )
    assert result.returncode == 0, result.stderr


def test_a_geopackage_bundle_and_bad_bundles(revisions, demo_settings, demo_engine, tmp_path):
    merge = revisions["merge"].folder
    package = tmp_path / "merge.gpkg"
    for layer in ("unit", "large_grid", "stations"):
        gpd.read_file(merge / f"{layer}.geojson").to_file(package, layer=layer, driver="GPKG")
    officers = pd.read_csv(merge / "officers.csv", dtype=str, keep_default_na=False)
    pyogrio.write_dataframe(officers, package, layer="officers", driver="GPKG")
    result = run_cli("etl", "bundle", str(package), "--dry-run", settings=demo_settings)
    assert result.returncode == 0, result.stderr
    assert "merged into" in result.stderr
    odd = tmp_path / "odd"
    shutil.copytree(merge, odd)
    (odd / "towns.geojson").write_text("{}")
    for path, fragment in (
        (odd, "towns.geojson: not a part of a bundle; expected files named district"),
        (tmp_path / "nowhere", "no such folder or GeoPackage"),
    ):
        bad = run_cli("etl", "bundle", str(path), settings=demo_settings)
        assert bad.returncode == 2 and fragment in bad.stderr, bad.stderr
    twice = tmp_path / "twice"
    shutil.copytree(merge, twice)
    shutil.copy(merge / "unit.geojson", twice / "unit.json")
    bad = run_cli("etl", "bundle", str(twice), settings=demo_settings)
    assert bad.returncode == 2 and "two unit parts" in bad.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    bad = run_cli("etl", "bundle", str(empty), settings=demo_settings)
    assert bad.returncode == 2 and "holds no part" in bad.stderr
