"""Loading the demo: the bundle GIS staff would load, published as one version."""

from __future__ import annotations

from etl.bundle import bundle_steps
from etl.load import Step
from geoservice.synthetic import DemoFiles


def demo_steps(files: DemoFiles) -> list[Step]:
    """The demo folder is a bundle: every file through its ETL step, in dependency order."""
    return bundle_steps(files.folder)
