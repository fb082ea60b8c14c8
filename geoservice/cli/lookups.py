"""``geoservice locate`` and ``geoservice isochrones``: one answer as JSON on stdout."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from geoservice.cli.base import (
    CrsOption,
    app,
)
from geoservice.db import (
    open_engine,
)
from geoservice.settings import Settings


@app.command()
def locate(
    lon: Annotated[str, typer.Argument(help="Longitude (or easting).")],
    lat: Annotated[str, typer.Argument(help="Latitude (or northing).")],
    crs: CrsOption = None,
) -> None:
    """One locate result as JSON on stdout (the same answer as GET /v1/locate)."""
    from geoservice.locate import build_index
    from geoservice.points import parse_point

    x, y = parse_point(lon, lat, crs)
    index = build_index(open_engine(Settings()))
    typer.echo(json.dumps(index.locate(x, y), ensure_ascii=False, indent=2))


@app.command()
def isochrones(
    lon: Annotated[str, typer.Argument(help="Longitude (or easting) of the origin.")],
    lat: Annotated[str, typer.Argument(help="Latitude (or northing) of the origin.")],
    minutes: Annotated[str, typer.Option(help="Band limits, each in (0, 60].")] = "1,3,5",
    crs: CrsOption = None,
    profile: Annotated[str, typer.Option(help="car, foot, or a profile .json file.")] = "car",
    buffer_m: Annotated[
        float, typer.Option(help="Band half-width around roads, m, in (0, 500].")
    ] = 30.0,
) -> None:
    """Isochrone bands as GeoJSON on stdout (the same answer as GET /v1/isochrones)."""
    import orjson

    from geoservice.bands import Bands
    from geoservice.isochrones import isochrones as bands
    from geoservice.network import load_network
    from geoservice.points import parse_point

    x, y = parse_point(lon, lat, crs)
    network = load_network(open_engine(Settings()), profile)
    result = bands(network, x, y, Bands.parse(minutes), buffer_m=buffer_m)
    typer.echo(orjson.dumps(result.to_geojson()).decode())
