"""Read GIS files into GeoDataFrames in WGS84, with the CRS rules of the contract."""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import NoReturn

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from geoservice.crs import CRS_HELP, InputCRS, parse_crs
from geoservice.errors import InvalidInput

VECTOR_SUFFIXES = (".geojson", ".json", ".shp", ".gpkg", ".csv")
LON_LAT_COLUMNS = (("lon", "lat"), ("lng", "lat"), ("longitude", "latitude"), ("x", "y"))
WKT_COLUMNS = ("wkt", "geometry", "geom")


def require_file(path: Path, suffixes: tuple[str, ...]) -> None:
    if not path.is_file():
        msg = f"{path}: no such file"
        raise InvalidInput(msg)
    name = path.name.lower()
    if not name.endswith(suffixes):
        msg = f"{path}: unsupported file type; expected one of {', '.join(suffixes)}"
        raise InvalidInput(msg)


def read_table(path: Path, encoding: str | None = None) -> pd.DataFrame:
    """A CSV as text columns: UTF-8 (with or without BOM) unless ``encoding`` says (GBK …)."""
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, encoding=encoding or "utf-8-sig")
    except LookupError:
        msg = f"--encoding {encoding!r} is not an encoding Python knows (e.g. gbk, gb18030)"
        raise InvalidInput(msg) from None
    except UnicodeDecodeError as exc:
        used = encoding or "UTF-8"
        hint = "" if encoding else "; if it is GBK (common from Excel), pass --encoding gbk"
        msg = f"{path}: not {used} text ({exc.reason} at byte {exc.start}){hint}"
        raise InvalidInput(msg) from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        msg = f"{path}: not a readable CSV: {exc}"
        raise InvalidInput(msg) from None


def read_vector(
    path: Path,
    *,
    crs: str | None = None,
    layer_name: str | None = None,
    encoding: str | None = None,
) -> gpd.GeoDataFrame:
    """Features of a GeoJSON, Shapefile, GeoPackage or CSV file, converted to WGS84.

    The CRS comes from the file (``.prj``, GeoPackage SRS, GeoJSON) unless ``crs``
    overrides it; a file that states none and no ``crs`` is refused.
    """
    require_file(path, VECTOR_SUFFIXES)
    input_crs = parse_crs(crs) if crs else None
    if path.suffix.lower() == ".csv":
        frame = _read_csv_features(path, encoding)
    else:
        frame = _read_ogr(path, layer_name=layer_name, encoding=encoding)
    if input_crs is None:
        input_crs = _crs_of(frame, path)
    frame = frame.set_crs(None, allow_override=True) if frame.crs is not None else frame
    geoms = frame.geometry.values
    frame = gpd.GeoDataFrame(
        frame.drop(columns=frame.geometry.name),
        geometry=gpd.GeoSeries(to_wgs84(np.asarray(geoms), input_crs)),
        crs="EPSG:4326",
    )
    frame.attrs["source_crs"] = input_crs.name
    return frame


def to_wgs84(geoms: np.ndarray, crs: InputCRS) -> np.ndarray:
    """Geometries converted from ``crs`` to WGS84 lon/lat (vectorised over all coordinates)."""
    if crs.name == "wgs84" or crs.epsg == 4490:
        return geoms

    def convert(xy: np.ndarray) -> np.ndarray:
        return np.column_stack(crs.to_wgs84(xy[:, 0], xy[:, 1]))

    return shapely.transform(geoms, convert)


def _crs_of(frame: gpd.GeoDataFrame, path: Path) -> InputCRS:
    if frame.crs is None:
        msg = f"{path}: the file does not state its CRS (no .prj or SRS); pass --crs ({CRS_HELP})"
        raise InvalidInput(msg)
    epsg = frame.crs.to_epsg(min_confidence=70)
    if epsg is None and frame.crs.is_geographic:
        epsg = 4326  # e.g. OGC:CRS84, lon/lat order
    if epsg is None:
        msg = f"{path}: its CRS has no EPSG code ({frame.crs.name}); pass --crs ({CRS_HELP})"
        raise InvalidInput(msg)
    return parse_crs(f"EPSG:{epsg}")


SHAPEFILE_PARTS = {".shx": "the index", ".dbf": "the attributes"}


def layers_of(path: Path) -> list[str]:
    """The layer names of a GIS file; a file GDAL cannot open is refused, naming it."""
    try:
        return [str(name) for name, _ in pyogrio.list_layers(path)]
    except pyogrio.errors.DataSourceError as exc:
        _unreadable(path, exc)


def metadata_of(path: Path) -> dict[str, str]:
    """The dataset metadata of a GIS file (a GeoPackage's ``base_version``, …)."""
    try:
        return dict(pyogrio.read_info(path, layer=0).get("dataset_metadata") or {})
    except pyogrio.errors.DataSourceError as exc:
        _unreadable(path, exc)


