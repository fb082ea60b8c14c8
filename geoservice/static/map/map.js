/* geoservice map page: dispatch, planner and GIS views on the service's own tiles.
   Everything it loads comes from this service; the key stays in this browser session. */
"use strict";

const KEY_STORE = "geoservice.key";
const FONT = '"Noto Sans CJK SC", "Noto Sans SC", "Microsoft YaHei", sans-serif';
const BAND_COLOURS = { 1: "rgba(220, 38, 38, 0.42)", 3: "rgba(249, 115, 22, 0.32)", 5: "rgba(250, 204, 21, 0.30)" };
const REACH_COLOURS = [[1, "rgba(21, 128, 61, 0.55)"], [3, "rgba(132, 204, 22, 0.50)"], [5, "rgba(250, 204, 21, 0.50)"]];
const ROAD_STYLE = {
  motorway: ["#e8590c", 3.2], trunk: ["#f08c00", 3], primary: ["#f59f00", 2.6],
  secondary: ["#fab005", 2], tertiary: ["#ffd43b", 1.6],
};
const LAYER_NAMES = {
  district: "区界", town: "镇（街道）", unit: "村（居）", large_grid: "大网格", grid: "基础网格",
  road: "道路", patrol_segment: "一级巡段", station: "派出所/警务室", rivers: "河流",
};
const ROLES = ["dispatch", "planner", "gis", "admin"];
const KIND_NAMES = { station: "派出所", post: "警务室", patrol: "巡逻组" };
const LIVE_EVERY_MS = 5000;

const state = {
  key: null, identity: null, view: "dispatch", version: null, current: null,
  point: null, lastLocate: null, selectedGrid: null, reach: null, coverage: null,
  tool: null, addPoints: [], closeEdges: [], changed: null, diff: null, hidden: new Set(),
  selected: null, live: null, liveTimer: null,
};
const $ = (id) => document.getElementById(id);
const text = (value) => (value === null || value === undefined ? "" : String(value));
const escape = (value) => text(value).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);

/* --- the key and the API ----------------------------------------------------------------- */

