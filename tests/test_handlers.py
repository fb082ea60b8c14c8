"""The registry of worker handlers: where each heavy route runs, declared once.

A handler travels to a worker by name (pickling it gives its module and attribute, never
code), waits in its declared lane, and dispatch work on another version than the current
one waits as analysis. Routes never build a ``Task`` themselves: they ``ask`` a handler.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from geoservice.server import handlers
from geoservice.server.workers import Handler, Lane, Reads, named_handler

ROUTES = Path(handlers.__file__).parent / "routes"
REGISTERED = {name: h for name, h in vars(handlers).items() if isinstance(h, Handler)}


def test_every_heavy_answer_is_a_named_handler_in_its_lane():
    lanes = {name: h.lane for name, h in REGISTERED.items()}
    assert lanes == {
        "ready": Lane.CONTROL,
        "locate_one": Lane.DISPATCH,
        "locate_batch": Lane.DISPATCH,
        "isochrone_bands": Lane.DISPATCH,
        "dispatch": Lane.DISPATCH,
        "coverage_live": Lane.ANALYSIS,
        "coverage_officers": Lane.ANALYSIS,
        "coverage_response": Lane.ANALYSIS,
        "coverage_grids": Lane.ANALYSIS,
        "coverage_scenario": Lane.ANALYSIS,
        "layer_features": Lane.ANALYSIS,
        "dataset_diff": Lane.ANALYSIS,
        "dataset_export": Lane.ANALYSIS,
        "grids_propose": Lane.ANALYSIS,
        "ogc_items": Lane.ANALYSIS,
        "ogc_item": Lane.ANALYSIS,
        "record_events": Lane.ANALYSIS,
        "report": Lane.ANALYSIS,
    }
    for name, h in REGISTERED.items():
        assert h.name == name
        wire = pickle.dumps(h)
        assert b"geoservice.server.handlers" in wire and len(wire) < 200
        assert pickle.loads(wire) is h


def test_dispatch_work_on_an_old_version_waits_as_analysis():
    assert handlers.locate_batch.lane_for(current=True) == Lane.DISPATCH
    assert handlers.locate_batch.lane_for(current=False) == Lane.ANALYSIS
    assert handlers.coverage_response.lane_for(current=True) == Lane.ANALYSIS
    assert handlers.ready.lane_for(current=False) == Lane.CONTROL


def test_what_is_not_a_handler_is_not_run():
    with pytest.raises(TypeError, match=r"geoservice.server.handlers.JSON is not a worker"):
        named_handler("geoservice.server.handlers", "JSON")
    assert handlers.dataset_export.reads is Reads.RESOURCES
    assert handlers.dispatch.reads is Reads.STATE


def test_routes_ask_handlers_and_never_build_tasks():
    for path in ROUTES.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "Task(" not in text and "pool.submit" not in text, path.name
