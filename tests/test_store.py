"""The one reader of a dataset version's layers (``geoservice.store.VersionReader``).

Each placeholder must name exactly the rows the version's catalogue maps the layer to (the
oracle joins ``dataset_version_layer`` by hand, without ``snapshot_of``), at two versions
that differ; one reader sees one state of the database; and no module but the store (and
the migrations that define it) knows ``snapshot_of``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import sqlalchemy as sa

from geoservice.errors import NotFound
from geoservice.store import COLUMNS, SOURCES, VersionReader
from geoservice.synthetic.revisions import write_revisions
from tests.cli import run_cli

ROOT = Path(__file__).resolve().parents[1]
KEYS = {
    "officer_unit": "officer_code || '/' || unit_code",
    "road_node": "id::text",
    "road_edge": "id::text",
}


def _oracle(conn: sa.Connection, placeholder: str, version: int) -> list[tuple[str, str]]:
    """Key and geometry/attribute digest of the placeholder's rows, read by hand."""
    table, layer = SOURCES[placeholder]
    key = KEYS.get(placeholder, "code")
    return [
        tuple(row)
        for row in conn.execute(
            sa.text(
                f"SELECT {key}, md5(row_to_json(t)::text) FROM "
                f"(SELECT {COLUMNS.get(placeholder, '*')} FROM geoservice.{table} "
                "WHERE snapshot_id IN (SELECT snapshot_id FROM geoservice.dataset_version_layer "
                "WHERE version_id = :v AND layer = :layer)) t ORDER BY 1"
            ),
            {"v": version, "layer": layer},
        )
    ]


def _read(reader: VersionReader, placeholder: str) -> list[tuple[str, str]]:
    key = KEYS.get(placeholder, "code")
    rows = reader.all(
        f"SELECT {key}, md5(row_to_json(t)::text) FROM {{{placeholder}}} t ORDER BY 1"
    )
    return [tuple(row) for row in rows]


def test_placeholders_name_the_rows_of_each_version(
    demo_files, demo_settings, demo_engine, tmp_path
):
    merge = write_revisions(demo_files, tmp_path)["merge"]
    result = run_cli("etl", "bundle", str(merge.folder), settings=demo_settings)
    assert result.returncode == 0, result.stderr
    with demo_engine.connect() as conn:
        versions = conn.execute(
            sa.text("SELECT id FROM geoservice.dataset_version ORDER BY id")
        ).scalars()
        first, *_, last = list(versions)
    seen: dict[str, list[list[tuple[str, str]]]] = {}
    for version in (first, last):
        with VersionReader.open(demo_engine, version) as reader:
            assert reader.version == version
            for placeholder in SOURCES:
                rows = _read(reader, placeholder)
                assert rows == _oracle(reader.connection, placeholder, version), placeholder
                seen.setdefault(placeholder, []).append(rows)
    assert all(seen[name][0] for name in ("grid", "unit", "station", "officer", "road_edge"))
    assert seen["unit"][0] != seen["unit"][1]  # the merge retired a unit
    assert seen["road_edge"][0] == seen["road_edge"][1]  # roads were not revised
    with VersionReader.open(demo_engine) as reader:
        columns = reader.execute("SELECT * FROM {officer} o LIMIT 1").keys()
    assert "name" in columns and "phone" not in columns  # personal data is not read


def test_one_reader_sees_one_state(demo_engine):
    with VersionReader.open(demo_engine) as reader:
        before = reader.scalar("SELECT count(*) FROM {grid} g")
        with demo_engine.begin() as other:
            other.execute(
                sa.text(
                    "DELETE FROM geoservice.boundary WHERE snapshot_id = :s AND code IN "
                    "(SELECT code FROM geoservice.boundary WHERE snapshot_id = :s LIMIT 5)"
                ),
                {"s": reader.snapshot_id("grid")},
            )
        assert reader.scalar("SELECT count(*) FROM {grid} g") == before
    with VersionReader.open(demo_engine) as reader:
        assert reader.scalar("SELECT count(*) FROM {grid} g") == before - 5


def test_an_unknown_version_is_not_found(demo_engine):
    with (
        pytest.raises(NotFound, match="dataset version 99999 does not exist"),
        VersionReader.open(demo_engine, 99999),
    ):
        pass


def test_templates_keep_doubled_braces_and_refuse_unknown_placeholders():
    sql = VersionReader.sql("SELECT '{{}}'::json, g.code FROM {grid} g")
    assert sql.startswith("SELECT '{}'::json, g.code FROM (SELECT * FROM geoservice.boundary ")
    assert "geoservice.snapshot_of(:v, 'grid')" in sql
    with pytest.raises(ValueError, match=r"unknown placeholder \{grids\}; the known ones: ") as no:
        VersionReader.sql("SELECT 1 FROM {grids} g")
    assert "{grid}, " in str(no.value) and "{road_edge}" in str(no.value)


def test_only_the_store_knows_how_versions_map_to_snapshots():
    users = sorted(
        str(path.relative_to(ROOT))
        for folder in ("geoservice", "etl")
        for path in (ROOT / folder).rglob("*.py")
        if "snapshot_of" in path.read_text(encoding="utf-8") and "migrations" not in path.parts
    )
    assert users == ["geoservice/store.py"]
    readers = [
        str(path.relative_to(ROOT))
        for folder in ("geoservice", "etl")
        for path in (ROOT / folder).rglob("*.py")
        if re.search(r"FROM geoservice\.dataset_version_layer", path.read_text(encoding="utf-8"))
        and "migrations" not in path.parts
    ]
    assert readers == ["geoservice/store.py"]
