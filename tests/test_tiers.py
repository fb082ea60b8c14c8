"""Every test has exactly one tier, and ``pytest -m unit`` selects only tests that need no
database: the suite collected by pytest itself, in a subprocess, with no PostgreSQL reachable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TIERS = ("unit", "db", "system", "browser", "cluster")

COLLECT = """
import json, sys
import pytest

TIERS = {tiers!r}


class Recorder:
    def __init__(self):
        self.selected, self.deselected = [], []

    def pytest_deselected(self, items):
        self.deselected.extend(items)

    def pytest_collection_finish(self, session):
        self.selected = list(session.items)


def row(item):
    return {{
        "id": item.nodeid,
        "tiers": [m.name for m in item.iter_markers() if m.name in TIERS],
        "fixtures": sorted(getattr(item, "fixturenames", ())),
    }}


recorder = Recorder()
code = pytest.main(
    ["--collect-only", "-q", "-p", "no:cacheprovider", "-m", "unit", "tests"],
    plugins=[recorder],
)
with open(sys.argv[1], "w") as out:
    json.dump(
        {{
            "code": int(code),
            "selected": [row(i) for i in recorder.selected],
            "deselected": [row(i) for i in recorder.deselected],
        }},
        out,
    )
"""


def test_every_test_has_one_tier_and_unit_tests_use_no_database(tmp_path):
    found = tmp_path / "collected.json"
    env = {**os.environ, "GEOSERVICE_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"}
    result = subprocess.run(
        [sys.executable, "-c", COLLECT.format(tiers=TIERS), str(found)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert found.exists(), result.stdout[-3000:] + result.stderr[-3000:]
    collected = json.loads(found.read_text())
    assert collected["code"] == 0, result.stdout[-3000:]
    selected, deselected = collected["selected"], collected["deselected"]
    everything = selected + deselected
    assert len(everything) > 500 and len(selected) > 50

    untiered = [(t["id"], t["tiers"]) for t in everything if len(t["tiers"]) != 1]
    assert not untiered, untiered[:10]
    tier = {t["id"]: t["tiers"][0] for t in everything}
    assert {t["id"] for t in selected} == {i for i, name in tier.items() if name == "unit"}
    assert set(tier.values()) == set(TIERS)

    # every test database is made by make_database: no unit test may reach it
    on_a_database = [t["id"] for t in selected if "make_database" in t["fixtures"]]
    assert not on_a_database, on_a_database[:10]
    assert all(tier[t["id"]] != "unit" for t in deselected if "make_database" in t["fixtures"])

    # what each tier means, on tests whose needs are known
    known = {
        "tests/test_crs.py::test_gcj02_inverse_is_exact": "unit",
        "tests/test_tiers.py::test_every_test_has_one_tier_and_unit_tests_use_no_database": "unit",
        "tests/test_dispatch_grade.py::test_an_uncovered_grid_never_shows_a_covered_time": "db",
        "tests/test_dispatch_grade.py::test_analysis_leaves_a_worker_for_dispatch_work": "system",
        "tests/test_ogc.py::test_landing_conformance_collections_and_html": "system",  # demo_client
        "tests/test_ogc.py::test_ogrinfo_lists_the_eight_collections": "system",  # serving()
        "tests/test_api_health.py::test_health_is_degraded_when_the_database_port_is_closed": (
            "system"
        ),
        "tests/test_map_page.py::test_the_page_asks_for_a_key_and_refuses_a_wrong_one": "browser",
        "tests/test_cluster.py::test_a_server_killed_the_balancer_routes_around_it": "cluster",
    }
    assert {test: tier.get(test) for test in known} == known
