"""One dataset version as one GeoPackage bundle: the start of a revision.

``geoservice export [--version N] OUT.gpkg`` and ``GET /v1/datasets/{n}/export.gpkg``
write every feature layer of version N under its bundle name (``district``, ``town``,
``unit``, ``large_grid``, ``grid``, ``stations``, ``patrols``) with its stored
coordinates, unrounded, and the officers as a table without personal columns; the
GeoPackage's metadata says ``base_version`` = N, so ``geoservice etl bundle OUT.gpkg``
loads it back as "no change", and an edited copy is merged with what was published
since (``etl.merge``). Roads are not in it: a bundle's network comes from OSM files.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pyogrio
from sqlalchemy.engine import Engine

from geoservice.datasets import resolve_version
from geoservice.diff import FEATURE_LAYERS, features_at, officers_at
from geoservice.models import BOUNDARY_LAYERS

BASE_KEY = "base_version"
"""The GeoPackage metadata item naming the exported version (read by ``etl bundle``)."""
MEDIA_TYPE = "application/geopackage+sqlite3"


@dataclass(frozen=True)
class Exported:
    """What an export wrote: the version and each layer's feature count."""

    version: int
    layers: dict[str, int]


def export_version(engine: Engine, path: Path, version: int | None = None) -> Exported:
    """Write ``version`` (the current one when None) to the GeoPackage ``path``, replacing
    it. Raises ``NotFound`` for an unknown version."""
    with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn:
        version = resolve_version(conn, version)
        frames = {layer: features_at(conn, layer, version) for layer in FEATURE_LAYERS}
        officers = officers_at(conn, version).sort_values("code")
    path.unlink(missing_ok=True)
    metadata = {
        BASE_KEY: str(version),
        "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "exported_by": "geoservice",
    }
    counts: dict[str, int] = {}
    first = True
    for layer, frame in frames.items():
        if frame.empty:
            continue
        pyogrio.write_dataframe(
            frame,
            path,
            layer=layer,
            driver="GPKG",
            promote_to_multi=layer in BOUNDARY_LAYERS,
            **(creation_options(metadata) if first else {}),
        )
        first = False
        counts[layer] = len(frame)
    if not officers.empty:
        pyogrio.write_dataframe(
            pd.DataFrame(officers),
            path,
            layer="officers",
            driver="GPKG",
            **(creation_options(metadata) if first else {}),
        )
        counts["officers"] = len(officers)
    return Exported(version, counts)


def creation_options(metadata: dict[str, str]) -> dict[str, object]:
    """Options of the GeoPackage's first layer: its metadata, and version 1.2 (read by
    the GDAL of every QGIS in use)."""
    return {"dataset_metadata": metadata, "dataset_options": {"VERSION": "1.2"}}


def export_bytes(engine: Engine, version: int) -> bytes:
    """The GeoPackage of ``version`` as bytes (made in a temporary folder)."""
    with tempfile.TemporaryDirectory(prefix="geoservice-export-") as folder:
        path = Path(folder) / f"geoservice-v{version}.gpkg"
        export_version(engine, path, version)
        return path.read_bytes()
