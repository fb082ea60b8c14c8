"""Dataset-version primitives: publish, snapshots shared between versions, rollback, atomicity."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from geoservice import datasets
from geoservice.errors import InvalidInput, NotFound
from geoservice.models import officer


def _officers(*codes: str):
    def write(conn: sa.Connection, snapshot_id: int) -> int:
        conn.execute(
            sa.insert(officer),
            [
                {"snapshot_id": snapshot_id, "code": code, "name": f"officer {code}"}
                for code in codes
            ],
        )
        return len(codes)

    return write


def _current_officers(engine) -> list[str]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT code FROM geoservice.current_officer ORDER BY code"))
        return [code for (code,) in rows]


def test_publish_makes_a_new_current_version_and_keeps_the_old(engine) -> None:
    src = datasets.Source(layer="officers", path="a.csv", sha256="aa")
    first = datasets.publish(engine, {"officers": _officers("A", "B")}, sources=[src], note="one")
    second = datasets.publish(engine, {"officers": _officers("C")}, sources=[src], note="two")
    assert second == first + 1
    assert _current_officers(engine) == ["C"]
    with engine.connect() as conn:
        versions = datasets.list_versions(conn)
    assert [(v.id, v.current, v.note, v.parent_id) for v in versions] == [
        (first, False, "one", None),
        (second, True, "two", first),
    ]
    assert versions[0].sources == [{"layer": "officers", "path": "a.csv", "sha256": "aa"}]

    datasets.rollback(engine, first)
    assert _current_officers(engine) == ["A", "B"]


def test_versions_share_snapshots_of_unchanged_layers(engine) -> None:
    datasets.publish(engine, {"officers": _officers("A")}, sources=[])
    datasets.publish(engine, {"stations": lambda conn, snapshot_id: 0}, sources=[])
    with engine.connect() as conn:
        first, second = datasets.list_versions(conn)
    assert second.layers["officers"] == first.layers["officers"]
    assert set(second.layers) == {"officers", "stations"}


def test_a_failure_mid_publish_leaves_the_previous_version_current(engine) -> None:
    datasets.publish(engine, {"officers": _officers("A")}, sources=[])

    def explode(conn: sa.Connection, snapshot_id: int) -> int:
        _officers("X", "Y")(conn, snapshot_id)
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        datasets.publish(engine, {"officers": explode}, sources=[])
    assert _current_officers(engine) == ["A"]
    with engine.connect() as conn:
        assert [v.id for v in datasets.list_versions(conn)] == [1]
        assert conn.execute(sa.text("SELECT count(*) FROM geoservice.officer")).scalar() == 1


def test_rollback_to_an_unknown_version_names_it(engine) -> None:
    datasets.publish(engine, {"officers": _officers("A")}, sources=[])
    with pytest.raises(
        NotFound, match=r"dataset version 7 does not exist; published versions: \[1\]"
    ):
        datasets.rollback(engine, 7)


def test_unknown_layer_is_refused(engine) -> None:
    with pytest.raises(InvalidInput, match="unknown layer"):
        datasets.publish(engine, {"parks": lambda conn, snapshot_id: 0}, sources=[])


def test_publish_and_rollback_notify_listeners(engine, conninfo) -> None:
    import psycopg

    with psycopg.connect(conninfo, autocommit=True) as listener:
        listener.execute("LISTEN geoservice_dataset")
        first = datasets.publish(engine, {"officers": _officers("A")}, sources=[])
        datasets.rollback(engine, first)
        payloads = [n.payload for n in listener.notifies(timeout=2.0, stop_after=2)]
    assert payloads == [str(first), str(first)]