function takeKey() {
  const match = location.hash.match(/[#&]key=([^&]+)/);
  if (match) {
    sessionStorage.setItem(KEY_STORE, decodeURIComponent(match[1]));
    history.replaceState(null, "", location.pathname + location.search);
  }
  return sessionStorage.getItem(KEY_STORE);
}

async function call(path, options = {}) {
  const headers = { Authorization: `Bearer ${state.key}`, ...(options.headers || {}) };
  const response = await fetch(path, { ...options, headers });
  if (!response.ok) {
    let detail = `${response.status} ${response.statusText}`;
    try { detail = (await response.json()).detail || detail; } catch (_) { /* not JSON */ }
    const error = new Error(detail);
    error.status = response.status;
    throw error;
  }
  return response.json();
}

const get = (path) => call(path);
const post = (path, body) => call(path, { method: "POST", body: JSON.stringify(body), headers: { "content-type": "application/json" } });

function withVersion(path) {
  if (state.version === null || state.version === state.current) return path;
  return path + (path.includes("?") ? "&" : "?") + `version=${state.version}`;
}

function may(role) {
  return state.identity && ROLES.indexOf(state.identity.role) >= ROLES.indexOf(role);
}

function say(message, isError = false) {
  const status = $("status");
  status.textContent = message;
  status.classList.toggle("error", isError);
}

async function askKey(message = "") {
  const dialog = $("key-dialog");
  $("key-error").textContent = message;
  dialog.showModal();
  return new Promise((resolve) => {
    $("key-form").onsubmit = () => {
      state.key = $("key-input").value.trim();
      sessionStorage.setItem(KEY_STORE, state.key);
      resolve();
    };
  });
}

async function identify() {
  state.key = takeKey();
  for (;;) {
    if (!state.key) await askKey();
    try {
      state.identity = await get("/v1/whoami");
      return;
    } catch (error) {
      sessionStorage.removeItem(KEY_STORE);
      state.key = null;
      await askKey(error.status === 401 ? "密钥无效或已吊销。" : error.message);
    }
  }
}

/* --- the map ----------------------------------------------------------------------------- */

const params = new URLSearchParams(location.search);
const centre = [Number(params.get("lon") || 114.41), Number(params.get("lat") || 23.11)];
const view = new ol.View({
  center: ol.proj.fromLonLat(centre), zoom: Number(params.get("zoom") || 12), minZoom: 8, maxZoom: 19,
});

function label(textValue, size, weight = "", colour = "#334e68") {
  return new ol.style.Text({
    text: textValue, font: `${weight} ${size}px ${FONT}`, fill: new ol.style.Fill({ color: colour }),
    stroke: new ol.style.Stroke({ color: "rgba(255,255,255,0.9)", width: 3 }), overflow: true,
  });
}

function reachFill(code) {
  if (!state.coverage) return null;
  const minutes = state.coverage.get(code);
  if (minutes === null || minutes === undefined) return null;
  for (const [limit, colour] of REACH_COLOURS) if (minutes <= limit) return colour;
  return null;
}

function basemapStyle(feature, resolution) {
  const layer = feature.get("layer");
  if (state.hidden.has(layer)) return null;
  const zoom = view.getZoomForResolution(resolution);
  const code = text(feature.get("code"));
  if (layer === "grid") {
    const styles = [];
    const colour = state.view === "planner" ? reachFill(code) : null;
    const uncovered = state.view === "planner" && state.coverage && colour === null;
    const changed = state.changed && state.changed.get(code);
    // below zoom 12 grids are drawn only as coverage colours (district-wide), outlines
    // only for the uncovered ones
    const far = zoom < 12;
    if (far && !colour && !uncovered && !changed) return null;
    styles.push(new ol.style.Style({
      fill: colour ? new ol.style.Fill({ color: colour }) : undefined,
      stroke: far && !uncovered ? undefined : new ol.style.Stroke({
        color: uncovered ? "#dc2626" : "#9aa5b1", width: uncovered ? (far ? 1 : 1.6) : 0.6,
      }),
      text: zoom >= 16 ? label(code.slice(-4), 10, "", "#52606d") : undefined,
      zIndex: uncovered ? 2 : 1,
    }));
    if (changed) {
      styles.push(new ol.style.Style({
        stroke: new ol.style.Stroke({ color: changed === "gain" ? "#15803d" : "#b91c1c", width: 3 }),
        zIndex: 5,
      }));
    }
    return styles;
  }
  if (layer === "large_grid") {
    return new ol.style.Style({ stroke: new ol.style.Stroke({ color: "#829ab1", width: 1, lineDash: [4, 3] }) });
  }
  if (layer === "unit") {
    return new ol.style.Style({
      stroke: new ol.style.Stroke({ color: "#627d98", width: 1.3 }),
      text: zoom >= 13 ? label(text(feature.get("name")).replace(/(村民委员会|社区居委会|居委会)$/, ""), 12) : undefined,
    });
  }
  if (layer === "town") {
    return new ol.style.Style({
      stroke: new ol.style.Stroke({ color: "#334e68", width: 2.2 }),
      text: zoom >= 10 && zoom < 14 ? label(text(feature.get("name")), 15, "bold", "#102a43") : undefined,
    });
  }
  if (layer === "district") {
    return new ol.style.Style({ stroke: new ol.style.Stroke({ color: "#102a43", width: 3.2 }) });
  }
  if (layer === "road") {
    const [colour, width] = ROAD_STYLE[feature.get("highway")] || ["#ffffff", 1.1];
    const scale = zoom >= 16 ? 2 : zoom >= 14 ? 1.4 : 1;
    return new ol.style.Style({
      stroke: new ol.style.Stroke({ color: colour === "#ffffff" ? "#c8ccd0" : colour, width: width * scale }),
      text: zoom >= 16 && feature.get("name") ? label(text(feature.get("name")), 11, "", "#7c5e10") : undefined,
      zIndex: width > 1.5 ? 3 : 2,
    });
  }
  if (layer === "patrol_segment") {
    if (state.view === "dispatch" && zoom < 13) return null;
    return new ol.style.Style({
      stroke: new ol.style.Stroke({ color: "#c2255c", width: 3.5, lineDash: [8, 5] }), zIndex: 7,
    });
  }
  if (layer === "station") {
    const station = feature.get("kind") === "station";
    if (!station && zoom < 13) return null;
    return new ol.style.Style({
      image: new ol.style.RegularShape({
        points: station ? 4 : 30, radius: station ? 7 : 4, angle: station ? Math.PI / 4 : 0,
        fill: new ol.style.Fill({ color: station ? "#1d4ed8" : "#4c6ef5" }),
        stroke: new ol.style.Stroke({ color: "#fff", width: 1.5 }),
      }),
      text: station && zoom >= 13 ? Object.assign(label(text(feature.get("name")), 11, "", "#1d4ed8"), {}) : undefined,
      zIndex: 8,
    });
  }
  return null;
}

function authorisedLoader(tile, url) {
  tile.setLoader((extent, resolution, projection) => {
    fetch(url, { headers: { Authorization: `Bearer ${state.key}` } })
      .then((response) => (response.ok ? response.arrayBuffer() : Promise.reject(response.status)))
      .then((data) => {
        const features = data.byteLength ? tile.getFormat().readFeatures(data, { extent, featureProjection: projection }) : [];
        tile.setFeatures(features);
      })
      .catch(() => tile.setFeatures([]));
  });
}

function basemapSource() {
  return new ol.source.VectorTile({
    format: new ol.format.MVT(),
    url: withVersion("/v1/basemap/{z}/{x}/{y}"),
    tileLoadFunction: authorisedLoader,
    maxZoom: 18,
  });
}

const basemap = new ol.layer.VectorTile({ declutter: true, style: basemapStyle, renderBuffer: 60 });
/* the grid of the answer, drawn above the bands from the same tiles */
const highlight = new ol.layer.VectorTile({
  style: (feature) => (feature.get("layer") === "grid" && text(feature.get("code")) === state.selectedGrid
    ? new ol.style.Style({
      fill: new ol.style.Fill({ color: "rgba(29, 78, 216, 0.18)" }),
      stroke: new ol.style.Stroke({ color: "#1d4ed8", width: 3.5 }),
    })
    : null),
});
const riverSource = new ol.source.Vector({ url: "/map/rivers.geojson", format: new ol.format.GeoJSON() });
const rivers = new ol.layer.Vector({
  source: riverSource,
  style: (feature, resolution) => new ol.style.Style({
    stroke: new ol.style.Stroke({ color: "#a5d8ff", width: Math.min(24, Math.max(3, 200 / resolution)), lineCap: "round" }),
    text: label(text(feature.get("name")), 13, "bold", "#1971c2"),
  }),
});
const bandsSource = new ol.source.Vector();
const bands = new ol.layer.Vector({
  source: bandsSource,
  style: (feature) => new ol.style.Style({
    fill: new ol.style.Fill({ color: BAND_COLOURS[feature.get("minutes")] || "rgba(250,204,21,0.3)" }),
    stroke: new ol.style.Stroke({ color: "rgba(127, 29, 29, 0.7)", width: 1.2 }),
    zIndex: -feature.get("minutes"),
  }),
});
const RESPONDER_COLOURS = { station: "#1d4ed8", post: "#7048e8", patrol: "#0b7285" };
const RESPONDER_SHAPES = {
  station: { points: 4, angle: Math.PI / 4, scale: 1.1 },
  post: { points: 4, angle: 0, scale: 1.2 },
  patrol: { points: 3, angle: 0, scale: 1.3 },
};
const marksSource = new ol.source.Vector();
const marks = new ol.layer.Vector({
  source: marksSource,
  style: (feature) => {
    const kind = feature.get("kind");
    if (kind === "closed") {
      return new ol.style.Style({ stroke: new ol.style.Stroke({ color: "#e03131", width: 6 }) });
    }
    if (kind === "route") {  /* a responder's road route: the first solid, the others dashed */
      const first = feature.get("rank") === 1;
      return [
        new ol.style.Style({ stroke: new ol.style.Stroke({ color: "#fff", width: first ? 8 : 6 }), zIndex: 3 }),
        new ol.style.Style({
          stroke: new ol.style.Stroke({
            color: RESPONDER_COLOURS[feature.get("responder")], width: first ? 5 : 3.5,
            lineDash: first ? undefined : [10, 6],
          }),
          zIndex: first ? 4 : 3,
        }),
      ];
    }
    if (kind === "patrol" || kind === "responder") {
      /* responders by kind — station a square, post a diamond, patrol a triangle — with their rank */
      const first = feature.get("rank") === 1;
      const who = kind === "patrol" ? "patrol" : feature.get("responder");
      const shape = RESPONDER_SHAPES[who];
      return new ol.style.Style({
        image: new ol.style.RegularShape({
          points: shape.points, angle: shape.angle, radius: (first ? 11 : 9) * shape.scale,
          fill: new ol.style.Fill({ color: kind === "responder" ? RESPONDER_COLOURS[who] : "#0c8599" }),
          stroke: new ol.style.Stroke({ color: "#fff", width: 2 }),
        }),
        text: feature.get("label")
          ? Object.assign(label(feature.get("label"), first ? 14 : 12, "bold", "#fff"), {})
          : undefined,
        zIndex: first ? 10 : 5,
      });
    }
    return new ol.style.Style({
      image: new ol.style.Circle({
        radius: kind === "added" ? 7 : 8,
        fill: new ol.style.Fill({ color: kind === "added" ? "#7048e8" : "#e03131" }),
        stroke: new ol.style.Stroke({ color: "#fff", width: 2 }),
      }),
    });
  },
});
const diffSource = new ol.source.Vector();
const DIFF_COLOURS = { added: "#2f9e44", removed: "#e03131", geometry: "#f08c00", attributes: "#7048e8" };
const diffLayer = new ol.layer.Vector({
  source: diffSource,
  style: (feature) => {
    /* new and reshaped areas filled; removed ones dashed on top; attribute changes outlined */
    const change = feature.get("change");
    if (feature.get("state") === "before") {  /* the shape before the change: a thin dashed outline */
      return new ol.style.Style({ stroke: new ol.style.Stroke({ color: "#495057", width: 1.5, lineDash: [4, 4] }), zIndex: 0 });
    }
    const colour = DIFF_COLOURS[change];
    const filled = change === "added" || change === "geometry";
    return new ol.style.Style({
      fill: filled ? new ol.style.Fill({ color: colour + "40" }) : undefined,
      stroke: new ol.style.Stroke({
        color: colour, width: change === "removed" ? 3.5 : 2.5, lineDash: change === "removed" ? [8, 5] : undefined,
      }),
      image: new ol.style.Circle({ radius: 6, fill: new ol.style.Fill({ color: colour }) }),
      zIndex: { attributes: 1, geometry: 2, added: 3, removed: 4 }[change],
    });
  },
});

const map = new ol.Map({
  target: "map",
  layers: [rivers, basemap, bands, highlight, diffLayer, marks],
  view,
  controls: ol.control.defaults.defaults({ attribution: false }).extend([new ol.control.ScaleLine()]),
});

function refreshBasemap() {
  const source = basemapSource();
  basemap.setSource(source);
  highlight.setSource(source);
}

/* --- views ----------------------------------------------------------------------------------- */

function showView(name) {
  state.view = name;
  if (name !== "planner") stopLive();
  document.querySelectorAll("#views button").forEach((b) => b.classList.toggle("active", b.dataset.view === name));
  document.querySelectorAll("[data-panel]").forEach((p) => { p.hidden = p.dataset.panel !== name; });
  state.tool = null;
  document.querySelectorAll("[data-tool]").forEach((b) => b.classList.remove("on"));
  basemap.changed();
}

document.querySelectorAll("#views button").forEach((button) => {
  button.addEventListener("click", () => showView(button.dataset.view));
});

$("forget").addEventListener("click", () => {
  sessionStorage.removeItem(KEY_STORE);
  location.reload();
});

/* dispatch: locate and 1/3/5-minute bands */

function describeAnswer(answer) {
  const row = (name, value) => `<dt>${name}</dt><dd>${value}</dd>`;
  const named = (item) => (item ? `${escape(item.name)} <code>${escape(item.code)}</code>` : "—");
  const statusNames = { inside: "在网格内", boundary: "在网格边界上", outside: "在辖区外" };
  let html = `<p class="status-${answer.status}">${statusNames[answer.status]}` +
    ` · ${answer.point.lon.toFixed(6)}, ${answer.point.lat.toFixed(6)}</p><dl>`;
  if (answer.status === "outside") {
    html += row("最近网格", `<code>${escape(answer.nearest.grid_code)}</code>`);
    html += row("距离", `${answer.nearest.distance_m.toLocaleString()} 米`);
  } else {
    html += row("基础网格", named(answer.grid));
    html += row("大网格", named(answer.large_grid));
    html += row("村（居）", named(answer.unit));
    html += row("镇（街道）", named(answer.town));
    html += row("派出所", named(answer.station));
    html += row("警务室", named(answer.post));
    html += row("驻村（居）民警", answer.officers.map((o) => `${escape(o.name)} <code>${escape(o.code)}</code>`).join("<br>") || "—");
  }
  html += row("数据版本", answer.dataset_version) + "</dl>";
  if (answer.responders) {
    const clock = (s) => `${Math.floor(s / 60)}分${String(Math.round(s % 60)).padStart(2, "0")}秒`;
    html += "<h3>最快到达警力</h3>";
    html += answer.responders.length
      ? `<table class="numbers" data-testid="responders"><tr><th></th><th>警力</th><th>到达</th><th>路程</th></tr>` +
        answer.responders.map((r, i) => `<tr><td><span class="rank rank-${r.kind}">${i + 1}</span></td><td>${KIND_NAMES[r.kind]} ${escape(r.name)}</td>` +
          `<td>${clock(r.eta_s)}</td><td>${(r.distance_m / 1000).toFixed(2)} km</td></tr>`).join("") + "</table>"
      : `<p class="hint">${escape(answer.note || "附近没有可调派的警力")}</p>`;
  }
  return html;
}

function markResponders(answer) {
  marksSource.getFeatures().filter((f) => ["responder", "route"].includes(f.get("kind"))).forEach((f) => marksSource.removeFeature(f));
  (answer.responders || []).forEach((r, i) => {
    if (r.route) {
      marksSource.addFeature(new ol.Feature({
        geometry: new ol.geom.LineString(r.route.coordinates.map((c) => ol.proj.fromLonLat(c))),
        kind: "route", rank: i + 1, responder: r.kind,
      }));
    }
    marksSource.addFeature(new ol.Feature({
      geometry: new ol.geom.Point(ol.proj.fromLonLat([r.lon, r.lat])),
      kind: "responder", responder: r.kind, rank: i + 1, label: String(i + 1),
    }));
  });
}

async function locate(lon, lat, crs) {
  say("定位中…");
  try {
    const query = `lon=${encodeURIComponent(lon)}&lat=${encodeURIComponent(lat)}&crs=${crs}`;
    /* the current version: who gets there first, too; an older one: where it was */
    const current = state.version === null || state.version === state.current;
    const answer = await get(current ? `/v1/dispatch?${query}&k=3&routes=true` : withVersion(`/v1/locate?${query}`));
    state.lastLocate = answer;
    state.point = [answer.point.lon, answer.point.lat];
    state.selectedGrid = answer.grid ? answer.grid.code : null;
    $("answer").innerHTML = describeAnswer(answer);
    $("answer").hidden = false;
    marksSource.getFeatures().filter((f) => f.get("kind") === "incident").forEach((f) => marksSource.removeFeature(f));
    marksSource.addFeature(new ol.Feature({ geometry: new ol.geom.Point(ol.proj.fromLonLat(state.point)), kind: "incident" }));
    markResponders(answer);
    $("bands-button").disabled = answer.status === "outside";
    basemap.changed();
    highlight.changed();
    if (view.getZoom() < 14) view.animate({ center: ol.proj.fromLonLat(state.point), zoom: 15, duration: 250 });
    say(answer.grid ? `网格 ${answer.grid.code}` : "点在辖区外");
  } catch (error) {
    say(error.message, true);
  }
}

$("locate-form").addEventListener("submit", (event) => {
  event.preventDefault();
  locate($("lon").value.trim(), $("lat").value.trim(), $("crs").value);
});

// legend swatches coloured through the DOM: the page's CSP refuses inline style attributes
function paintSwatches(element) {
  element.querySelectorAll("i[data-colour]").forEach((i) => { i.style.background = i.dataset.colour; });
}

async function drawBands() {
  if (!state.point) return;
  say("计算 1/3/5 分钟处置圈…");
  try {
    const [lon, lat] = state.point;
    const collection = await get(withVersion(`/v1/isochrones?lon=${lon}&lat=${lat}&minutes=1,3,5`));
    bandsSource.clear();
    const features = new ol.format.GeoJSON().readFeatures(collection, { featureProjection: "EPSG:3857" });
    bandsSource.addFeatures(features);
    $("bands-legend").innerHTML = collection.features.map((f) =>
      `<li><i data-colour="${BAND_COLOURS[f.properties.minutes]}"></i>${f.properties.minutes} 分钟 · ${f.properties.area_km2.toFixed(2)} km²</li>`).join("");
    paintSwatches($("bands-legend"));
    $("bands-clear").disabled = false;
    view.fit(bandsSource.getExtent(), { padding: [40, 40, 40, 40], duration: 250, maxZoom: 16 });
    say(`从 ${collection.origin.lon.toFixed(5)}, ${collection.origin.lat.toFixed(5)}（最近道路）出发`);
  } catch (error) {
    say(error.message, true);
  }
}

$("bands-button").addEventListener("click", drawBands);
$("bands-clear").addEventListener("click", () => {
  bandsSource.clear();
  $("bands-legend").innerHTML = "";
  $("bands-clear").disabled = true;
});

/* planner: coverage colours and what-if */

function showPatrols(patrols) {
  marksSource.getFeatures().filter((f) => f.get("kind") === "patrol").forEach((f) => marksSource.removeFeature(f));
  state.live = new Map(patrols.map((p) => [p.unit, [p.lon, p.lat]]));
  marksSource.addFeatures(patrols.map((p) => new ol.Feature({
    geometry: new ol.geom.Point(ol.proj.fromLonLat([p.lon, p.lat])), kind: "patrol", unit: p.unit,
  })));
}

function stopLive() {
  clearTimeout(state.liveTimer);
  state.liveTimer = null;
}

async function colourLive() {
  /* coverage from stations, posts and the patrols where they are now, every few seconds */
  stopLive();
  try {
    const started = performance.now();
    const live = await get("/v1/coverage/live?minutes=1,3,5&grids=true");
    const grids = live.grid_minutes;
    state.coverage = new Map(grids.codes.map((code, i) => [code, grids.minutes_to_reach[i]]));
    showPatrols(live.patrols);
    const at = new Date().toLocaleTimeString("zh-CN", { hour12: false });
    $("coverage-summary").innerHTML = bandsTable(live.bands) +
      `<p data-testid="live-status">实时：${live.patrols.length} 个巡逻组在报位置 · ${at} 更新` +
      `（${Math.round(performance.now() - started)} 毫秒）</p>`;
    $("coverage-summary").hidden = false;
    basemap.changed();
    say("网格按实时警力到达时间着色，每 5 秒刷新");
  } catch (error) {
    say(error.message, true);
  }
  if ($("origins").value === "live" && state.view === "planner") {
    state.liveTimer = setTimeout(colourLive, LIVE_EVERY_MS);
  }
}

async function colourCoverage() {
  if ($("origins").value === "live") return colourLive();
  stopLive();
  say("计算网格覆盖…");
  try {
    const origins = $("origins").value;
    const [grids, response] = await Promise.all([
      get(withVersion(`/v1/coverage/grids?minutes=1,3,5&origins=${origins}`)),
      get(withVersion(`/v1/coverage/response?minutes=1,3,5&origins=${origins}`)),
    ]);
    state.coverage = new Map(grids.codes.map((code, i) => [code, grids.minutes_to_reach[i]]));
    $("coverage-summary").innerHTML = bandsTable(response.bands) +
      `<p>未覆盖网格 ${response.uncovered_grids.length} 个 · 数据版本 ${response.dataset_version}</p>`;
    $("coverage-summary").hidden = false;
    basemap.changed();
    say("网格已按到达时间着色");
  } catch (error) {
    say(error.message, true);
  }
}

function percent(x) { return `${(x * 100).toFixed(1)}%`; }

function bandsTable(rows, difference) {
  const head = "<tr><th>时限</th><th>网格</th><th>面积</th><th>人口</th></tr>";
  const body = rows.map((b, i) => {
    const d = difference ? difference[i] : null;
    const delta = (key, fmt) => (d && d[key] ? ` <span class="${d[key] > 0 ? "gain" : "loss"}">${d[key] > 0 ? "+" : ""}${fmt(d[key])}</span>` : "");
    return `<tr><td>${b.minutes} 分钟</td><td>${b.grids_covered}${delta("grids_covered", (x) => x)}</td>` +
      `<td>${percent(b.area_share)}${delta("area_share", percent)}</td>` +
      `<td>${percent(b.population_share)}${delta("population_share", percent)}</td></tr>`;
  }).join("");
  return `<table class="numbers">${head}${body}</table>`;
}

document.querySelectorAll("[data-tool]").forEach((button) => {
  button.addEventListener("click", () => {
    state.tool = state.tool === button.dataset.tool ? null : button.dataset.tool;
    document.querySelectorAll("[data-tool]").forEach((b) => b.classList.toggle("on", b.dataset.tool === state.tool));
    say(state.tool === "point" ? "在地图上点击放置巡逻点" : state.tool === "road" ? "在地图上点击要封闭的道路" : "");
  });
});

function listScenario() {
  const items = [
    ...state.addPoints.map(([lon, lat]) => `巡逻点 ${lon.toFixed(5)}, ${lat.toFixed(5)}`),
    ...state.closeEdges.map((edge) => `封闭道路 #${edge.id}${edge.name ? ` ${escape(edge.name)}` : ""}`),
  ];
  $("scenario-items").innerHTML = items.map((item) => `<li>${item}</li>`).join("");
}

async function evaluateScenario() {
  if (!state.addPoints.length && !state.closeEdges.length) {
    say("先添加巡逻点或封闭道路", true);
    return;
  }
  say("评估中…");
  try {
    const body = {
      minutes: [1, 3, 5], origins: $("origins").value,
      add_points: state.addPoints, close_edges: state.closeEdges.map((e) => e.id),
    };
    const result = await post(withVersion("/v1/coverage/scenario"), body);
    const gained = result.changed_grids.filter((g) => g.after !== null && (g.before === null || g.after < g.before));
    state.changed = new Map(result.changed_grids.map((g) => [g.code, gained.includes(g) ? "gain" : "loss"]));
    $("scenario-result").innerHTML = bandsTable(result.bands, result.difference) +
      `<p><span class="gain">得 ${gained.length} 个网格</span> · <span class="loss">失 ${result.changed_grids.length - gained.length} 个</span></p>`;
    $("scenario-result").hidden = false;
    basemap.changed();
    say("绿框：新覆盖的网格；红框：失去覆盖的网格");
  } catch (error) {
    say(error.message, true);
  }
}

$("coverage-button").addEventListener("click", colourCoverage);
$("scenario-button").addEventListener("click", evaluateScenario);
$("scenario-clear").addEventListener("click", () => {
  state.addPoints = [];
  state.closeEdges = [];
  state.changed = null;
  marksSource.getFeatures().filter((f) => f.get("kind") !== "incident").forEach((f) => marksSource.removeFeature(f));
  $("scenario-result").hidden = true;
  listScenario();
  basemap.changed();
});

/* GIS: layers, search, attributes, diff */

function buildToggles() {
  $("layer-toggles").innerHTML = Object.entries(LAYER_NAMES).map(([id, name]) =>
    `<label><input type="checkbox" data-layer="${id}" checked> ${name}</label>`).join("");
  $("layer-toggles").addEventListener("change", (event) => {
    const id = event.target.dataset.layer;
    if (event.target.checked) state.hidden.delete(id); else state.hidden.add(id);
    if (id === "rivers") rivers.setVisible(event.target.checked); else basemap.changed();
  });
}

function showAttributes(properties, layer) {
  const rows = Object.entries(properties).filter(([key]) => key !== "layer" && key !== "geometry")
    .map(([key, value]) => `<dt>${escape(key)}</dt><dd>${escape(value)}</dd>`).join("");
  $("attributes").innerHTML = `<p><b>${escape(LAYER_NAMES[layer] || layer)}</b></p><dl>${rows}</dl>`;
  $("attributes").hidden = false;
}

$("search-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const layer = $("search-layer").value;
  say("查找中…");
  try {
    const found = await get(withVersion(`/ogc/collections/${layer}/items?q=${encodeURIComponent($("search-text").value)}&limit=20`));
    const format = new ol.format.GeoJSON();
    $("search-results").innerHTML = found.features.map((f, i) =>
      `<li data-index="${i}">${escape(f.properties.name)} <code>${escape(f.id)}</code></li>`).join("") || "<li>没有找到</li>";
    $("search-results").onclick = (click) => {
      const item = click.target.closest("li[data-index]");
      if (!item) return;
      const feature = found.features[Number(item.dataset.index)];
      const geometry = format.readGeometry(feature.geometry, { featureProjection: "EPSG:3857" });
      view.fit(geometry.getExtent(), { padding: [60, 60, 60, 60], maxZoom: 17, duration: 250 });
      showAttributes(feature.properties, layer);
      state.selectedGrid = layer === "grid" ? feature.id : state.selectedGrid;
      highlight.changed();
    };
    say(`${found.numberReturned} 个结果`);
  } catch (error) {
    say(error.message, true);
  }
});

$("diff-button").addEventListener("click", async () => {
  const a = $("diff-a").value;
  const b = $("diff-b").value;
  say("对比中…");
  try {
    const changes = await get(`/v1/datasets/${a}/diff/${b}?f=geojson`);
    diffSource.clear();
    diffSource.addFeatures(new ol.format.GeoJSON().readFeatures(changes, { featureProjection: "EPSG:3857" }));
    const counts = {};
    changes.features.filter((f) => f.properties.state !== "before")
      .forEach((f) => { counts[f.properties.change] = (counts[f.properties.change] || 0) + 1; });
    const names = { added: "新增", removed: "删除", geometry: "边界变化", attributes: "属性变化" };
    $("diff-result").innerHTML = `<p>版本 ${a} → ${b}</p><ul class="legend">` + Object.keys(DIFF_COLOURS).map((k) =>
      `<li><i data-colour="${DIFF_COLOURS[k]}"></i>${names[k]} ${counts[k] || 0}</li>`).join("") + "</ul>";
    paintSwatches($("diff-result"));
    $("diff-result").hidden = false;
    if (changes.features.length) view.fit(diffSource.getExtent(), { padding: [60, 60, 60, 60], maxZoom: 15, duration: 250 });
    say(`${changes.features.length} 处变化`);
  } catch (error) {
    say(error.message, true);
  }
});

/* clicks on the map: what each view does with them */

function roadAt(pixel) {
  let road = null;
  map.forEachFeatureAtPixel(pixel, (feature) => {
    if (!road && feature.get("layer") === "road") road = feature;
  }, { hitTolerance: 6, layerFilter: (layer) => layer === basemap });
  return road;
}

map.on("singleclick", (event) => {
  const [lon, lat] = ol.proj.toLonLat(event.coordinate);
  if (state.view === "dispatch") {
    $("lon").value = lon.toFixed(6);
    $("lat").value = lat.toFixed(6);
    $("crs").value = "wgs84";
    locate(lon, lat, "wgs84");
  } else if (state.view === "planner" && state.tool === "point") {
    state.addPoints.push([lon, lat]);
    marksSource.addFeature(new ol.Feature({ geometry: new ol.geom.Point(event.coordinate), kind: "added" }));
    listScenario();
  } else if (state.view === "planner" && state.tool === "road") {
    const road = roadAt(event.pixel);
    if (!road) { say("此处没有道路，放大后再点", true); return; }
    const id = Number(road.get("id"));
    if (!state.closeEdges.some((e) => e.id === id)) {
      state.closeEdges.push({ id, name: road.get("name") });
      const flat = road.getFlatCoordinates();
      const line = new ol.geom.LineString(flat, "XY");
      marksSource.addFeature(new ol.Feature({ geometry: line, kind: "closed" }));
    }
    listScenario();
  } else if (state.view === "gis") {
    const found = map.forEachFeatureAtPixel(event.pixel, (feature) => feature, { hitTolerance: 4, layerFilter: (layer) => layer === basemap });
    if (found) {
      showAttributes(found.getProperties(), found.get("layer"));
      if (found.get("layer") === "grid") { state.selectedGrid = text(found.get("code")); highlight.changed(); }
    }
  }
});

/* --- start --------------------------------------------------------------------------------- */

async function loadVersions() {
  const versions = await get("/v1/datasets");
  const current = versions.find((v) => v.current);
  state.current = current ? current.id : null;
  state.version = state.current;
  const options = versions.slice().reverse().map((v) =>
    `<option value="${v.id}">${v.id}${v.current ? "（当前）" : v.status === "draft" ? "（草稿）" : ""} ${escape(v.note).slice(0, 24)}</option>`).join("");
  $("version").innerHTML = options;
  $("version").value = String(state.current);
  $("diff-a").innerHTML = options;
  $("diff-b").innerHTML = options;
  if (versions.length > 1) $("diff-a").value = String(versions[versions.length - 2].id);
  $("diff-b").value = String(state.current);
  $("version-box").hidden = false;
  $("version").addEventListener("change", () => {
    state.version = Number($("version").value);
    state.coverage = null;
    state.changed = null;
    refreshBasemap();
    say(`数据版本 ${state.version}`);
  });
}

async function start() {
  await identify();
  $("whoami").textContent = `${state.identity.name}（${state.identity.role}）`;
  document.querySelectorAll("#views button[data-role]").forEach((button) => {
    button.disabled = !may(button.dataset.role);
    if (button.disabled) button.title = "需要规划员（planner）及以上权限的密钥";
  });
  if (may("planner")) await loadVersions();
  buildToggles();
  refreshBasemap();
  const wanted = params.get("view");
  if (wanted && document.querySelector(`#views button[data-view="${wanted}"]:not(:disabled)`)) showView(wanted);
  say("就绪：点击地图定位");
}

window.geoservice = { map, state, bandsSource, marksSource, diffSource, basemap, highlight, ready: start() };

/* a printable layout of every view: the title, view, version and date above the map, the
   panel's legends and figures beside it, the scale line on it */
const VIEW_TITLES = { dispatch: "接警调度", planner: "规划研判（1/3/5 分钟覆盖）", gis: "GIS 数据" };
function printTitle() {
  const date = new Date().toLocaleString("zh-CN", { timeZone: "Asia/Shanghai", hour12: false });
  const version = state.version === null ? state.current : state.version;
  $("print-title").textContent =
    `惠城区网格与警务地图 · ${VIEW_TITLES[state.view]} · 数据版本 ${version ?? "—"} · ${date}`;
}
window.addEventListener("beforeprint", () => { printTitle(); map.updateSize(); map.renderSync(); });
window.addEventListener("afterprint", () => map.updateSize());
$("print").addEventListener("click", () => {
  printTitle();
  map.once("rendercomplete", () => window.print());
  map.render();
});
