"""Loading the demo: the bundle GIS staff would load, published as one version."""

from __future__ import annotations

from etl.bundle import BundleOptions, bundle_steps
from etl.load import Step
from geoservice.synthetic import DemoFiles


def demo_steps(files: DemoFiles, *, allow_outside: bool = False) -> list[Step]:
    """The demo folder is a bundle: every file through its ETL step, in dependency order
    (``allow_outside`` for the scaled demo, whose copies lie beyond Huicheng)."""
    return bundle_steps(files.folder, BundleOptions(allow_outside=allow_outside))
