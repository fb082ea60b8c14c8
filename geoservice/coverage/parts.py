"""Coverage demand as a part of the state directory (``geoservice/state_files.py``): the
grids and their demand points on one network (shared by every version on the same grids,
towns and roads), written by ``demand_part`` and
mapped back by ``demand_from_part``, so that a process evaluates coverage without reading
the grids nor locating every road point again. The grids' polygons are not stored: they are
the locate index's (the same rows of ``{grid}`` in the same code order), taken from it."""

from __future__ import annotations

import numpy as np
import orjson
from numpy.typing import NDArray

from geoservice.coverage.demand import Demand, Grids
from geoservice.errors import InvalidInput
from geoservice.locate import LocateIndex
from geoservice.state_files import MappedPart, Part


def demand_part(grids: Grids, demand: Demand) -> Part:
    """``grids`` (but their polygons) and ``demand`` as arrays and metadata."""
    arrays = {
        "grid_codes": grids.codes.astype(str),
        "grid_labels": np.frombuffer(
            orjson.dumps({"names": grids.names.tolist(), "towns": grids.towns.tolist()}),
            dtype=np.uint8,
        ),
        "grid_population": grids.population,
        "grid_area_km2": grids.area_km2,
        "demand_grid": demand.grid,
        "demand_edge": demand.edge,
        "demand_fraction": demand.fraction,
        "demand_weight": demand.weight,
    }
    return Part(arrays)


def demand_from_part(built: MappedPart, index: LocateIndex) -> tuple[Grids, Demand]:
    """The grids and demand points of ``built`` (the demand's arrays mapped, none copied),
    checked to be ``index``'s grids, whose polygons they take."""
    codes = built["grid_codes"]
    if not np.array_equal(codes, index.codes):
        msg = f"state part {built.name} does not hold the grids of version {index.version}"
        raise InvalidInput(msg)
    labels = orjson.loads(built["grid_labels"].tobytes())
    grids = Grids(
        codes=np.asarray(codes),
        names=_objects(labels["names"]),
        towns=_objects(labels["towns"]),
        population=built["grid_population"],
        area_km2=built["grid_area_km2"],
        polygons=index.polygons,
    )
    demand = Demand(
        built["demand_grid"], built["demand_edge"], built["demand_fraction"], built["demand_weight"]
    )
    return grids, demand


def _objects(values: list[object]) -> NDArray[np.object_]:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out
