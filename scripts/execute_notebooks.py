"""Execute the notebooks against the configured database (the demo) and save the executed
copies, outputs and figures included, under docs/notebooks/ for reading without Jupyter.

    .venv/bin/python scripts/execute_notebooks.py [NAME ...]
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]


def main(names: list[str]) -> None:
    out = ROOT / "docs" / "notebooks"
    out.mkdir(parents=True, exist_ok=True)
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        if names and path.stem not in names:
            continue
        book = nbformat.read(path, as_version=4)
        NotebookClient(book, timeout=900, kernel_name="python3").execute()
        nbformat.write(book, out / path.name)
        print(f"executed {path.name} -> {out / path.name}")


if __name__ == "__main__":
    main(sys.argv[1:])
