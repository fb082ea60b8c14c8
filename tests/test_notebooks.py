"""The notebooks run top to bottom against the demo database, and are stored clean."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def test_the_notebooks_are_there() -> None:
    assert [p.name for p in NOTEBOOKS] == [
        "coverage_analysis.ipynb",
        "grid_design.ipynb",
        "incident_planning.ipynb",
        "patrol_planning.ipynb",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_stored_without_outputs(path) -> None:
    book = nbformat.read(path, as_version=4)
    for cell in book.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_executes(path, demo_readonly, monkeypatch, tmp_path) -> None:
    url = demo_readonly.sqlalchemy_url().render_as_string(hide_password=False)
    monkeypatch.setenv("GEOSERVICE_DATABASE_URL", url)
    book = nbformat.read(path, as_version=4)
    NotebookClient(
        book, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    images = [
        output
        for cell in book.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if "image/png" in output.get("data", {})
    ]
    assert len(images) >= 2  # real maps, not tables
    errors = [
        o
        for c in book.cells
        if c.cell_type == "code"
        for o in c.outputs
        if o.output_type == "error"
    ]
    assert errors == []
    # no warning printed by the kernel: a glyph missing from the font, an empty layer plotted
    warned = [
        o["text"]
        for c in book.cells
        if c.cell_type == "code"
        for o in c.outputs
        if o.output_type == "stream" and o["name"] == "stderr" and "Warning" in o["text"]
    ]
    assert warned == []
