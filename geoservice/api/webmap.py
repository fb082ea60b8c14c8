"""``/map``: the web map for dispatchers, planners and GIS staff (static files, no key needed;
every data request it makes carries the user's key)."""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, JSONResponse

from geoservice.synthetic.roads import DONGJIANG, XIZHIJIANG

router = APIRouter(tags=["map"])


@router.get("/map", response_class=HTMLResponse, include_in_schema=False)
def map_page() -> HTMLResponse:
    """The map page (``?lon=&lat=&zoom=`` centre it, ``#key=…`` hands it a key)."""
    page = resources.files("geoservice").joinpath("static/map/index.html").read_text("utf-8")
    return HTMLResponse(page, headers={"cache-control": "no-cache"})


@router.get("/map/rivers.geojson", include_in_schema=False)
def rivers() -> JSONResponse:
    """The Dongjiang and Xizhijiang as the demo draws them (synthetic courses)."""
    features = [
        {
            "type": "Feature",
            "properties": {"name": name, "note": "the demo's synthetic river course"},
            "geometry": {"type": "LineString", "coordinates": [list(p) for p in course]},
        }
        for name, course in (("东江", DONGJIANG), ("西枝江", XIZHIJIANG))
    ]
    return JSONResponse({"type": "FeatureCollection", "features": features})
