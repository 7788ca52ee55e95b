// The operator dashboard of the private host: it polls /metrics (Prometheus
// text, scope metrics:read) every two seconds and draws request rate and
// latency per route and click-through per model version; the version log of
// each served model (GET /api/admin/models/{name}, the same scope) gives the
// versions' offline metrics and the serving version's training curve.
// Charts are plain SVG drawn here: no library, nothing fetched elsewhere.

const TOKEN_KEY = "edgerec.ops-token";
const POLL_MS = 2000;
const KEEP = 150; // samples: five minutes
const COLORS = ["#0a5c36", "#1565c0", "#b45309", "#7b1fa2", "#c62828", "#00838f", "#5d4037", "#455a64"];
const SVG = "http://www.w3.org/2000/svg";

const $ = (selector) => document.querySelector(selector);
let token = sessionStorage.getItem(TOKEN_KEY) || "";
const samples = []; // {t (s), requests: {route: n}, buckets: {route: {le: n}}}
let modelsShownAt = -Infinity; // when the model versions were last drawn (they change rarely)
let polling = false;

async function get(path) {
  const response = await fetch(path, { headers: { authorization: `Bearer ${token}` } });
  const text = await response.text();
  if (!response.ok) {
    let message = text.slice(0, 200);
    try { message = JSON.parse(text).error.message; } catch { /* the text itself */ }
    throw new Error(`${path}: ${message} (HTTP ${response.status})`);
  }
  return text;
}

