"""``geoservice etl bundle PATH``: several layers published as one dataset version.

PATH is a folder holding any of ``district.*``, ``town.*``, ``unit.*``, ``large_grid.*``,
``grid.*``, ``stations.*``, ``patrols.*``, ``population.*`` (GeoJSON, GeoPackage or
Shapefile, with the fields the single-layer commands default to), ``officers.csv`` and
``roads.osm|.osm.bz2|.osm.pbf|.graphml`` — or one GeoPackage whose layers carry those
names (a GeoPackage in the folder under another name contributes its layers the same
way); folders inside it are not read. Each part is read and checked as its own command
would, in dependency order, each against the parts before it; then the rules across
layers are checked on the result.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from etl.boundaries import BoundaryOptions, prepare_boundaries
from etl.load import Step
from etl.police import prepare_officers, prepare_patrols, prepare_stations
from etl.population import prepare_population
from etl.readers import layers_of, metadata_of
from etl.roads import ROAD_SUFFIXES, prepare_roads
from geoservice.errors import InvalidInput
from geoservice.export import BASE_KEY
from geoservice.models import BOUNDARY_LAYERS

PARTS = (*BOUNDARY_LAYERS, "stations", "officers", "patrols", "population", "roads")
"""Every part a bundle may hold, in the order they are loaded."""
VECTOR_SUFFIXES = (".geojson", ".json", ".gpkg", ".shp", ".csv")
SIDECARS = (".dbf", ".shx", ".prj", ".cpg", ".qpj", ".qix", ".sbn", ".sbx", ".xml")
IGNORED = (".txt", ".md", "report.json")
"""Notes beside the parts (``report.json``: what ``geoservice grids propose`` found)."""


@dataclass(frozen=True)
class Part:
    layer: str
    path: Path
    layer_name: str | None = None  # the layer inside a GeoPackage


@dataclass(frozen=True)
class BundleOptions:
    crs: str | None = None
    encoding: str | None = None
    repair: bool = False
    allow_outside: bool = False
    replace_network: bool = False


def find_parts(path: Path) -> list[Part]:
    """The parts of a bundle folder or GeoPackage, in loading order."""
    if path.is_file() and path.suffix.lower() == ".gpkg":
        parts = _gpkg_parts(path)
    elif path.is_dir():
        parts = []
        for item in sorted(path.iterdir()):
            name = item.name.lower()
            if item.name.startswith(".") or name.endswith(SIDECARS + IGNORED) or item.is_dir():
                continue  # folders inside are not parts (events, notes, sources live there)
            layer = _layer_of(name)
            if layer is not None:
                parts.append(Part(layer, item, layer if name.endswith(".gpkg") else None))
            elif name.endswith(".gpkg"):
                parts += _gpkg_parts(item)
            else:
                msg = (
                    f"{item}: not a part of a bundle; expected files named "
                    f"{', '.join(PARTS)} (roads: {', '.join(ROAD_SUFFIXES)})"
                )
                raise InvalidInput(msg)
    else:
        msg = f"{path}: no such folder or GeoPackage"
        raise InvalidInput(msg)
    seen: dict[str, Part] = {}
    for part in parts:
        if part.layer in seen:
            first = seen[part.layer].path.name
            msg = f"bundle {path}: two {part.layer} parts, {first} and {part.path.name}"
            raise InvalidInput(msg)
        seen[part.layer] = part
    if not seen:
        msg = f"bundle {path} holds no part; expected any of {', '.join(PARTS)}"
        raise InvalidInput(msg)
    return [seen[layer] for layer in PARTS if layer in seen]


def bundle_base(path: Path) -> int | None:
    """The version a bundle was made from, as its GeoPackage(s) say (``geoservice
    export`` writes it), or None."""
    packages = [path] if path.is_file() else sorted(path.glob("*.gpkg")) if path.is_dir() else []
    found = set()
    for package in packages:
        metadata = metadata_of(package)
        if BASE_KEY in metadata:
            try:
                found.add(int(metadata[BASE_KEY]))
            except ValueError:
                msg = f"{package}: metadata {BASE_KEY}={metadata[BASE_KEY]!r} is not a version"
                raise InvalidInput(msg) from None
    if len(found) > 1:
        msg = f"bundle {path}: its GeoPackages were exported from versions {sorted(found)}"
        raise InvalidInput(msg)
    return found.pop() if found else None


def _layer_of(name: str) -> str | None:
    for layer in PARTS:
        suffixes = ROAD_SUFFIXES if layer == "roads" else VECTOR_SUFFIXES
        if any(name == layer + suffix for suffix in suffixes):
            return layer
    return None


def _gpkg_parts(path: Path) -> list[Part]:
    names = layers_of(path)
    parts = [Part(name, path, name) for name in names if name in PARTS and name != "roads"]
    if not parts:
        msg = f"{path}: no layer named {', '.join(PARTS[:-1])}; it holds {names}"
        raise InvalidInput(msg)
    return parts


def bundle_steps(path: Path, options: BundleOptions | None = None) -> list[Step]:
    """One ETL step per part of the bundle at ``path``."""
    options = options or BundleOptions()
    return [_step(part, options) for part in find_parts(path)]


def _step(part: Part, options: BundleOptions) -> Step:
    file, name = part.path, part.layer_name
    description = f"{part.layer} from {file.name}" + (f" ({name})" if name else "")
    if part.layer in BOUNDARY_LAYERS:
        boundary = BoundaryOptions(
            layer=part.layer,
            crs=options.crs,
            layer_name=name,
            encoding=options.encoding,
            repair=options.repair,
            allow_outside=options.allow_outside,
        )
        return Step(part.layer, description, lambda ctx: prepare_boundaries(file, boundary, ctx))
    if part.layer == "stations":
        return Step(
            part.layer,
            description,
            lambda ctx: prepare_stations(
                file,
                ctx,
                crs=options.crs,
                allow_outside=options.allow_outside,
                encoding=options.encoding,
                layer_name=name,
            ),
        )
    if part.layer == "patrols":
        return Step(
            part.layer,
            description,
            lambda ctx: prepare_patrols(
                file,
                ctx,
                crs=options.crs,
                allow_outside=options.allow_outside,
                encoding=options.encoding,
                layer_name=name,
            ),
        )
    if part.layer == "population":
        return Step(
            part.layer,
            description,
            lambda ctx: prepare_population(
                file,
                ctx,
                crs=options.crs,
                allow_outside=options.allow_outside,
                encoding=options.encoding,
                layer_name=name,
            ),
        )
    if part.layer == "officers":
        return Step(
            part.layer,
            description,
            lambda ctx: prepare_officers(file, ctx, encoding=options.encoding, layer_name=name),
        )
    return Step(
        part.layer,
        description,
        lambda ctx: prepare_roads(
            file,
            ctx,
            allow_outside=options.allow_outside,
            replace_network=options.replace_network,
        ),
    )
