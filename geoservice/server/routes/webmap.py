"""``/map``: the web map for dispatchers, planners and GIS staff (static files, no key needed;
every data request it makes carries the user's key)."""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, JSONResponse

from geoservice.synthetic.roads import DONGJIANG, XIZHIJIANG

router = APIRouter(tags=["map"])

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "worker-src 'self' blob:",  # OpenLayers renders vector tiles in a worker from a blob
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
"""The pages' policy (``/map``, ``/docs``): everything from the service itself, no inline
script or style, never inside another site's frame."""
PAGE_HEADERS = {
    "cache-control": "no-cache",
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}


@router.get("/map", response_class=HTMLResponse, include_in_schema=False)
def map_page() -> HTMLResponse:
    """The map page (``?lon=&lat=&zoom=`` centre it, ``#key=…`` hands it a key)."""
    page = resources.files("geoservice").joinpath("static/map/index.html").read_text("utf-8")
    return HTMLResponse(page, headers=PAGE_HEADERS)


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