/** Prometheus text format: one {name, labels, value} per sample line. */
function parse(text) {
  const out = [];
  for (const line of text.split("\n")) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = {};
    for (const [, k, v] of (m[2] || "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[k] = v;
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

function sample(metrics) {
  const requests = {};
  const buckets = {};
  for (const { name, labels, value } of metrics) {
    if (name === "edgerec_requests_total") requests[labels.route] = (requests[labels.route] || 0) + value;
    if (name === "edgerec_request_duration_seconds_bucket") {
      const b = (buckets[labels.route] ??= {});
      b[labels.le] = (b[labels.le] || 0) + value;
    }
  }
  return { t: performance.now() / 1000, requests, buckets };
}

/** The q-quantile (ms) of the requests between two cumulative histograms, or null without requests. */
function quantile(before = {}, after, q) {
  const les = Object.keys(after).sort((a, b) => Number(a) - Number(b));
  const total = (after["+Inf"] || 0) - (before["+Inf"] || 0);
  if (total <= 0) return null;
  for (const le of les) {
    if ((after[le] || 0) - (before[le] || 0) >= q * total) return le === "+Inf" ? null : Number(le) * 1000;
  }
  return null;
}

/** Per-route series of rate (req/s) and p95 latency (ms) over the kept samples. */
function series() {
  const rate = {};
  const latency = {};
  for (let i = 1; i < samples.length; i++) {
    const [a, b] = [samples[i - 1], samples[i]];
    const ago = b.t - samples[samples.length - 1].t;
    for (const route of Object.keys(b.requests)) {
      (rate[route] ??= []).push([ago, Math.max(0, (b.requests[route] - (a.requests[route] || 0)) / (b.t - a.t))]);
      const p95 = quantile(a.buckets[route], b.buckets[route] || {}, 0.95);
      if (p95 !== null) (latency[route] ??= []).push([ago, p95]);
    }
  }
  return { rate, latency };
}

function el(name, attrs = {}, parent) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  parent?.append(node);
  return node;
}

function fmt(v) {
  return v >= 100 ? v.toFixed(0) : v >= 1 ? v.toFixed(1) : v.toPrecision(2);
}

/** A line chart of {label: [[x, y]]} into figure; describe() says it in words for screen readers. */
function lineChart(figure, lines, { xLabel, describe }) {
  const [w, h, left, bottom] = [640, 220, 48, 28];
  const points = Object.values(lines).flat();
  figure.replaceChildren();
  if (!points.length) {
    figure.textContent = "No data yet.";
    return;
  }
  const [x0, x1] = [Math.min(...points.map((p) => p[0])), Math.max(...points.map((p) => p[0]))];
  const yMax = Math.max(...points.map((p) => p[1])) * 1.1 || 1;
  const sx = (x) => left + ((x - x0) / (x1 - x0 || 1)) * (w - left - 10);
  const sy = (y) => h - bottom - (y / yMax) * (h - bottom - 10);
  const svg = el("svg", { viewBox: `0 0 ${w} ${h}`, role: "img", "aria-label": describe }, figure);
  el("title", {}, svg).textContent = describe;
  for (const y of [0, yMax / 2, yMax]) {
    el("line", { x1: left, x2: w - 10, y1: sy(y), y2: sy(y), stroke: "#dcdcde" }, svg);
    el("text", { x: left - 6, y: sy(y) + 4, "text-anchor": "end", "font-size": 11, fill: "#50575e" }, svg).textContent = fmt(y);
  }
  for (const x of [x0, x1]) {
    el("text", { x: sx(x), y: h - 8, "text-anchor": x === x0 ? "start" : "end", "font-size": 11, fill: "#50575e" }, svg).textContent = xLabel(x);
  }
  const legend = document.createElement("figcaption");
  legend.className = "legend";
  Object.entries(lines).forEach(([label, pts], i) => {
    const color = COLORS[i % COLORS.length];
    el("polyline", { points: pts.map(([x, y]) => `${sx(x)},${sy(y)}`).join(" "), fill: "none", stroke: color, "stroke-width": 2 }, svg);
    if (pts.length === 1) el("circle", { cx: sx(pts[0][0]), cy: sy(pts[0][1]), r: 3, fill: color }, svg);
    const item = document.createElement("span");
    const swatch = document.createElement("i");
    swatch.style.background = color;
    item.append(swatch, `${label}: ${fmt(pts[pts.length - 1][1])}`);
    legend.append(item);
  });
  figure.append(legend);
}

/** Horizontal bars [{label, value, note}], value in [0, max]. */
function barChart(figure, bars, { max, describe, unit = "" }) {
  figure.replaceChildren();
  if (!bars.length) {
    figure.textContent = "No data yet.";
    return;
  }
  const [w, row, left] = [640, 28, 200];
  const top = Math.max(max ?? 0, ...bars.map((b) => b.value)) || 1;
  const svg = el("svg", { viewBox: `0 0 ${w} ${bars.length * row + 8}`, role: "img", "aria-label": describe }, figure);
  el("title", {}, svg).textContent = describe;
  bars.forEach((bar, i) => {
    const y = 4 + i * row;
    el("text", { x: left - 8, y: y + 17, "text-anchor": "end", "font-size": 12, fill: "#1d2327" }, svg).textContent = bar.label;
    el("rect", { x: left, y: y + 4, width: Math.max(1, (bar.value / top) * (w - left - 150)), height: row - 10, fill: COLORS[i % COLORS.length] }, svg);
    const label = el("text", { x: left + (bar.value / top) * (w - left - 150) + 6, y: y + 17, "font-size": 12, fill: "#1d2327" }, svg);
    label.textContent = `${fmt(bar.value)}${unit}${bar.note ? ` (${bar.note})` : ""}`;
  });
}

function drawTraffic(metrics) {
  const { rate, latency } = series();
  const ago = (x) => `${Math.round(-x)} s ago`;
  const last = (lines) => Object.entries(lines).map(([r, p]) => `${r} ${fmt(p[p.length - 1][1])}`).join(", ") || "none yet";
  lineChart($("#rate"), rate, { xLabel: (x) => (x === 0 ? "now" : ago(x)), describe: `Requests per second by route, latest: ${last(rate)}` });
  lineChart($("#latency"), latency, { xLabel: (x) => (x === 0 ? "now" : ago(x)), describe: `Latency p95 in ms by route, latest: ${last(latency)}` });
  const shown = {};
  for (const { name, labels, value } of metrics) {
    const key = `${labels.name} ${labels.version}`;
    if (name === "edgerec_model_click_through_rate") (shown[key] ??= {}).ctr = value;
    if (name === "edgerec_model_impressions_total") (shown[key] ??= {}).impressions = value;
  }
  const bars = Object.entries(shown)
    .filter(([, v]) => v.ctr !== undefined)
    .map(([label, v]) => ({ label, value: v.ctr * 100, note: `${v.impressions ?? 0} impressions` }));
  barChart($("#ctr"), bars, { unit: " %", describe: `Click-through rate by model version: ${bars.map((b) => `${b.label} ${fmt(b.value)} %`).join(", ") || "no feedback yet"}` });
}

async function drawModels(metrics) {
  const names = [...new Set(metrics.filter((m) => m.name === "edgerec_model_info").map((m) => m.labels.name))];
  const container = $("#models");
  const parts = [];
  for (const name of names) {
    const model = JSON.parse(await get(`/api/admin/models/${encodeURIComponent(name)}`));
    // Without a version log, the version spin.toml mounts is the one serving.
    model.serving ??= metrics.find((m) => m.name === "edgerec_model_info" && m.labels.name === name)?.labels.version;
    const section = document.createElement("div");
    section.className = "model";
    const title = document.createElement("h3");
    title.textContent = `${name}: serving version ${model.serving}`;
    const table = document.createElement("table");
    table.innerHTML = "<caption class=\"hidden\"></caption><thead><tr><th scope=\"col\">version</th><th scope=\"col\">created</th><th scope=\"col\">items</th><th scope=\"col\">validation Recall@20</th><th scope=\"col\">validation NDCG@10</th></tr></thead>";
    table.querySelector("caption").textContent = `Versions of ${name}`;
    const body = document.createElement("tbody");
    for (const b of model.bundles) {
      const tr = document.createElement("tr");
      if (String(b.version) === String(model.serving)) tr.className = "serving";
      const m = b.metrics || {};
      for (const cell of [b.version, (b.created || "").slice(0, 16).replace("T", " "), b.items ?? "", m["valid_recall@20"], m["valid_ndcg@10"]]) {
        const td = document.createElement("td");
        td.textContent = typeof cell === "number" && !Number.isInteger(cell) ? cell.toFixed(4) : (cell ?? "—");
        tr.append(td);
      }
      body.append(tr);
    }
    table.append(body);
    const pair = document.createElement("div");
    pair.className = "pair";
    const versions = document.createElement("figure");
    versions.className = "chart";
    const scored = model.bundles.filter((b) => b.metrics?.["valid_recall@20"] !== undefined);
    barChart(versions, scored.map((b) => ({ label: `version ${b.version}`, value: b.metrics["valid_recall@20"] })), {
      describe: `Validation Recall@20 by version of ${name}: ${scored.map((b) => `${b.version} ${fmt(b.metrics["valid_recall@20"])}`).join(", ") || "none"}`,
    });
    const curve = document.createElement("figure");
    curve.className = "chart";
    const serving = model.bundles.find((b) => String(b.version) === String(model.serving)) || model.bundles[model.bundles.length - 1];
    const epochs = (serving?.epochs || []).filter((e) => e.valid?.all);
    lineChart(curve, {
      "Recall@20": epochs.map((e) => [e.epoch, e.valid.all.recall_20]),
      "NDCG@10": epochs.map((e) => [e.epoch, e.valid.all.ndcg_10]),
    }, { xLabel: (x) => `epoch ${x}`, describe: `Training curve of ${name} version ${serving?.version}: validation metrics per epoch` });
    if (!epochs.length) curve.textContent = "This version was not trained here (no training curve).";
    pair.append(versions, curve);
    section.append(title, table, pair);
    parts.push(section);
  }
  container.replaceChildren(...parts);
}

async function poll() {
  polling = true;
  try {
    const metrics = parse(await get("/metrics"));
    samples.push(sample(metrics));
    if (samples.length > KEEP) samples.shift();
    drawTraffic(metrics);
    if (performance.now() - modelsShownAt > 30000) {
      modelsShownAt = performance.now();
      await drawModels(metrics);
    }
    $("#status").textContent = `Updated ${new Date().toLocaleTimeString()}; every ${POLL_MS / 1000} s.`;
    $("#status").classList.remove("error");
    document.body.dataset.drawn = "true";
  } catch (e) {
    $("#status").textContent = e.message;
    $("#status").classList.add("error");
    if (/HTTP 40[13]/.test(e.message)) {
      polling = false; // a token problem: wait for a new one
      return;
    }
  }
  setTimeout(poll, POLL_MS);
}

$("#signin").addEventListener("submit", (e) => {
  e.preventDefault();
  token = $("#token").value.trim();
  sessionStorage.setItem(TOKEN_KEY, token);
  modelsShownAt = -Infinity;
  if (!polling) poll();
});
if (token) poll();
