"""The map page in a real browser: headless Chromium from the OS packages, driven by Playwright.

Each test serves the real app, opens ``/map``, records every request the page makes and
every console message, and saves screenshots (under the test's temporary folder).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Browser, Page, sync_playwright

from tests.cli import run_cli
from tests.conftest import TEST_KEYS
from tests.server import serving

CHROMIUM = "/usr/bin/chromium"
CENTRE_ON = """([lon, lat]) => {
  const { map } = window.geoservice;
  map.getView().setCenter(ol.proj.fromLonLat([lon, lat]));
  map.renderSync();
  return map.getPixelFromCoordinate(ol.proj.fromLonLat([lon, lat]));
}"""
SETTLE = """() => {
  const { map } = window.geoservice;
  window.mapSettled = false;
  map.once("rendercomplete", () => { window.mapSettled = true; });
  map.render();
}"""
CLICKED = """() => {
  window.mapClicked = false;
  window.geoservice.map.once("singleclick", () => { window.mapClicked = true; });
}"""
BASEMAP_READY = "window.geoservice.basemap.getSource()?.getState() === 'ready'"
COLOURED = "window.geoservice.state.coverage?.size === 2556"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-default-apps",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


@dataclass
class Visit:
    page: Page
    base: str
    shots: Path
    requests: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)

    def outside(self) -> list[str]:
        return [url for url in self.requests if not url.startswith((self.base, "data:"))]

    def errors(self) -> list[str]:
        return [line for line in self.console if line.startswith(("error", "pageerror"))]

    def shot(self, name: str) -> np.ndarray:
        path = self.shots / f"{name}.png"
        self.page.screenshot(path=str(path))
        return np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)

    def wait_for(self, script: str, timeout_s: float = 60.0) -> None:
        # as a function: a bare expression would be eval'd, which the page's CSP refuses
        self.page.wait_for_function(f"() => ({script})", timeout=timeout_s * 1000)

    def settled(self, timeout_s: float = 60.0) -> None:
        """Wait until the map has drawn what is in view: every tile loaded and faded in
        (OpenLayers' ``rendercomplete``, the event its own print button waits for)."""
        self.page.evaluate(SETTLE)
        self.wait_for("window.mapSettled === true", timeout_s)

    def click_at(self, lon: float, lat: float) -> None:
        """Click the map at a WGS84 point (centred first, so that it is in view), and wait
        until the map has taken it as a single click: OpenLayers holds a click back past its
        double-click window, then the page's own ``singleclick`` handler runs before ours."""
        x, y = self.page.evaluate(CENTRE_ON, [lon, lat])
        self.page.evaluate(CLICKED)
        box = self.page.locator("#map").bounding_box()
        self.page.mouse.click(box["x"] + x, box["y"] + y)
        self.wait_for("window.mapClicked === true", 10)


def _open(browser: Browser, base: str, shots: Path, query: str, role: str | None) -> Visit:
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    visit = Visit(page, base, shots)
    page.on("request", lambda request: visit.requests.append(request.url))
    page.on("console", lambda message: visit.console.append(f"{message.type}: {message.text}"))
    page.on("pageerror", lambda error: visit.console.append(f"pageerror: {error}"))
    fragment = f"#key={TEST_KEYS[role]}" if role else ""
    page.goto(f"{base}/map?{query}{fragment}")
    if role:
        page.evaluate("window.geoservice.ready")
    return visit


@pytest.fixture(scope="module")
def server(demo_readonly, tmp_path_factory):
    with serving(demo_readonly, tmp_path_factory.mktemp("map")) as running:
        yield running


def test_dispatch_view_locates_a_click_and_draws_three_nested_bands(
    browser, server, demo_index, tmp_path
):
    visit = _open(browser, server.url, tmp_path, "lon=114.41&lat=23.11&zoom=15", "dispatch")
    assert "key=" not in visit.page.url  # taken from the fragment, then removed
    visit.wait_for(BASEMAP_READY)
    visit.settled()
    first = visit.shot("dispatch-start")
    assert first.std() > 20  # a drawn map, not a blank page
    expected = demo_index.locate(114.41, 23.11)["grid"]["code"]
    visit.click_at(114.41, 23.11)
    visit.wait_for("window.geoservice.state.lastLocate !== null")
    assert expected in visit.page.inner_text("[data-testid=answer]")
    assert visit.page.evaluate("window.geoservice.state.selectedGrid") == expected
    # who gets there first: a table of three, and three marks on the map
    assert visit.page.locator("[data-testid=responders] tr").count() == 4
    marks = "window.geoservice.marksSource.getFeatures()"
    assert visit.page.evaluate(f"{marks}.filter((f) => f.get('kind') === 'responder').length") == 3
    # and each one's road route to the incident, ending where the incident meets the road
    routes = visit.page.evaluate(
        f"""() => {marks}.filter((f) => f.get('kind') === 'route')
          .sort((a, b) => a.get('rank') - b.get('rank'))
          .map((f) => ol.proj.toLonLat(f.getGeometry().getLastCoordinate()))"""
    )
    assert len(routes) == 3
    assert all(abs(lon - 114.41) < 0.005 and abs(lat - 23.11) < 0.005 for lon, lat in routes)
    visit.page.evaluate("window.geoservice.map.getView().setZoom(14)")
    visit.settled()
    visit.shot("dispatch-routes")
    visit.page.click("#bands-button")
    visit.wait_for("window.geoservice.bandsSource.getFeatures().length === 3")
    nested = visit.page.evaluate(
        """() => {
          const f = window.geoservice.bandsSource.getFeatures()
            .sort((a, b) => a.get('minutes') - b.get('minutes'));
          const e = f.map((x) => x.getGeometry().getExtent());
          return [f.map((x) => x.get('minutes')), ol.extent.containsExtent(e[2], e[1]) &&
                  ol.extent.containsExtent(e[1], e[0])];
        }"""
    )
    assert nested == [[1, 3, 5], True]
    assert visit.page.locator("[data-testid=bands-legend] li").count() == 3
    visit.settled()
    bands = visit.shot("dispatch-bands")
    assert np.abs(bands - first).mean() > 3  # the bands are drawn
    # a dispatch key sees no planner or GIS view
    assert visit.page.locator("button[data-view=planner]").is_disabled()
    assert not visit.errors(), visit.errors()
    assert not visit.outside(), visit.outside()


def test_planner_view_colours_grids_and_weighs_a_new_patrol_point(browser, server, tmp_path):
    visit = _open(
        browser, server.url, tmp_path, "lon=114.41&lat=23.11&zoom=13&view=planner", "planner"
    )
    visit.wait_for("window.geoservice.state.view === 'planner'")
    visit.settled()
    before = visit.shot("planner-start")
    visit.page.click("#coverage-button")
    visit.wait_for(COLOURED)
    visit.settled()
    after = visit.shot("planner-coverage")
    green = (after[..., 1] > after[..., 0] + 30) & (after[..., 1] > after[..., 2] + 30)
    was_green = (before[..., 1] > before[..., 0] + 30) & (before[..., 1] > before[..., 2] + 30)
    assert green.mean() > was_green.mean() + 0.1  # grids coloured by minutes to reach
    assert "1579" in visit.page.inner_text("[data-testid=coverage-summary]")
    # the district-wide view (zoom 11) keeps the colours, and outlines the uncovered grids
    visit.page.evaluate("window.geoservice.map.getView().setZoom(11)")
    visit.wait_for(BASEMAP_READY)
    visit.settled()
    far = visit.shot("planner-coverage-z11")
    green_far = (far[..., 1] > far[..., 0] + 30) & (far[..., 1] > far[..., 2] + 30)
    red_far = (far[..., 0] > far[..., 1] + 60) & (far[..., 0] > far[..., 2] + 60)
    assert green_far.mean() > 0.05 and red_far.mean() > 0.0005
    visit.page.evaluate("window.geoservice.map.getView().setZoom(13)")
    visit.page.click("#tool-point")
    visit.click_at(114.62, 23.30)  # far from every post: a new point gains grids
    visit.page.click("#scenario-button")
    visit.wait_for("window.geoservice.state.changed !== null", 120)
    result = visit.page.inner_text("[data-testid=scenario-result]")
    gained = int(result.split("得 ")[1].split(" ")[0])
    assert gained > 0
    visit.shot("planner-scenario")
    assert not visit.errors(), visit.errors()
    assert not visit.outside(), visit.outside()


PATROLS = "window.geoservice.marksSource.getFeatures().filter((f) => f.get('kind') === 'patrol')"


def test_live_coverage_follows_the_patrols_on_the_map(browser, demo_settings, tmp_path):
    from datetime import UTC, datetime

    from geoservice.db import create_engine
    from geoservice.patrols import PositionStore, patrol_units
    from geoservice.synthetic.patrols import PatrolSimulator

    engine = create_engine(demo_settings)
    units = patrol_units(engine, 1)
    simulator = PatrolSimulator(engine, 1, units, 20.0)
    recorder = create_engine(demo_settings, "recorder")
    store = PositionStore(recorder, 30)
    store.record(simulator.positions(0.0, datetime.now(UTC)))
    with serving(demo_settings, tmp_path) as running:
        visit = _open(
            browser, running.url, tmp_path, "lon=114.41&lat=23.10&zoom=13&view=planner", "planner"
        )
        visit.wait_for("window.geoservice.state.view === 'planner'")
        visit.page.select_option("#origins", "live")
        visit.page.click("#coverage-button")
        visit.wait_for(COLOURED)
        visit.wait_for(f"{PATROLS}.length === {len(units)}")
        assert "102 个巡逻组" in visit.page.inner_text("[data-testid=coverage-summary]")
        where = f"JSON.stringify({PATROLS}.map((f) => f.getGeometry().getCoordinates()))"
        visit.page.evaluate(f"window.firstPlaces = {where}")
        visit.settled()
        visit.shot("planner-live")
        # ten minutes later along their segments: the page's next refresh moves them
        store.record(simulator.positions(600.0, datetime.now(UTC)))
        visit.wait_for(f"{where} !== window.firstPlaces", 30)
        visit.settled()
        visit.shot("planner-live-later")
        assert not visit.errors(), visit.errors()
        assert not visit.outside(), visit.outside()
    engine.dispose()
    recorder.dispose()


def test_gis_view_searches_shows_attributes_and_draws_a_diff(
    browser, demo_settings, demo_files, tmp_path
):
    from geoservice.synthetic.revisions import write_revisions

    merge = write_revisions(demo_files, tmp_path / "revisions")["merge"]
    assert run_cli("etl", "bundle", str(merge.folder), settings=demo_settings).returncode == 0
    with serving(demo_settings, tmp_path) as running:
        visit = _open(browser, running.url, tmp_path, "view=gis&zoom=12", "gis")
        visit.wait_for("window.geoservice.state.view === 'gis'")
        visit.page.select_option("#search-layer", "unit")
        visit.page.fill("#search-text", merge.summary.split()[-1])
        visit.page.click("#search-form button")
        visit.wait_for(
            "document.querySelectorAll('[data-testid=search-results] li[data-index]').length > 0"
        )
        visit.page.click("[data-testid=search-results] li[data-index]")
        assert merge.summary.split()[-1] in visit.page.inner_text("[data-testid=attributes]")
        visit.page.select_option("#diff-a", "1")
        visit.page.select_option("#diff-b", "2")
        visit.page.click("#diff-button")
        visit.wait_for("window.geoservice.diffSource.getFeatures().length > 0")
        changes = visit.page.inner_text("[data-testid=diff-result]")
        assert "删除 2" in changes and "边界变化 1" in changes
        visit.settled()
        visit.shot("gis-diff")
        visit.page.uncheck("input[data-layer=grid]")
        assert "grid" in visit.page.evaluate("[...window.geoservice.state.hidden]")
        assert not visit.errors(), visit.errors()
        assert not visit.outside(), visit.outside()


def test_every_view_prints_with_a_title_legend_scale_and_date(browser, server, tmp_path):
    visit = _open(
        browser, server.url, tmp_path, "lon=114.41&lat=23.11&zoom=13&view=planner", "planner"
    )
    visit.wait_for("window.geoservice.state.view === 'planner'")
    visit.page.click("#coverage-button")
    visit.wait_for(COLOURED)
    visit.page.emulate_media(media="print")
    visit.page.evaluate("window.dispatchEvent(new Event('beforeprint'))")
    visit.settled()  # laid out for print and drawn again at its new size
    title = visit.page.locator("[data-testid=print-title]")
    assert title.is_visible() and not visit.page.locator("header").is_visible()
    text = title.inner_text()
    assert "规划研判" in text and "数据版本 1" in text and "20" in text  # the date
    assert visit.page.locator("[data-panel=planner] .legend").is_visible()
    assert visit.page.locator("[data-testid=coverage-summary]").is_visible()
    assert visit.page.locator(".ol-scale-line").is_visible()
    assert not visit.page.locator("#coverage-button").is_visible()
    printed = visit.shot("print-planner")
    assert printed.std() > 20
    visit.page.pdf(path=str(tmp_path / "planner.pdf"), format="A4", landscape=True)
    assert (tmp_path / "planner.pdf").stat().st_size > 10_000
    assert not visit.errors(), visit.errors()
    assert not visit.outside(), visit.outside()


def test_the_page_asks_for_a_key_and_refuses_a_wrong_one(browser, server, tmp_path):
    visit = _open(browser, server.url, tmp_path, "", None)
    dialog = visit.page.locator("#key-dialog")
    dialog.wait_for(state="visible")
    visit.page.fill("#key-input", "gs_00000000_" + "x" * 43)
    visit.page.click("#key-form button")
    visit.wait_for("document.querySelector('#key-error').textContent.length > 0")
    assert "无效" in visit.page.inner_text("#key-error")
    visit.page.fill("#key-input", TEST_KEYS["admin"])
    visit.page.click("#key-form button")
    visit.page.evaluate("window.geoservice.ready")
    assert "test-admin" in visit.page.inner_text("[data-testid=whoami]")
    assert not visit.outside(), visit.outside()


def test_docs_load_in_the_browser_with_nothing_from_outside(browser, server, tmp_path):
    visit = _open(browser, server.url, tmp_path, "", None)
    response = visit.page.goto(f"{server.url}/docs")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    visit.page.wait_for_selector(".swagger-ui .opblock", timeout=60_000)
    assert visit.page.locator(".opblock").count() > 20
    visit.shot("docs")
    assert not visit.outside(), visit.outside()
    assert not visit.errors(), visit.errors()  # a script or style the policy refused is one