def _unreadable(path: Path, exc: Exception) -> NoReturn:
    reason = str(exc).split(": ")[-1].split(";")[0].strip() or "GDAL cannot open it"
    hint = " Is the file complete (copied or downloaded whole)?" if "malformed" in reason else ""
    msg = (
        f"{path}: not a readable {path.suffix.lstrip('.').upper() or 'GIS'} file ({reason}).{hint}"
    )
    raise InvalidInput(msg)


def _check_shapefile_parts(path: Path) -> None:
    present = {p.suffix.lower() for p in path.parent.glob(path.stem + ".*")}
    for suffix, what in SHAPEFILE_PARTS.items():
        if suffix not in present:
            msg = (
                f"{path}: its {suffix} file ({what}) is missing; a Shapefile is the .shp, .shx "
                "and .dbf files (and .prj, .cpg) side by side: copy them all"
            )
            raise InvalidInput(msg)


def _read_ogr(path: Path, *, layer_name: str | None, encoding: str | None) -> gpd.GeoDataFrame:
    if path.suffix.lower() == ".shp":
        _check_shapefile_parts(path)
    layers = layers_of(path)
    if layer_name is None and len(layers) > 1:
        msg = f"{path} holds {len(layers)} layers {layers}; choose one with --layer-name"
        raise InvalidInput(msg)
    if layer_name is not None and layer_name not in layers:
        msg = f"{path}: no layer {layer_name!r}; it holds {layers}"
        raise InvalidInput(msg)
    options: dict[str, object] = {"layer": layer_name or layers[0]}
    is_shapefile = path.suffix.lower() == ".shp"
    if is_shapefile:
        has_cpg = path.with_suffix(".cpg").exists() or path.with_suffix(".CPG").exists()
        options["encoding"] = encoding or (None if has_cpg else "UTF-8")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            frame = pyogrio.read_dataframe(path, **options)
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as exc:
        _unreadable(path, exc)
    except UnicodeDecodeError:
        _refuse_encoding(path, encoding)
    if is_shapefile and _looks_garbled(frame):
        _refuse_encoding(path, encoding)
    return frame


def _looks_garbled(frame: gpd.GeoDataFrame) -> bool:
    """Text decoded with the wrong encoding: replacement characters or Latin-1 debris."""
    for column in frame.columns:
        if frame[column].dtype == object and column != frame.geometry.name:
            text = "".join(str(v) for v in frame[column].dropna())
            if "\ufffd" in text or any("\u0080" <= ch <= "\u00ff" for ch in text):
                return True
    return False


def _refuse_encoding(path: Path, encoding: str | None) -> NoReturn:
    """Refuse text that was decoded with the wrong encoding instead of storing mojibake."""
    used = encoding or "UTF-8 (no .cpg file says otherwise)"
    hint = _guess_encoding(path)
    msg = f"{path}: the attribute text is not {used}: it would be stored garbled. {hint}"
    raise InvalidInput(msg)


def _guess_encoding(path: Path) -> str:
    dbf = path.with_suffix(".dbf")
    raw = dbf.read_bytes() if dbf.exists() else b""
    for candidate in ("gbk", "gb18030", "big5"):
        try:
            sample = raw[raw.find(b"\r") + 1 :].decode(candidate)
        except UnicodeDecodeError:
            continue
        cjk = [ch for ch in sample if "\u4e00" <= ch <= "\u9fff"]
        if cjk:
            shown = "".join(cjk[:6])
            return f"It decodes as {candidate.upper()} ({shown}…): pass --encoding {candidate}."
    return "Pass --encoding with the file's encoding (Chinese shapefiles are often GBK)."


def _read_csv_features(path: Path, encoding: str | None) -> gpd.GeoDataFrame:
    table = read_table(path, encoding)
    lower = {column.lower(): column for column in table.columns}
    for name in WKT_COLUMNS:
        if name in lower:
            column = lower[name]
            geoms = []
            for row, text in enumerate(table[column], start=2):
                try:
                    geoms.append(shapely.from_wkt(text) if text else None)
                except shapely.errors.GEOSException as exc:
                    msg = f"{path} line {row}: {column} {text[:40]!r} is not WKT: {exc}"
                    raise InvalidInput(msg) from None
            return gpd.GeoDataFrame(table.drop(columns=[column]), geometry=geoms)
    for x_name, y_name in LON_LAT_COLUMNS:
        if x_name in lower and y_name in lower:
            x = _numbers(table[lower[x_name]], path, lower[x_name])
            y = _numbers(table[lower[y_name]], path, lower[y_name])
            return gpd.GeoDataFrame(table, geometry=shapely.points(x, y))
    msg = (
        f"{path}: no geometry columns; expected a WKT column ({', '.join(WKT_COLUMNS)}) "
        f"or lon/lat columns ({', '.join('/'.join(p) for p in LON_LAT_COLUMNS)})"
    )
    raise InvalidInput(msg)


def _numbers(column: pd.Series, path: Path, name: str) -> np.ndarray:
    values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=float)
    for row, (text, value) in enumerate(zip(column, values, strict=True), start=2):
        if not math.isfinite(value):
            msg = f"{path} line {row}: {name} {text!r} is not a finite number"
            raise InvalidInput(msg)
    return values
