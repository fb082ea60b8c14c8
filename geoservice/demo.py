"""Loading the demo: the same ETL steps GIS staff run, published as one version."""

from __future__ import annotations

from collections.abc import Callable

from etl.boundaries import BoundaryOptions, prepare_boundaries
from etl.context import Context
from etl.load import LayerLoad
from etl.police import prepare_officers, prepare_patrols, prepare_stations
from etl.roads import prepare_roads
from geoservice.synthetic import DemoFiles


def demo_steps(files: DemoFiles) -> list[tuple[str, Callable[[Context], LayerLoad]]]:
    """Each file through its ETL command, in dependency order."""
    district = BoundaryOptions(layer="district", code_field="Code_County", name_field="Name_County")

    def layer(name: str) -> Callable[[Context], LayerLoad]:
        options = BoundaryOptions(layer=name, layer_name=name)
        return lambda ctx: prepare_boundaries(files.boundaries, options, ctx)

    return [
        ("district boundary", lambda ctx: prepare_boundaries(files.district, district, ctx)),
        ("towns", layer("town")),
        ("units", layer("unit")),
        ("large grids", layer("large_grid")),
        ("grids", layer("grid")),
        ("stations and posts", lambda ctx: prepare_stations(files.stations, ctx)),
        ("officers", lambda ctx: prepare_officers(files.officers, ctx)),
        ("patrol segments", lambda ctx: prepare_patrols(files.patrols, ctx)),
        ("roads", lambda ctx: prepare_roads(files.roads, ctx)),
    ]
