// Sluice console: a small single-page app over the /v1 HTTP API.
// Plain JavaScript, no dependencies. Pages are rendered into #view by
// hash route; charts are drawn on <canvas> by the functions below.
"use strict";

// ---------------------------------------------------------------- helpers

const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));

function esc(s) {
  return String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

function fmtInt(n) {
  return n == null || n < 0 ? "–" : Number(n).toLocaleString("en-US");
}

function fmtBytes(n) {
  if (n == null || n < 0) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i === 0 ? Math.round(n) : n.toFixed(n < 10 ? 2 : 1)) + " " + units[i];
}

function fmtRate(n, unit) {
  if (!isFinite(n)) return "–";
  if (unit === "B") return fmtBytes(n) + "/s";
  if (n >= 1e6) return (n / 1e6).toFixed(2) + "M/s";
  if (n >= 1e3) return (n / 1e3).toFixed(1) + "k/s";
  return (n < 10 ? n.toFixed(1) : Math.round(n)) + "/s";
}

function fmtTime(ms) {
  if (ms == null || ms < 0) return "–";
  const d = new Date(ms);
  const pad = (x, w = 2) => String(x).padStart(w, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

function fmtDuration(ms) {
  const s = Math.floor(ms / 1000);
  const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
  if (d) return `${d}d ${h}h`;
  if (h) return `${h}h ${m}m`;
  if (m) return `${m}m ${s % 60}s`;
  return `${s}s`;
}

// ---------------------------------------------------------------- auth
//
// With http_auth on, the console signs in once: a user name and password
// are exchanged for a bearer token (POST /v1/auth/tokens with HTTP basic),
// or a token is pasted. Only the token is kept, in sessionStorage (gone
// when the tab closes; never localStorage), and sent on every call, the
// live tail included (read with fetch, since EventSource cannot send
// headers). With http_auth off nothing is stored or sent.

const AUTH_KEY = "sluice.console.auth";
// A console sign-in lasts a working day (the server cuts it to
// http_auth.token_max_lifetime_ms if that is shorter).
const CONSOLE_SESSION_MS = 8 * 60 * 60 * 1000;

function loadAuth() {
  try { return JSON.parse(sessionStorage.getItem(AUTH_KEY) || "null"); } catch (_) { return null; }
}
let auth = loadAuth();

function authHeaders(extra = {}) {
  // The marker asks the server to leave out WWW-Authenticate on a 401, so
  // the browser shows our login page instead of its own password dialog.
  const h = { "x-requested-with": "XMLHttpRequest", ...extra };
  if (auth && auth.token) h.authorization = "Bearer " + auth.token;
  return h;
}

function showPrincipal(principal) {
  const p = $("#principal"), out = $("#logout");
  p.hidden = !principal; out.hidden = !principal;
  p.textContent = principal || "";
}

let loginShown = false;
function showLogin(message) {
  if (auth) { auth = null; sessionStorage.removeItem(AUTH_KEY); }
  showPrincipal(null);
  // Every call made while signed out answers 401 and lands here (the
  // heartbeat every few seconds); an empty message must not wipe the
  // reason already on the form ("Signed out.", a refused password).
  if (message || !loginShown) $("#login-error").textContent = message || "";
  if (loginShown) return;
  loginShown = true;
  // Nothing of the session that ended stays on the page or keeps running:
  // stop the page's timers and streams (a live tail would go on showing
  // records) and drop what it rendered. Signing in routes afresh.
  for (const fn of cleanup) { try { fn(); } catch (_) { /* ignore */ } }
  cleanup = [];
  $("#view").innerHTML = "";
  $("#login").hidden = false;
  $("#login-user").focus();
}

async function signIn(ev) {
  ev.preventDefault();
  const user = $("#login-user").value, password = $("#login-password").value;
  const pasted = $("#login-token").value.trim();
  $("#login-error").textContent = "";
  try {
    let next;
    if (pasted) {
      const res = await fetch("/v1/auth/whoami", { headers: { "x-requested-with": "XMLHttpRequest", authorization: "Bearer " + pasted } });
      const me = await res.json().catch(() => ({}));
      if (!res.ok) throw new Error(me.message || res.statusText);
      next = { token: pasted, principal: me.principal, owned: false };
    } else {
      const basic = "Basic " + btoa(String.fromCharCode(...new TextEncoder().encode(`${user}:${password}`)));
      const res = await fetch("/v1/auth/tokens", {
        method: "POST",
        headers: { "x-requested-with": "XMLHttpRequest", authorization: basic, "content-type": "application/json" },
        body: JSON.stringify({ lifetime_ms: CONSOLE_SESSION_MS }),
      });
      const t = await res.json().catch(() => ({}));
      if (!res.ok) throw new Error(t.message || res.statusText);
      // `owned`: the console made it, so logging out revokes it.
      next = { token: t.token, token_id: t.token_id, principal: t.principal, owned: true };
    }
    auth = next;
    sessionStorage.setItem(AUTH_KEY, JSON.stringify(auth));
    $("#login-password").value = ""; $("#login-token").value = "";
    $("#login").hidden = true; loginShown = false;
    showPrincipal(auth.principal);
    heartbeat();
    route();
  } catch (e) {
    $("#login-error").textContent = e.message;
  }
}

async function logout() {
  const was = auth;
  if (was && was.owned && was.token_id) {
    try { await api("DELETE", "/v1/auth/tokens/" + encodeURIComponent(was.token_id)); } catch (_) { /* expired or revoked already */ }
  }
  showLogin("Signed out.");
}

async function api(method, path, body) {
  const init = { method, headers: authHeaders() };
  if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  if (res.status === 401) showLogin(auth ? "Your session has ended; sign in again." : "");
  if (res.status === 204) return null;
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (_) { data = { message: text }; }
  if (!res.ok) {
    const err = new Error((data && data.message) || res.statusText);
    err.code = data && data.error_code;
    err.status = res.status;
    throw err;
  }
  return data;
}

let toastTimer = null;
function toast(message, isError = false) {
  const t = $("#toast");
  t.textContent = message;
  t.className = "toast show" + (isError ? " error" : "");
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { t.className = "toast"; }, 3200);
}

function b64ToBytes(b64) {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

function hexDump(bytes) {
  const lines = [];
  for (let i = 0; i < bytes.length; i += 16) {
    const chunk = Array.from(bytes.slice(i, i + 16));
    const hex = chunk.map((b) => b.toString(16).padStart(2, "0")).join(" ");
    const ascii = chunk.map((b) => (b >= 32 && b < 127 ? String.fromCharCode(b) : ".")).join("");
    lines.push(i.toString(16).padStart(8, "0") + "  " + hex.padEnd(48, " ") + " " + ascii);
  }
  return lines.join("\n");
}

function highlightJson(value) {
  const json = esc(JSON.stringify(value, null, 2));
  return json.replace(/(&quot;(?:[^&]|&(?!quot;))*?&quot;)(\s*:)?|\b(true|false|null)\b|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)/g,
    (m, str, colon, lit, num) => {
      if (str) return colon ? `<span class="k">${str}</span>${colon}` : `<span class="s">${str}</span>`;
      if (lit) return `<span class="b">${lit}</span>`;
      return `<span class="n">${num}</span>`;
    });
}

// A key or value the schema registry decoded (reads with decode=true):
// a badge naming the schema type and id, or the reason it failed.
function schemaBadge(decoded) {
  if (decoded.error != null) return `<span class="badge warn" title="${esc(decoded.error)}">schema ${decoded.schema_id}: not decoded</span>`;
  const what = decoded.message ? `${decoded.schema_type} ${decoded.message}` : decoded.schema_type;
  return `<span class="badge info schema-badge">${esc(what)} · id ${decoded.schema_id}</span>`;
}

// How a record value is shown: "auto" takes the schema registry's decoding
// when there is one, then tries JSON, then text, then hex.
function renderValue(rec, format) {
  if (rec.value_base64 == null) return { kind: "null", html: '<span class="badge">null</span>' };
  const decoded = rec.value_schema;
  if (format === "auto" && decoded) {
    if (decoded.data !== undefined) return { kind: "schema", html: highlightJson(decoded.data) };
    return { kind: "hex", html: esc(decoded.error) + "\n\n" + esc(hexDump(b64ToBytes(rec.value_base64))) };
  }
  if (format === "hex") return { kind: "hex", html: esc(hexDump(b64ToBytes(rec.value_base64))) };
  if (format !== "text" && rec.value != null) {
    try {
      const parsed = JSON.parse(rec.value);
      if (typeof parsed === "object" || format === "json") return { kind: "json", html: highlightJson(parsed) };
    } catch (_) {
      if (format === "json") return { kind: "text", html: esc(rec.value) };
    }
  }
  if (rec.value != null) return { kind: "text", html: esc(rec.value) };
  return { kind: "hex", html: esc(hexDump(b64ToBytes(rec.value_base64))) };
}

// A record key for a table cell: decoded by its schema, text, or a badge.
function keyCell(rec) {
  if (rec.key_schema && rec.key_schema.data !== undefined) return esc(JSON.stringify(rec.key_schema.data));
  if (rec.key != null) return esc(rec.key);
  return rec.key_base64 == null ? '<span class="badge">null</span>' : '<span class="badge info">binary</span>';
}

function preview(rec) {
  if (rec.value_base64 == null) return '<span class="badge">null</span>';
  const decoded = rec.value_schema;
  if (decoded) {
    if (decoded.data === undefined) return schemaBadge(decoded);
    const text = JSON.stringify(decoded.data);
    return `${schemaBadge(decoded)} <span class="mono">${esc(text.length > 160 ? text.slice(0, 160) + "…" : text)}</span>`;
  }
  if (rec.value == null) return `<span class="badge info">binary</span> <span class="mono">${esc(hexDump(b64ToBytes(rec.value_base64)).slice(10, 58))}</span>`;
  return `<span class="mono">${esc(rec.value.length > 160 ? rec.value.slice(0, 160) + "…" : rec.value)}</span>`;
}

// ---------------------------------------------------------------- charts

// The colours a chart draws with, from the theme's CSS variables, so text
// and grid lines stay readable in the light and the dark theme.
function chartColors() {
  const css = getComputedStyle(document.documentElement);
  const v = (name, fallback) => css.getPropertyValue(name).trim() || fallback;
  return { ink: v("--chart-ink", "#6b7280"), grid: v("--chart-grid", "#eef0f3"), track: v("--chart-track", "#f0f2f5"), text: v("--ink", "#111827") };
}

// The smallest of 1, 2 and 5 times a power of ten that is at least `x`.
function niceStep(x) {
  if (!(x > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(x)));
  for (const m of [1, 2, 5, 10]) if (m * p >= x * (1 - 1e-9)) return m * p;
  return 10 * p;
}

// A number without float noise or trailing zeros: 0.30000000000000004 is "0.3".
function trimNum(x) {
  return String(Number(x.toPrecision(12)));
}

// Y-axis ticks for values up to `max`: round values (0, 20, 40 /s;
// 0, 5, 10 KiB/s), two to five intervals, the top one at or above `max`.
// `unit` is "rate" (things per second), "bytes" (bytes per second) or
// "count". Bytes are stepped in the unit the top value is shown in.
function niceTicks(max, unit) {
  max = Math.max(max, unit === "bytes" ? 1024 : 1);
  let scale = 1, suffix = "";
  if (unit === "bytes") {
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (max / scale >= 1024 && i < units.length - 1) { scale *= 1024; i++; }
    suffix = " " + units[i] + "/s";
  } else if (unit === "rate") {
    if (max >= 1e6) { scale = 1e6; suffix = "M/s"; } else if (max >= 1e3) { scale = 1e3; suffix = "k/s"; } else suffix = "/s";
  }
  let step = niceStep(max / scale / 5);
  if (unit === "count") step = Math.max(1, step);
  const top = Math.ceil(max / scale / step - 1e-9) * step;
  const ticks = [];
  for (let v = 0; v <= top + step / 2; v += step) ticks.push({ value: v * scale, label: trimNum(v) + suffix });
  return { top: top * scale, ticks };
}

// Time-axis ticks for the last `spanMs`: whole seconds or minutes before
// now (now, -30s, -1m, -2m, ...), at most six.
function timeTicks(spanMs) {
  const steps = [5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600].map((s) => s * 1000);
  const step = steps.find((x) => spanMs / x <= 5) || steps[steps.length - 1];
  const out = [];
  for (let ago = 0; ago <= spanMs + 1; ago += step) {
    const s = ago / 1000;
    out.push({ ago, label: ago === 0 ? "now" : s % 60 === 0 ? `-${s / 60}m` : `-${s}s` });
  }
  return out;
}

// A time-series line chart on a canvas. `series` is
// [{ label, color, points: [[tMs, value], ...] }]. The canvas's data-ticks
// holds the y labels drawn, data-points the number of points and
// data-first-t the oldest point's time (for tests and screen readers).
function drawLineChart(canvas, series, opts = {}) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth, h = canvas.clientHeight;
  if (!w || !h) return;
  canvas.width = w * dpr; canvas.height = h * dpr;
  const ctx = canvas.getContext("2d");
  ctx.scale(dpr, dpr);
  ctx.clearRect(0, 0, w, h);
  const colors = chartColors();
  const pad = { l: 72, r: 14, t: 12, b: 26 };
  const pw = w - pad.l - pad.r, ph = h - pad.t - pad.b;
  const now = Date.now();
  const span = opts.spanMs || 120000;
  const t0 = now - span;
  const shown = series.map((s) => ({ ...s, pts: s.points.filter((p) => p[0] >= t0 - 5000) }));
  const all = shown.flatMap((s) => s.pts);
  const { top, ticks } = niceTicks(Math.max(0, ...all.map((p) => p[1])), opts.unit || "count");
  ctx.font = "11px " + getComputedStyle(document.body).fontFamily;
  ctx.fillStyle = colors.ink;
  ctx.strokeStyle = colors.grid;
  ctx.lineWidth = 1;
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  for (const tick of ticks) {
    const y = pad.t + ph - (ph * tick.value) / top;
    ctx.beginPath(); ctx.moveTo(pad.l, Math.round(y) + 0.5); ctx.lineTo(pad.l + pw, Math.round(y) + 0.5); ctx.stroke();
    ctx.fillText(tick.label, pad.l - 8, y);
  }
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  for (const tick of timeTicks(span)) {
    const x = pad.l + pw - (pw * tick.ago) / span;
    ctx.textAlign = tick.ago === 0 ? "right" : "center";
    ctx.fillText(tick.label, x, pad.t + ph + 8);
  }
  canvas.dataset.ticks = JSON.stringify(ticks.map((t) => t.label));
  canvas.dataset.points = String(all.length);
  canvas.dataset.firstT = all.length ? String(Math.min(...all.map((p) => p[0]))) : "";
  canvas.dataset.ink = colors.ink;
  const xOf = (t) => pad.l + ((t - t0) / span) * pw;
  const yOf = (v) => pad.t + ph - (v / top) * ph;
  for (const s of shown) {
    const pts = s.pts;
    if (!pts.length) continue;
    ctx.save();
    ctx.beginPath();
    ctx.rect(pad.l, pad.t, pw, ph + 1);
    ctx.clip();
    if (pts.length === 1) {
      ctx.fillStyle = s.color;
      ctx.beginPath(); ctx.arc(xOf(pts[0][0]), yOf(pts[0][1]), 3, 0, 2 * Math.PI); ctx.fill();
      ctx.restore();
      continue;
    }
    const grad = ctx.createLinearGradient(0, pad.t, 0, pad.t + ph);
    grad.addColorStop(0, s.color + "44");
    grad.addColorStop(1, s.color + "00");
    ctx.beginPath();
    ctx.moveTo(xOf(pts[0][0]), yOf(0));
    for (const p of pts) ctx.lineTo(xOf(p[0]), yOf(p[1]));
    ctx.lineTo(xOf(pts[pts.length - 1][0]), yOf(0));
    ctx.closePath();
    ctx.fillStyle = grad;
    ctx.fill();
    ctx.beginPath();
    pts.forEach((p, i) => (i ? ctx.lineTo(xOf(p[0]), yOf(p[1])) : ctx.moveTo(xOf(p[0]), yOf(p[1]))));
    ctx.strokeStyle = s.color;
    ctx.lineWidth = 2;
    ctx.lineJoin = "round";
    ctx.stroke();
    ctx.restore();
  }
}

// Horizontal bars: [{ label, value }].
function drawBarChart(canvas, bars, opts = {}) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth;
  const rowH = 26;
  const h = Math.max(60, bars.length * rowH + 30);
  canvas.style.height = h + "px";
  canvas.width = w * dpr; canvas.height = h * dpr;
  const ctx = canvas.getContext("2d");
  ctx.scale(dpr, dpr);
  ctx.clearRect(0, 0, w, h);
  ctx.font = "12px " + getComputedStyle(document.body).fontFamily;
  const colors = chartColors();
  const labelW = Math.min(220, Math.max(80, ...bars.map((b) => ctx.measureText(b.label).width + 16)));
  const max = niceCeil(Math.max(1, ...bars.map((b) => b.value)));
  const pw = w - labelW - 70;
  if (!bars.length) {
    ctx.fillStyle = colors.ink; ctx.textAlign = "center";
    ctx.fillText("no committed offsets", w / 2, h / 2);
    return;
  }
  bars.forEach((b, i) => {
    const y = 10 + i * rowH;
    ctx.fillStyle = colors.ink; ctx.textAlign = "right"; ctx.textBaseline = "middle";
    let label = b.label;
    while (label.length > 4 && ctx.measureText(label).width > labelW - 16) label = label.slice(2);
    if (label !== b.label) label = "…" + label;
    ctx.fillText(label, labelW - 8, y + rowH / 2 - 2);
    ctx.fillStyle = colors.track;
    ctx.fillRect(labelW, y + 4, pw, rowH - 12);
    const bw = (b.value / max) * pw;
    ctx.fillStyle = b.value > 0 ? (opts.color || "#f59e0b") : "#14b8a6";
    ctx.fillRect(labelW, y + 4, Math.max(bw, b.value > 0 ? 2 : 0), rowH - 12);
    ctx.fillStyle = colors.text; ctx.textAlign = "left";
    ctx.fillText(fmtInt(b.value), labelW + pw + 8, y + rowH / 2 - 2);
  });
}

function niceCeil(v) {
  if (v <= 0) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

// ---------------------------------------------------------------- throughput history

// Throughput for the overview charts, from the broker's own recent
// history (GET /v1/metrics/history: 5 s samples over the last 15
// minutes), so a reload or a second tab shows the same past.
const throughput = { msgs: [], bytesIn: [], bytesOut: [], intervalMs: 5000, retentionMs: 900000, loaded: false };
async function sampleThroughput() {
  try {
    const h = await api("GET", "/v1/metrics/history");
    throughput.intervalMs = h.interval_ms;
    throughput.retentionMs = h.retention_ms;
    throughput.msgs = h.samples.map((x) => [x.t_ms, x.messages_in_per_s]);
    throughput.bytesIn = h.samples.map((x) => [x.t_ms, x.bytes_in_per_s]);
    throughput.bytesOut = h.samples.map((x) => [x.t_ms, x.bytes_out_per_s]);
    throughput.loaded = true;
  } catch (_) { /* not signed in, no DESCRIBE on the cluster, or unreachable: the pill shows it */ }
}

// The overview charts' time span: everything the broker has (at least two
// minutes, so a fresh broker's first points do not fill the width).
function throughputSpanMs() {
  const first = throughput.msgs.length ? throughput.msgs[0][0] : Date.now();
  const had = Date.now() - first + throughput.intervalMs;
  return Math.min(throughput.retentionMs, Math.max(120000, Math.ceil(had / 60000) * 60000));
}

// ---------------------------------------------------------------- router

const pages = {};
let cleanup = [];
function onLeave(fn) { cleanup.push(fn); }

function route() {
  // A dialog belongs to the page that opened it.
  closeModal();
  for (const fn of cleanup) { try { fn(); } catch (_) { /* ignore */ } }
  cleanup = [];
  const hash = location.hash.replace(/^#\/?/, "") || "overview";
  const [page, ...rest] = hash.split("/").map(decodeURIComponent);
  const handler = pages[page] || pages.overview;
  $$(".sidebar nav a").forEach((a) => a.classList.toggle("active", a.dataset.page === page));
  $("#view").innerHTML = "";
  handler(...rest);
}

function setTitle(t) { $("#page-title").textContent = t; document.title = t + " · Sluice"; }

// Runs `fn` now and every `ms` until the page is left; `fn` gets a
// function that stops it sooner (a page that found nothing to show).
function every(ms, fn) {
  let id = null;
  const stop = () => { if (id != null) clearInterval(id); id = null; };
  id = setInterval(() => fn(stop), ms);
  onLeave(stop);
  fn(stop);
}

// What a page shows for a resource that does not exist, in place of its
// panels and buttons.
function notFound(title, text, backHref, backText) {
  $("#view").innerHTML = `<div class="panel not-found" id="not-found"><h2>${esc(title)}</h2><p>${esc(text)}</p>
    <a class="link" href="${backHref}">${esc(backText)}</a></div>`;
}

// ---------------------------------------------------------------- stat cards

// Lays out a row of stat cards so every row holds the same number of
// cards, give or take one: 7 cards are one row, or 4 + 3, or 3 + 2 + 2,
// never 6 + 1. Each row is as wide as the container, so a row of fewer
// cards has wider ones.
const CARD_MIN_PX = 160, CARD_GAP_PX = 14;
const cardObserver = new ResizeObserver((entries) => entries.forEach((e) => layoutCards(e.target)));

function layoutCards(el) {
  const cards = Array.from(el.children).filter((c) => c.classList.contains("card"));
  const n = cards.length;
  if (!n || !el.clientWidth) return;
  const fit = Math.max(1, Math.floor((el.clientWidth + CARD_GAP_PX) / (CARD_MIN_PX + CARD_GAP_PX)));
  const rows = Math.ceil(n / fit);
  const small = Math.floor(n / rows), big = small + (n % rows ? 1 : 0);
  const bigRows = n % rows; // the first rows take the extra card
  const cols = big === small ? small : small * big;
  el.style.gridTemplateColumns = `repeat(${cols}, minmax(0, 1fr))`;
  let i = 0;
  for (let r = 0; r < rows; r++) {
    const inRow = r < bigRows ? big : small;
    for (let k = 0; k < inRow; k++) cards[i++].style.gridColumn = `span ${cols / inRow}`;
  }
}

// Fills a .cards container and balances its rows (again on every resize).
function setCards(el, html) {
  if (!el) return;
  el.innerHTML = html;
  layoutCards(el);
  cardObserver.observe(el);
}

// ---------------------------------------------------------------- overview

pages.overview = function () {
  setTitle("Overview");
  const v = $("#view");
  v.innerHTML = `
    <div class="cards" id="ov-cards"></div>
    <div class="grid-2">
      <div class="panel"><div class="panel-head"><h2>Messages in</h2><span class="legend"><span><i style="background:#14b8a6"></i>messages / s</span></span></div>
        <div class="panel-body"><canvas class="chart" id="chart-msgs"></canvas></div></div>
      <div class="panel"><div class="panel-head"><h2>Bytes</h2><span class="legend"><span><i style="background:#3b82f6"></i>in</span><span><i style="background:#f59e0b"></i>out</span></span></div>
        <div class="panel-body"><canvas class="chart" id="chart-bytes"></canvas></div></div>
    </div>
    <div class="grid-2">
      <div class="panel"><div class="panel-head"><h2>Brokers</h2></div><div id="ov-brokers"></div></div>
      <div class="panel"><div class="panel-head"><h2>Largest topics</h2><a class="link" href="#/topics">All topics →</a></div><div id="ov-topics"></div></div>
    </div>`;
  const draw = () => {
    const spanMs = throughputSpanMs();
    drawLineChart($("#chart-msgs"), [{ label: "msgs", color: "#14b8a6", points: throughput.msgs }], { unit: "rate", spanMs });
    drawLineChart($("#chart-bytes"), [
      { label: "in", color: "#3b82f6", points: throughput.bytesIn },
      { label: "out", color: "#f59e0b", points: throughput.bytesOut },
    ], { unit: "bytes", spanMs });
  };
  every(2000, async () => {
    try {
      const [c, t, g] = await Promise.all([api("GET", "/v1/cluster"), api("GET", "/v1/topics"), api("GET", "/v1/groups"),
        throughput.loaded ? null : sampleThroughput()]);
      const last = (arr) => (arr.length ? arr[arr.length - 1][1] : 0);
      setCards($("#ov-cards"), [
        ["Brokers", c.brokers.length, `node ${c.node_id} · up ${fmtDuration(c.uptime_ms)}`],
        ["Topics", c.topic_count, `${t.topics.filter((x) => x.internal).length} internal`],
        ["Partitions", c.partition_count, c.quorum ? `across ${c.brokers.filter((b) => !b.fenced).length} live brokers` : "all led by this node"],
        ["Consumer groups", g.groups.length, `${fmtInt(g.groups.reduce((a, x) => a + x.total_lag, 0))} total lag`],
        ["Messages", fmtInt(c.total_messages), fmtRate(last(throughput.msgs)) + " now"],
        ["Data on disk", fmtBytes(c.total_size_bytes), fmtBytes(last(throughput.bytesIn)) + "/s in"],
        ["Connections", c.connections, "Kafka clients"],
      ].map(([l, val, sub]) => `<div class="card"><div class="label">${l}</div><div class="value">${val}</div><div class="sub">${esc(sub)}</div></div>`).join(""));
      // In a cluster: each broker's quorum role and lag as this node sees
      // them (lag only when this node is the Raft leader).
      const members = new Map(((c.quorum && c.quorum.nodes) || []).map((n) => [n.id, n]));
      const quorumHead = c.quorum
        ? `<div class="sub mono">quorum: leader ${c.quorum.leader ?? "none"} · term ${c.quorum.term} · applied ${c.quorum.applied_index ?? "-"} · this node ${esc(c.quorum.state)}</div>`
        : "";
      $("#ov-brokers").innerHTML = `${quorumHead}<table><thead><tr><th>ID</th><th>Host</th><th>Port</th><th>Rack</th><th>Role</th><th>Quorum</th><th class="num">Lag</th><th>Version</th></tr></thead><tbody>${
        c.brokers.map((b) => {
          const m = members.get(b.node_id);
          const role = (b.is_controller ? '<span class="badge teal">controller</span> ' : "") + (b.fenced ? '<span class="badge warn">fenced</span>' : "");
          return `<tr><td class="mono">${b.node_id}</td><td class="mono">${esc(b.host)}</td><td class="mono">${b.port}</td><td class="mono">${esc(b.rack ?? "")}</td><td>${role}</td><td>${m ? esc(m.role) : (c.quorum ? "—" : "")}</td><td class="num">${m && m.lag != null ? m.lag : ""}</td><td class="mono">${esc(c.version)}</td></tr>`;
        }).join("")
      }</tbody></table>`;
      const top = t.topics.slice().sort((a, b) => b.size_bytes - a.size_bytes).slice(0, 6);
      $("#ov-topics").innerHTML = top.length
        ? `<table><thead><tr><th>Topic</th><th class="num">Partitions</th><th class="num">Messages</th><th class="num">Size</th></tr></thead><tbody>${
          top.map((x) => `<tr><td><a class="link" href="#/topic/${encodeURIComponent(x.name)}">${esc(x.name)}</a></td><td class="num">${x.partition_count}</td><td class="num">${fmtInt(x.messages)}</td><td class="num">${fmtBytes(x.size_bytes)}</td></tr>`).join("")
        }</tbody></table>`
        : '<div class="empty">No topics yet. <a class="link" href="#/topics">Create one</a>.</div>';
    } catch (e) { /* shown by the status pill */ }
    draw();
  });
  const onResize = () => draw();
  window.addEventListener("resize", onResize);
  onLeave(() => window.removeEventListener("resize", onResize));
};

// ---------------------------------------------------------------- topics

pages.topics = function () {
  setTitle("Topics");
  const v = $("#view");
  v.innerHTML = `
    <div class="panel">
      <div class="panel-head">
        <div class="toolbar"><input id="topic-filter" placeholder="Filter topics…" style="width:260px">
          <label style="font-size:12px;color:var(--ink-2)"><input type="checkbox" id="show-internal"> show internal</label></div>
        <button class="primary" id="create-topic-btn">+ Create topic</button>
      </div>
      <div id="topics-table"><div class="empty">Loading…</div></div>
    </div>`;
  let topics = [];
  const render = () => {
    const f = $("#topic-filter").value.trim().toLowerCase();
    const internal = $("#show-internal").checked;
    const rows = topics.filter((t) => (internal || !t.internal) && t.name.toLowerCase().includes(f));
    $("#topics-table").innerHTML = rows.length
      ? `<table id="topics"><thead><tr><th>Name</th><th class="num">Partitions</th><th class="num">Replicas</th><th class="num">Messages</th><th class="num">Size</th><th></th></tr></thead><tbody>${
        rows.map((t) => `<tr data-topic="${esc(t.name)}">
          <td><a class="link" href="#/topic/${encodeURIComponent(t.name)}">${esc(t.name)}</a> ${t.internal ? '<span class="badge">internal</span>' : ""}</td>
          <td class="num">${t.partition_count}</td><td class="num">${t.replication_factor}</td>
          <td class="num">${fmtInt(t.messages)}</td><td class="num">${fmtBytes(t.size_bytes)}</td>
          <td><div class="row-actions"><button class="small" data-browse="${esc(t.name)}">Browse</button>${t.internal ? "" : `<button class="small danger" data-delete="${esc(t.name)}">Delete</button>`}</div></td></tr>`).join("")
      }</tbody></table>`
      : '<div class="empty">No topics match.</div>';
  };
  const load = async () => {
    try { topics = (await api("GET", "/v1/topics")).topics; render(); } catch (e) { toast(e.message, true); }
  };
  $("#topic-filter").addEventListener("input", render);
  $("#show-internal").addEventListener("change", render);
  $("#create-topic-btn").addEventListener("click", () => createTopicDialog(load));
  $("#topics-table").addEventListener("click", async (ev) => {
    const b = ev.target.closest("button");
    if (!b) return;
    if (b.dataset.browse) location.hash = "#/messages/" + encodeURIComponent(b.dataset.browse);
    if (b.dataset.delete) {
      const name = b.dataset.delete;
      if (!(await confirmDialog(`Delete topic “${name}”?`, "Its data is removed from disk. This cannot be undone.", "Delete"))) return;
      try { await api("DELETE", "/v1/topics/" + encodeURIComponent(name)); toast(`Deleted ${name}`); load(); } catch (e) { toast(e.message, true); }
    }
  });
  every(5000, load);
};

// The open dialog's close function, or null. One dialog at a time: Esc, a
// click on the backdrop and leaving the page all close it, and
// `onDismiss` runs when it closes without its own button (a confirm
// answers "no").
let openModal = null;

function modal(html, onDismiss) {
  closeModal();
  const m = $("#modal");
  m.innerHTML = `<div class="modal" role="dialog" aria-modal="true">${html}</div>`;
  m.hidden = false;
  let closed = false;
  const close = (dismissed = false) => {
    if (closed) return;
    closed = true;
    m.hidden = true; m.innerHTML = "";
    if (openModal === close) openModal = null;
    if (dismissed && onDismiss) onDismiss();
  };
  openModal = close;
  m.onclick = (e) => { if (e.target === m) close(true); };
  return { root: m, close: () => close(false) };
}

function closeModal() {
  if (openModal) openModal(true);
}

document.addEventListener("keydown", (ev) => {
  if (ev.key === "Escape" && openModal) { ev.preventDefault(); closeModal(); }
});

function confirmDialog(title, text, action) {
  return new Promise((resolve) => {
    const { root, close } = modal(`<h3>${esc(title)}</h3><div class="body">${esc(text)}</div>
      <div class="foot"><button id="confirm-cancel">Cancel</button><button class="primary" id="confirm-ok" style="background:var(--danger);border-color:var(--danger)">${esc(action)}</button></div>`,
    () => resolve(false));
    $("#confirm-cancel", root).onclick = () => { close(); resolve(false); };
    $("#confirm-ok", root).onclick = () => { close(); resolve(true); };
  });
}

function createTopicDialog(done) {
  const { root, close } = modal(`<h3>Create topic</h3>
    <div class="body">
      <div class="field"><label for="new-topic-name">Name</label><input id="new-topic-name" placeholder="orders" autofocus></div>
      <div class="field"><label for="new-topic-partitions">Partitions</label><input id="new-topic-partitions" type="number" min="1" value="3"></div>
      <div class="field"><label for="new-topic-retention">Retention</label>
        <select id="new-topic-retention"><option value="">Broker default</option><option value="3600000">1 hour</option><option value="86400000">1 day</option><option value="604800000">7 days</option><option value="-1">Forever</option></select></div>
      <div class="field"><label for="new-topic-cleanup">Cleanup policy</label>
        <select id="new-topic-cleanup"><option value="">delete (default)</option><option value="compact">compact</option></select></div>
      <div class="error" id="new-topic-error"></div>
    </div>
    <div class="foot"><button id="create-topic-cancel">Cancel</button><button class="primary" id="create-topic-submit">Create</button></div>`);
  $("#new-topic-name", root).focus();
  $("#create-topic-cancel", root).onclick = close;
  const submit = async () => {
    const configs = {};
    const ret = $("#new-topic-retention", root).value;
    if (ret) configs["retention.ms"] = ret;
    const cp = $("#new-topic-cleanup", root).value;
    if (cp) configs["cleanup.policy"] = cp;
    const name = $("#new-topic-name", root).value.trim();
    try {
      await api("POST", "/v1/topics", { name, partitions: parseInt($("#new-topic-partitions", root).value, 10), configs });
      close();
      toast(`Created topic ${name}`);
      done();
    } catch (e) { $("#new-topic-error", root).textContent = e.message; }
  };
  $("#create-topic-submit", root).onclick = submit;
  $("#new-topic-name", root).addEventListener("keydown", (e) => { if (e.key === "Enter") submit(); });
}

pages.topic = function (name, tab) {
  setTitle(name);
  const v = $("#view");
  v.innerHTML = `<div class="crumbs"><a href="#/topics">Topics</a> / <b>${esc(name)}</b></div>
    <div class="tabs" id="tp-tabs"><button class="tab active" data-tab="overview" id="tp-tab-overview">Overview</button><button class="tab" data-tab="table" id="tp-tab-table" hidden>Table</button></div>
    <div id="tp-table-view" hidden></div>
    <div id="tp-overview">
    <div class="cards" id="tp-cards"></div>
    <div class="panel"><div class="panel-head"><h2>Partitions</h2>
      <div class="row-actions"><button class="small" id="tp-browse">Browse messages</button><button class="small" id="tp-tail">Live tail</button><button class="small" id="tp-produce">Produce…</button><button class="small" id="tp-add-partitions">Add partitions…</button></div></div>
      <div id="tp-partitions"></div></div>
    <div class="panel"><div class="panel-head"><h2>Configs</h2>
      <div class="toolbar"><input id="cfg-filter" placeholder="Filter configs…" style="width:200px">
        <label style="font-size:12px;color:var(--ink-2)"><input type="checkbox" id="cfg-overrides-only"> overrides only</label></div></div>
      <div id="tp-configs"><div class="empty">Loading…</div></div></div>
    </div>`;
  let table = null;
  const showTab = (which) => {
    $$("#tp-tabs .tab").forEach((b) => b.classList.toggle("active", b.dataset.tab === which));
    $("#tp-overview").hidden = which !== "overview";
    $("#tp-table-view").hidden = which !== "table";
    if (which === "table" && !table) table = kvTable($("#tp-table-view"), name);
  };
  $("#tp-tabs").addEventListener("click", (ev) => {
    const b = ev.target.closest("button[data-tab]");
    if (b) location.hash = `#/topic/${encodeURIComponent(name)}` + (b.dataset.tab === "table" ? "/table" : "");
  });
  $("#tp-browse").onclick = () => { location.hash = "#/messages/" + encodeURIComponent(name); };
  $("#tp-tail").onclick = () => { location.hash = "#/tail/" + encodeURIComponent(name); };
  $("#tp-produce").onclick = () => produceDialog(name, load);
  let partitionCount = 0;
  let partitions = [];
  let paintedPartitions = null;
  $("#tp-add-partitions").onclick = () => addPartitionsDialog(name, partitionCount, load);
  $("#tp-partitions").addEventListener("click", (ev) => {
    const b = ev.target.closest("button[data-delete-records]");
    if (!b) return;
    const p = partitions.find((x) => String(x.partition) === b.dataset.deleteRecords);
    if (p) deleteRecordsDialog(name, p, load);
  });
  // Every topic config (GET /v1/topics/{t}/configs): overrides first
  // marked as such, the rest with the broker default in force.
  let configs = [];
  let configsHtml = null;
  const renderConfigs = () => {
    const f = $("#cfg-filter").value.trim().toLowerCase();
    const only = $("#cfg-overrides-only").checked;
    const rows = configs.filter((c) => (!only || !c.is_default) && c.name.includes(f))
      .sort((a, b) => (a.is_default - b.is_default) || a.name.localeCompare(b.name));
    const html = rows.length
      ? `<table id="topic-configs"><thead><tr><th>Config</th><th>Value</th><th>Source</th><th></th></tr></thead><tbody>${rows.map((c) => `<tr data-config="${esc(c.name)}">
          <td class="mono">${esc(c.name)}</td><td class="mono value">${c.sensitive ? '<span class="badge">hidden</span>' : esc(c.value)}</td>
          <td class="source">${c.is_default ? '<span class="badge">default</span>' : '<span class="badge teal">override</span>'}</td>
          <td><div class="row-actions"><button class="small" data-edit="${esc(c.name)}">Edit</button>${c.is_default ? "" : `<button class="small" data-reset="${esc(c.name)}">Reset to default</button>`}</div></td></tr>`).join("")}</tbody></table>`
      : `<div class="empty">${only ? "Every config uses the broker default." : "No config matches."}</div>`;
    // Repaint only on a change, so a button is not replaced under the pointer.
    if (html !== configsHtml) { configsHtml = html; $("#tp-configs").innerHTML = html; }
  };
  const loadConfigs = async () => {
    try { configs = (await api("GET", `/v1/topics/${encodeURIComponent(name)}/configs`)).configs; } catch (e) {
      if ($("#tp-configs")) $("#tp-configs").innerHTML = `<div class="empty">${esc(e.message)}</div>`;
      return;
    }
    if ($("#tp-configs")) renderConfigs();
  };
  $("#cfg-filter").addEventListener("input", renderConfigs);
  $("#cfg-overrides-only").addEventListener("change", renderConfigs);
  $("#tp-configs").addEventListener("click", async (ev) => {
    const edit = ev.target.closest("button[data-edit]");
    if (edit) {
      const c = configs.find((x) => x.name === edit.dataset.edit);
      if (c) editConfigDialog(name, c, () => { load(); loadConfigs(); });
      return;
    }
    const b = ev.target.closest("button[data-reset]");
    if (!b) return;
    try {
      await api("PATCH", `/v1/topics/${encodeURIComponent(name)}/configs`, { delete: [b.dataset.reset] });
      toast(`Reset ${b.dataset.reset} to the default`);
      load(); loadConfigs();
    } catch (e) { toast(e.message, true); }
  });
  async function load() {
    let t;
    try { t = await api("GET", "/v1/topics/" + encodeURIComponent(name)); } catch (e) {
      if (e.status === 404) {
        notFound(`No topic “${name}”`, "The cluster has no topic by this name; it may have been deleted.", "#/topics", "← All topics");
      } else v.innerHTML = `<div class="empty">${esc(e.message)}</div>`;
      return;
    }
    partitionCount = t.partitions.length;
    const total = (k) => t.partitions.reduce((a, p) => a + p[k], 0);
    setCards($("#tp-cards"), [
      ["Partitions", t.partitions.length], ["Messages", fmtInt(t.partitions.reduce((a, p) => a + Math.max(0, p.high_watermark - p.log_start_offset), 0))],
      ["Size", fmtBytes(total("size_bytes"))], ["Segments", total("segment_count")],
    ].map(([l, x]) => `<div class="card"><div class="label">${l}</div><div class="value">${x}</div></div>`).join("")
      + `<div class="card"><div class="label">Topic ID</div><div class="sub mono" style="margin-top:8px">${esc(t.topic_id)}</div></div>`);
    partitions = t.partitions;
    const partitionsHtml = `<table id="partition-table"><thead><tr><th>Partition</th><th>Leader</th><th>Replicas</th><th>ISR</th><th class="num">Epoch</th><th class="num">Start offset</th><th class="num">High watermark</th><th class="num">End offset</th><th class="num">Messages</th><th class="num">Size</th><th></th></tr></thead><tbody>${
      t.partitions.map((p) => `<tr data-partition="${p.partition}"><td class="mono"><a class="link" href="#/messages/${encodeURIComponent(name)}/${p.partition}">${p.partition}</a></td><td class="mono">${p.leader}</td><td class="mono">${p.replicas.join(", ")}</td><td class="mono">${p.isr.join(", ")}</td>
        <td class="num">${p.leader_epoch}</td><td class="num start-offset">${fmtInt(p.log_start_offset)}</td><td class="num">${fmtInt(p.high_watermark)}</td><td class="num">${fmtInt(p.log_end_offset)}</td>
        <td class="num">${fmtInt(Math.max(0, p.high_watermark - p.log_start_offset))}</td><td class="num">${fmtBytes(p.size_bytes)}</td>
        <td>${t.internal ? "" : `<div class="row-actions"><button class="small danger" data-delete-records="${p.partition}">Delete records…</button></div>`}</td></tr>`).join("")
    }</tbody></table>`;
    // Repaint only on a change, so a button is not replaced under the pointer.
    if (partitionsHtml !== paintedPartitions) { paintedPartitions = partitionsHtml; $("#tp-partitions").innerHTML = partitionsHtml; }
    // The key-value view exists only for compacted topics.
    const compacted = (t.configs["cleanup.policy"] || "").split(",").map((x) => x.trim()).includes("compact");
    $("#tp-tab-table").hidden = !compacted;
    if (tab === "table" && compacted && !table) showTab("table");
  }
  every(3000, load);
  every(10000, loadConfigs);
};

// The "Table" tab of a compacted topic: each live key's latest value
// (read_committed), by key prefix, a page at a time.
const KV_PAGE_KEYS = 50;

function kvTable(root, topic) {
  root.innerHTML = `<div class="panel"><div class="panel-head"><h2 id="kv-summary">Table</h2><span class="hint">Latest committed value per key</span></div>
    <div class="panel-body"><div class="toolbar">
      <div class="field"><label for="kv-prefix">Key prefix</label><input id="kv-prefix" placeholder="prefix…" style="width:220px"></div>
      <button class="primary" id="kv-search">Search</button>
      <button id="kv-first" hidden>First page</button><button id="kv-next" hidden>Next</button></div></div>
    <div id="kv-table"><div class="empty">Loading…</div></div></div>`;
  let prefix = "";
  let after = null;
  let next = null;
  let rows = [];
  const load = async () => {
    let q = `limit=${KV_PAGE_KEYS}&values=true&decode=true`;
    if (prefix) q += `&prefix=${encodeURIComponent(prefix)}`;
    if (after) q += `&after=${encodeURIComponent(after)}`;
    let r;
    try { r = await api("GET", `/v1/topics/${encodeURIComponent(topic)}/keys?${q}`); } catch (e) {
      $("#kv-table", root).innerHTML = `<div class="empty">${esc(e.message)}</div>`; return;
    }
    rows = r.keys;
    next = r.next_after;
    $("#kv-next", root).hidden = next == null;
    $("#kv-first", root).hidden = after == null;
    const elsewhere = r.partitions_elsewhere.length ? ` (partitions ${r.partitions_elsewhere.join(", ")} are led by other brokers)` : "";
    $("#kv-summary", root).textContent = `${rows.length} key${rows.length === 1 ? "" : "s"}` + (prefix ? ` starting with “${prefix}”` : "") + elsewhere;
    $("#kv-table", root).innerHTML = rows.length
      ? `<table id="kv-keys"><thead><tr><th>Key</th><th>Value</th><th class="num">Partition</th><th class="num">Offset</th><th>Timestamp</th></tr></thead><tbody>${
        rows.map((k, i) => `<tr class="kv-row clickable" data-i="${i}" data-key="${esc(k.key_base64)}"><td class="mono">${k.record ? keyCell(k.record) : esc(k.key ?? k.key_base64)}</td>
          <td class="msg-value">${k.record ? preview(k.record) : '<span class="badge">gone</span>'}</td><td class="num">${k.partition}</td><td class="num">${fmtInt(k.offset)}</td><td class="mono">${fmtTime(k.timestamp_ms)}</td></tr>`).join("")
      }</tbody></table>`
      : '<div class="empty">No keys.</div>';
  };
  const search = () => { prefix = $("#kv-prefix", root).value; after = null; load(); };
  $("#kv-search", root).onclick = search;
  $("#kv-prefix", root).addEventListener("keydown", (ev) => { if (ev.key === "Enter") search(); });
  $("#kv-next", root).onclick = () => { after = next; load(); };
  $("#kv-first", root).onclick = () => { after = null; load(); };
  $("#kv-table", root).addEventListener("click", (ev) => {
    const tr = ev.target.closest("tr.kv-row");
    if (!tr) return;
    if (tr.nextElementSibling && tr.nextElementSibling.classList.contains("msg-detail")) { tr.nextElementSibling.remove(); return; }
    const k = rows[Number(tr.dataset.i)];
    if (!k || !k.record) return;
    const d = document.createElement("tr");
    d.className = "msg-detail";
    d.innerHTML = `<td colspan="5"><pre class="value">${renderValue(k.record, "auto").html}</pre></td>`;
    tr.after(d);
  });
  load();
  return { load };
}

function addPartitionsDialog(topic, current, done) {
  const { root, close } = modal(`<h3>Add partitions to ${esc(topic)}</h3>
    <div class="body">
      <div>The topic has ${current} partition${current === 1 ? "" : "s"}. Partitions can be added, never removed; keyed records may map to a different partition afterwards.</div>
      <div class="field"><label for="ap-count">New total</label><input id="ap-count" type="number" min="${current + 1}" value="${current + 1}"></div>
      <div class="error" id="ap-error"></div></div>
    <div class="foot"><button id="ap-cancel">Cancel</button><button class="primary" id="ap-submit">Add</button></div>`);
  $("#ap-count", root).focus();
  $("#ap-cancel", root).onclick = close;
  $("#ap-submit", root).onclick = async () => {
    const count = parseInt($("#ap-count", root).value, 10);
    if (!(count > current)) { $("#ap-error", root).textContent = `The new total must be more than ${current}.`; return; }
    try {
      await api("POST", `/v1/topics/${encodeURIComponent(topic)}/partitions`, { count });
      close();
      toast(`${topic} now has ${count} partitions`);
      done();
    } catch (e) { $("#ap-error", root).textContent = e.message; }
  };
}

// Kafka's DeleteRecords for one partition: the log start offset moves up
// to the given offset (or the high watermark: everything visible).
function deleteRecordsDialog(topic, p, done) {
  const { root, close } = modal(`<h3>Delete records of ${esc(topic)}-${p.partition}</h3>
    <div class="body">
      <div>The partition holds offsets ${fmtInt(p.log_start_offset)} to ${fmtInt(Math.max(p.log_start_offset, p.high_watermark - 1))}. Records below the chosen offset are deleted for every consumer; this cannot be undone.</div>
      <div class="field"><label for="dr-mode">Delete</label><select id="dr-mode"><option value="end">every record (up to the high watermark, ${fmtInt(p.high_watermark)})</option><option value="offset">records before an offset</option></select></div>
      <div class="field" id="dr-offset-field" hidden><label for="dr-offset">Before offset</label><input id="dr-offset" type="number" min="${p.log_start_offset}" max="${p.high_watermark}" value="${p.log_start_offset}"></div>
      <div class="error" id="dr-error"></div></div>
    <div class="foot"><button id="dr-cancel">Cancel</button><button class="primary" id="dr-submit" style="background:var(--danger);border-color:var(--danger)">Delete records</button></div>`);
  const mode = $("#dr-mode", root);
  mode.onchange = () => { $("#dr-offset-field", root).hidden = mode.value !== "offset"; };
  $("#dr-cancel", root).onclick = close;
  $("#dr-submit", root).onclick = async () => {
    let before = "end";
    if (mode.value === "offset") {
      const o = parseInt($("#dr-offset", root).value, 10);
      if (!(o >= 0)) { $("#dr-error", root).textContent = "Give an offset of 0 or more."; return; }
      before = String(o);
    }
    try {
      const r = await api("DELETE", `/v1/topics/${encodeURIComponent(topic)}/partitions/${p.partition}/records?before=${encodeURIComponent(before)}`);
      close();
      toast(`${topic}-${p.partition} now starts at offset ${r.log_start_offset}`);
      done();
    } catch (e) { $("#dr-error", root).textContent = e.message; }
  };
}

function editConfigDialog(topic, c, done) {
  const { root, close } = modal(`<h3>${esc(c.name)}</h3>
    <div class="body">
      <div class="kv" style="margin:0"><div>Topic</div><div class="mono">${esc(topic)}</div><div>Now</div><div class="mono">${c.sensitive ? "hidden" : esc(c.value)} ${c.is_default ? '<span class="badge">default</span>' : '<span class="badge teal">override</span>'}</div></div>
      <div class="field"><label for="cfg-edit-value">Value</label><input id="cfg-edit-value" class="mono" value="${c.sensitive ? "" : esc(c.value)}"></div>
      <div class="error" id="cfg-edit-error"></div></div>
    <div class="foot">${c.is_default ? "" : '<button id="cfg-edit-reset" style="margin-right:auto">Reset to default</button>'}<button id="cfg-edit-cancel">Cancel</button><button class="primary" id="cfg-edit-save">Save</button></div>`);
  const input = $("#cfg-edit-value", root);
  input.focus(); input.select();
  const patch = async (body, what) => {
    try {
      await api("PATCH", `/v1/topics/${encodeURIComponent(topic)}/configs`, body);
      close();
      toast(what);
      done();
    } catch (e) { $("#cfg-edit-error", root).textContent = e.message; }
  };
  $("#cfg-edit-cancel", root).onclick = close;
  $("#cfg-edit-save", root).onclick = () => patch({ set: { [c.name]: input.value.trim() } }, `Set ${c.name}`);
  input.addEventListener("keydown", (e) => { if (e.key === "Enter") $("#cfg-edit-save", root).click(); });
  if (!c.is_default) $("#cfg-edit-reset", root).onclick = () => patch({ delete: [c.name] }, `Reset ${c.name} to the default`);
}

function produceDialog(topic, done) {
  const { root, close } = modal(`<h3>Produce to ${esc(topic)}</h3>
    <div class="body">
      <div class="field"><label>Key (optional)</label><input id="p-key"></div>
      <div class="field"><label>Partition (optional)</label><input id="p-partition" type="number" min="0"></div>
      <div class="field"><label>Value</label><textarea id="p-value" rows="6">{"hello": "world"}</textarea></div>
      <div class="field"><label>Value is</label><select id="p-format"><option value="json">JSON</option><option value="text">Text</option></select></div>
      <div class="field"><label>Headers</label><div id="p-headers"></div><button class="small" id="p-add-header" type="button" style="align-self:start">+ Header</button></div>
      <div class="error" id="p-error"></div></div>
    <div class="foot"><button id="p-cancel">Cancel</button><button class="primary" id="p-send">Send</button></div>`);
  $("#p-cancel", root).onclick = close;
  const addHeader = () => {
    const row = document.createElement("div");
    row.className = "toolbar p-header";
    row.style.marginBottom = "6px";
    row.innerHTML = `<input class="p-header-key" placeholder="name" style="width:140px"><input class="p-header-value" placeholder="value" style="flex:1">
      <button class="small" type="button" title="Remove">×</button>`;
    $("button", row).onclick = () => row.remove();
    $("#p-headers", root).appendChild(row);
    $(".p-header-key", row).focus();
  };
  $("#p-add-header", root).onclick = addHeader;
  $("#p-send", root).onclick = async () => {
    const rec = {};
    const headers = $$(".p-header", root).map((row) => ({ key: $(".p-header-key", row).value.trim(), value: $(".p-header-value", row).value }))
      .filter((h) => h.key !== "");
    if (headers.length) rec.headers = headers;
    const key = $("#p-key", root).value;
    if (key) rec.key = key;
    const part = $("#p-partition", root).value;
    if (part !== "") rec.partition = parseInt(part, 10);
    const raw = $("#p-value", root).value;
    try {
      if ($("#p-format", root).value === "json") rec.value = JSON.parse(raw);
      else rec.value_base64 = btoa(String.fromCharCode(...new TextEncoder().encode(raw)));
      const r = await api("POST", `/v1/topics/${encodeURIComponent(topic)}/records`, { records: [rec] });
      close();
      toast(`Produced at partition ${r.offsets[0].partition}, offset ${r.offsets[0].offset}`);
      if (done) done();
    } catch (e) { $("#p-error", root).textContent = e.message; }
  };
}

// ---------------------------------------------------------------- messages

async function topicOptions(selected) {
  const { topics } = await api("GET", "/v1/topics");
  return topics.map((t) => `<option value="${esc(t.name)}"${t.name === selected ? " selected" : ""}>${esc(t.name)}</option>`).join("");
}

// The message browser. "All partitions" reads the topic-wide route (GET
// /v1/topics/{t}/records: merged by timestamp, filtered on the broker, a
// cursor per page); one partition reads that partition by offset, and the
// same filters then apply to the records loaded. The key filter also
// narrows the rows shown as it is typed.
pages.messages = async function (topicArg, partArg) {
  setTitle("Messages");
  const v = $("#view");
  v.innerHTML = `<div class="panel"><div class="panel-body"><div class="toolbar">
      <div class="field"><label for="msg-topic">Topic</label><select id="msg-topic" style="min-width:200px"></select></div>
      <div class="field"><label for="msg-partition">Partition</label><select id="msg-partition"></select></div>
      <div class="field"><label for="msg-mode">Start</label><select id="msg-mode">
        <option value="last">Newest</option><option value="first">Oldest</option><option value="offset">From offset</option><option value="timestamp">From time</option></select></div>
      <div class="field" id="msg-at-field" hidden><label for="msg-at">Offset</label><input id="msg-at" style="width:190px"></div>
      <div class="field"><label for="msg-limit">Limit</label><select id="msg-limit"><option>20</option><option selected>50</option><option>100</option><option>500</option></select></div>
      <div class="field"><label for="msg-format">Show value as</label><select id="msg-format"><option value="auto">Auto</option><option value="json">JSON</option><option value="text">Text</option><option value="hex">Hex</option></select></div>
      <button class="primary" id="msg-load">Load</button>
    </div>
    <div class="toolbar" style="margin-top:10px">
      <div class="field"><label for="msg-key">Key contains</label><input id="msg-key" placeholder="text…" style="width:150px"></div>
      <div class="field"><label for="msg-value">Value contains</label><input id="msg-value" placeholder="text…" style="width:170px"></div>
      <div class="field"><label for="msg-header">Header</label><input id="msg-header" placeholder="name or name=value" style="width:170px"></div>
      <div class="field"><label for="msg-from-ts">From (local time)</label><input id="msg-from-ts" type="datetime-local" step="1"></div>
      <div class="field"><label for="msg-to-ts">To (local time)</label><input id="msg-to-ts" type="datetime-local" step="1"></div>
    </div></div></div>
    <div class="panel"><div class="panel-head"><h2 id="msg-summary">Records</h2>
      <div class="row-actions"><span class="hint" id="msg-scan"></span><button class="small" id="msg-export-json" disabled>Export JSON</button><button class="small" id="msg-export-csv" disabled>Export CSV</button><button class="small" id="msg-more" hidden>Load more</button></div></div>
      <div id="msg-table"><div class="empty">Pick a topic and press Load.</div></div></div>`;
  let topicsHtml;
  try { topicsHtml = await topicOptions(topicArg); } catch (e) { toast(e.message, true); return; }
  $("#msg-topic").innerHTML = topicsHtml || "<option value=''>no topics</option>";
  const fillPartitions = async () => {
    const t = $("#msg-topic").value;
    if (!t) return;
    const d = await api("GET", "/v1/topics/" + encodeURIComponent(t));
    $("#msg-partition").innerHTML = `<option value="">All partitions</option>` + d.partitions.map((p) => `<option value="${p.partition}">${p.partition} (${fmtInt(p.high_watermark - p.log_start_offset)})</option>`).join("");
    $("#msg-partition").value = partArg != null ? partArg : "";
    syncMode();
  };
  // "From offset" needs one partition.
  const syncMode = () => {
    const all = $("#msg-partition").value === "";
    const offsetOpt = $("#msg-mode option[value=offset]");
    offsetOpt.disabled = all;
    if (all && $("#msg-mode").value === "offset") { $("#msg-mode").value = "last"; $("#msg-mode").onchange(); }
  };
  $("#msg-mode").onchange = () => {
    const m = $("#msg-mode").value;
    $("#msg-at-field").hidden = !(m === "offset" || m === "timestamp");
    $("label[for=msg-at]").textContent = m === "timestamp" ? "Time (local)" : "Offset";
    $("#msg-at").type = m === "timestamp" ? "datetime-local" : "text";
  };
  await fillPartitions();
  $("#msg-topic").onchange = () => { partArg = null; fillPartitions(); };
  $("#msg-partition").onchange = syncMode;
  let shown = [];      // records loaded, in the order shown
  let rows = [];       // the ones the filters let through
  let cursor = null;   // topic-wide: the next page's cursor
  let next = null;     // one partition: the next offset
  let scanned = 0, truncated = false;
  const fmtSel = $("#msg-format");
  const localMs = (sel) => { const x = $(sel).value; return x ? new Date(x).getTime() : null; };
  const filters = () => ({
    key: $("#msg-key").value, value: $("#msg-value").value, header: $("#msg-header").value.trim(),
    fromTs: localMs("#msg-from-ts"), toTs: localMs("#msg-to-ts"),
  });
  // The same tests the broker applies on the topic-wide route.
  const matches = (r, f) => {
    if (f.key && !(r.key || "").includes(f.key)) return false;
    if (f.value && !(r.value || "").includes(f.value)) return false;
    if (f.header) {
      const eq = f.header.indexOf("=");
      const name = eq < 0 ? f.header : f.header.slice(0, eq), value = eq < 0 ? null : f.header.slice(eq + 1);
      if (!r.headers.some((h) => h.key === name && (value == null || h.value === value))) return false;
    }
    if (f.fromTs != null && r.timestamp_ms < f.fromTs) return false;
    if (f.toTs != null && r.timestamp_ms > f.toTs) return false;
    return true;
  };
  const render = () => {
    const f = filters();
    rows = shown.filter((r) => matches(r, f));
    const filtered = f.key || f.value || f.header || f.fromTs != null || f.toTs != null;
    $("#msg-summary").textContent = `${rows.length} record${rows.length === 1 ? "" : "s"}` + (filtered && rows.length !== shown.length ? ` matching (of ${shown.length} loaded)` : "");
    $("#msg-scan").textContent = shown.length || scanned ? `${fmtInt(scanned)} scanned` + (truncated ? " · stopped at the scan limit: Load more looks further" : "") : "";
    $("#msg-export-json").disabled = $("#msg-export-csv").disabled = !rows.length;
    $("#msg-table").innerHTML = rows.length
      ? `<table id="messages"><thead><tr><th class="num">Partition</th><th class="num">Offset</th><th>Timestamp</th><th>Key</th><th>Value</th><th class="num">Size</th></tr></thead><tbody>${
        rows.map((r, i) => `<tr class="msg-row clickable" data-i="${i}" data-partition="${r.partition}" data-offset="${r.offset}"><td class="num mono">${r.partition}</td><td class="num mono">${r.offset}</td><td class="mono">${fmtTime(r.timestamp_ms)}</td>
          <td class="mono">${keyCell(r)}</td>
          <td class="msg-value">${preview(r)}</td><td class="num">${fmtBytes(r.value_size)}</td></tr>`).join("")
      }</tbody></table>`
      : '<div class="empty">No records.</div>';
  };
  const load = async (more) => {
    const t = $("#msg-topic").value, p = $("#msg-partition").value;
    if (!t) return;
    const limit = $("#msg-limit").value;
    const m = $("#msg-mode").value;
    const at = $("#msg-at").value.trim();
    try {
      if (p === "") {
        const f = filters();
        const q = new URLSearchParams({ limit, decode: "true" });
        if (more) q.set("cursor", cursor);
        else if (m === "last") q.set("from", "end");
        else if (m === "timestamp") q.set("from", String(at ? new Date(at).getTime() : 0));
        else q.set("from", "beginning");
        if (f.key) q.set("key_contains", f.key);
        if (f.value) q.set("value_contains", f.value);
        if (f.header) q.set("header", f.header);
        if (f.fromTs != null) q.set("from_ts", String(f.fromTs));
        if (f.toTs != null) q.set("to_ts", String(f.toTs));
        const r = await api("GET", `/v1/topics/${encodeURIComponent(t)}/records?${q}`);
        shown = more ? shown.concat(r.records) : r.records;
        cursor = r.cursor;
        scanned = (more ? scanned : 0) + r.scanned;
        truncated = r.truncated;
        // Newest-first pages end at the end; others go on while records remain.
        $("#msg-more").hidden = m === "last" && !more ? true : (r.end_reached && !r.truncated);
      } else {
        let q;
        if (more) q = `offset=${next}&limit=${limit}`;
        else if (m === "last") q = `last=${limit}`;
        else if (m === "first") q = `first=${limit}`;
        else if (m === "offset") q = `offset=${encodeURIComponent(at || "0")}&limit=${limit}`;
        else q = `timestamp=${at ? new Date(at).getTime() : 0}&limit=${limit}`;
        const r = await api("GET", `/v1/topics/${encodeURIComponent(t)}/partitions/${p}/records?${q}&decode=true`);
        shown = more ? shown.concat(r.records) : r.records;
        next = r.next_offset;
        scanned = (more ? scanned : 0) + r.records.length;
        truncated = false;
        $("#msg-more").hidden = !(r.next_offset < r.high_watermark);
      }
      render();
    } catch (e) { toast(e.message, true); }
  };
  $("#msg-load").onclick = () => load(false);
  $("#msg-more").onclick = () => load(true);
  for (const id of ["#msg-key", "#msg-value", "#msg-header", "#msg-from-ts", "#msg-to-ts"]) {
    $(id).addEventListener("input", render);
    $(id).addEventListener("keydown", (ev) => { if (ev.key === "Enter") load(false); });
  }
  fmtSel.onchange = () => { $$("tr.msg-detail").forEach((d) => d.remove()); };
  $("#msg-export-json").onclick = () => exportRecords(rows, $("#msg-topic").value, "json");
  $("#msg-export-csv").onclick = () => exportRecords(rows, $("#msg-topic").value, "csv");
  $("#msg-table").addEventListener("click", (ev) => {
    const tr = ev.target.closest("tr.msg-row");
    if (!tr) return;
    if (tr.nextElementSibling && tr.nextElementSibling.classList.contains("msg-detail")) { tr.nextElementSibling.remove(); return; }
    const rec = rows[Number(tr.dataset.i)];
    if (!rec) return;
    const val = renderValue(rec, fmtSel.value);
    const headers = rec.headers.length
      ? rec.headers.map((h) => `<div class="mono">${esc(h.key)}</div><div class="mono">${h.value == null ? (h.value_base64 == null ? "null" : esc(h.value_base64) + " (base64)") : esc(h.value)}</div>`).join("")
      : "<div>Headers</div><div>none</div>";
    const d = document.createElement("tr");
    d.className = "msg-detail";
    d.innerHTML = `<td colspan="6"><div class="kv"><div>Partition</div><div class="mono">${rec.partition}</div><div>Offset</div><div class="mono">${rec.offset}</div>
      <div>Timestamp</div><div class="mono">${fmtTime(rec.timestamp_ms)} (${rec.timestamp_ms}, ${esc(rec.timestamp_type)})</div>
      <div>Key</div><div class="mono">${rec.key_schema && rec.key_schema.data !== undefined ? esc(JSON.stringify(rec.key_schema.data)) + " " + schemaBadge(rec.key_schema) : rec.key == null ? (rec.key_base64 == null ? "null" : esc(rec.key_base64) + " (base64)") : esc(rec.key)}</div>${headers}
      ${rec.value_schema ? `<div>Value schema</div><div>${schemaBadge(rec.value_schema)}</div>` : ""}</div>
      <pre class="value">${val.html}</pre></td>`;
    tr.after(d);
  });
  if (topicArg) load(false);
};

// One record as exported: text where the bytes are UTF-8, base64 otherwise.
function exportable(r) {
  return {
    topic: r.topic, partition: r.partition, offset: r.offset, timestamp_ms: r.timestamp_ms, timestamp_type: r.timestamp_type,
    key: r.key, key_base64: r.key == null ? r.key_base64 : undefined,
    value: r.value, value_base64: r.value == null ? r.value_base64 : undefined,
    headers: r.headers.map((h) => ({ key: h.key, value: h.value ?? null })),
  };
}

function csvField(x) {
  if (x == null) return "";
  const t = String(x);
  return /[",\r\n]/.test(t) ? `"${t.replace(/"/g, '""')}"` : t;
}

// Downloads the records shown as a file made here in the browser.
function exportRecords(records, topic, kind) {
  let body, type;
  if (kind === "json") {
    body = JSON.stringify(records.map((r) => exportable({ topic, ...r })), null, 2);
    type = "application/json";
  } else {
    const head = ["topic", "partition", "offset", "timestamp_ms", "key", "value", "headers"];
    body = [head.join(",")].concat(records.map((r) => {
      const x = exportable({ topic, ...r });
      return [topic, x.partition, x.offset, x.timestamp_ms, x.key ?? x.key_base64, x.value ?? x.value_base64,
        x.headers.length ? JSON.stringify(x.headers) : ""].map(csvField).join(",");
    })).join("\r\n") + "\r\n";
    type = "text/csv";
  }
  const url = URL.createObjectURL(new Blob([body], { type: type + ";charset=utf-8" }));
  const a = document.createElement("a");
  a.href = url;
  a.download = `${topic}-records.${kind}`;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
  toast(`Exported ${records.length} record${records.length === 1 ? "" : "s"} as ${kind.toUpperCase()}`);
}

// ---------------------------------------------------------------- live tail

pages.tail = async function (topicArg) {
  setTitle("Live tail");
  const v = $("#view");
  v.innerHTML = `<div class="panel"><div class="panel-body"><div class="toolbar">
      <div class="field"><label for="tail-topic">Topic</label><select id="tail-topic" style="min-width:220px"></select></div>
      <div class="field"><label for="tail-last">Replay</label><select id="tail-last"><option value="0">new records only</option><option value="10">last 10 per partition</option><option value="100">last 100 per partition</option></select></div>
      <div class="field"><label for="tail-key">Key filter</label><input id="tail-key" placeholder="contains…"></div>
      <button class="primary" id="tail-start">Start</button><button id="tail-stop" disabled>Stop</button><button id="tail-clear">Clear</button>
      <span class="tail-status"><span class="live-dot" id="tail-dot"></span><span id="tail-status">stopped</span></span>
    </div></div></div>
    <div class="panel"><div id="tail-table"><div class="empty">Press Start to follow a topic.</div></div></div>`;
  try { $("#tail-topic").innerHTML = await topicOptions(topicArg); } catch (e) { toast(e.message, true); }
  let source = null, count = 0;
  const rows = [];
  const MAX_ROWS = 500;
  const stop = () => {
    if (source) source.close();
    source = null;
    $("#tail-dot").classList.remove("on");
    $("#tail-status").textContent = `stopped · ${count} received`;
    $("#tail-start").disabled = false; $("#tail-stop").disabled = true;
  };
  onLeave(stop);
  const paint = (fresh) => {
    const kf = $("#tail-key").value.trim().toLowerCase();
    const list = rows.filter((r) => !kf || (r.key || "").toLowerCase().includes(kf));
    $("#tail-table").innerHTML = list.length
      ? `<table id="tail-records"><thead><tr><th class="num">Partition</th><th class="num">Offset</th><th>Timestamp</th><th>Key</th><th>Value</th></tr></thead><tbody>${
        list.map((r, i) => `<tr class="${i < fresh ? "fresh" : ""}"><td class="num mono">${r.partition}</td><td class="num mono">${r.offset}</td><td class="mono">${fmtTime(r.timestamp_ms)}</td><td class="mono">${keyCell(r)}</td><td class="msg-value">${preview(r)}</td></tr>`).join("")
      }</tbody></table>`
      : '<div class="empty">Waiting for records…</div>';
  };
  let pending = 0, scheduled = false;
  $("#tail-start").onclick = () => {
    const t = $("#tail-topic").value;
    if (!t) return;
    stop();
    count = 0;
    const url = `/v1/topics/${encodeURIComponent(t)}/tail?last=${$("#tail-last").value}&decode=true`;
    source = auth ? new FetchEventSource(url) : new EventSource(url);
    $("#tail-dot").classList.add("on");
    $("#tail-status").textContent = `connecting to ${t}…`;
    $("#tail-start").disabled = true; $("#tail-stop").disabled = false;
    paint(0);
    source.addEventListener("record", (ev) => {
      const r = JSON.parse(ev.data);
      rows.unshift(r);
      if (rows.length > MAX_ROWS) rows.pop();
      count++; pending++;
      $("#tail-status").textContent = `live · following ${t} · ${count} received`;
      if (!scheduled) {
        scheduled = true;
        requestAnimationFrame(() => { scheduled = false; paint(pending); pending = 0; });
      }
    });
    // The server fixes the starting offsets before it answers, so once the
    // stream is open every later record will arrive.
    source.onopen = () => { $("#tail-status").textContent = `live · following ${t} · ${count} received`; };
    source.onerror = () => { $("#tail-status").textContent = `reconnecting… · ${count} received`; };
  };
  $("#tail-stop").onclick = stop;
  $("#tail-clear").onclick = () => { rows.length = 0; paint(0); };
  $("#tail-key").oninput = () => paint(0);
  if (topicArg) $("#tail-start").click();
};

// A Server-Sent Events reader over fetch, for when the console must send
// an Authorization header (EventSource cannot). The same surface the tail
// page uses: addEventListener(name, fn), onopen, onerror, close(). It does
// not reconnect; the status shows the stream ended.
class FetchEventSource {
  constructor(url) {
    this.listeners = {};
    this.onopen = null;
    this.onerror = null;
    this.ctrl = new AbortController();
    this.run(url);
  }
  addEventListener(name, fn) { (this.listeners[name] = this.listeners[name] || []).push(fn); }
  close() { this.ctrl.abort(); }
  async run(url) {
    try {
      const res = await fetch(url, { headers: authHeaders({ accept: "text/event-stream" }), signal: this.ctrl.signal });
      if (res.status === 401) showLogin("Your session has ended; sign in again.");
      if (!res.ok) throw new Error(res.statusText);
      if (this.onopen) this.onopen();
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value.replace(/\r\n?/g, "\n");
        let end;
        while ((end = buf.indexOf("\n\n")) >= 0) {
          const block = buf.slice(0, end);
          buf = buf.slice(end + 2);
          let event = "message";
          const data = [];
          for (const line of block.split("\n")) {
            if (line.startsWith("event:")) event = line.slice(6).trim();
            else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
          }
          if (data.length) for (const fn of this.listeners[event] || []) fn({ data: data.join("\n") });
        }
      }
      if (this.onerror) this.onerror();
    } catch (e) {
      if (e.name !== "AbortError" && this.onerror) this.onerror();
    }
  }
}

// ---------------------------------------------------------------- groups

pages.groups = function (id) {
  // #/groups/<id> is the group's page, as #/group/<id> is.
  if (id) { pages.group(id); return; }
  setTitle("Consumer groups");
  $("#view").innerHTML = `<div class="panel"><div class="panel-head"><h2>Groups</h2><span class="hint">Lag = high watermark − committed offset</span></div><div id="groups-table"><div class="empty">Loading…</div></div></div>`;
  every(3000, async () => {
    try {
      const { groups } = await api("GET", "/v1/groups");
      $("#groups-table").innerHTML = groups.length
        ? `<table id="groups"><thead><tr><th>Group</th><th>State</th><th>Protocol</th><th class="num">Members</th><th class="num">Total lag</th></tr></thead><tbody>${
          groups.map((g) => `<tr data-group="${esc(g.group_id)}"><td><a class="link" href="#/group/${encodeURIComponent(g.group_id)}">${esc(g.group_id)}</a></td>
            <td>${stateBadge(g.state)}</td><td>${esc(g.protocol_type)}</td><td class="num">${g.member_count}</td><td class="num lag-total">${fmtInt(g.total_lag)}</td></tr>`).join("")
        }</tbody></table>`
        : '<div class="empty">No consumer groups yet.</div>';
    } catch (e) { toast(e.message, true); }
  });
};

// ---------------------------------------------------------------- schemas
// The schema registry, reached through the HTTP listener at /v1/registry
// (the same routes as on schema_registry_listener).

const REGISTRY = "/v1/registry";

function prettySchema(text, type) {
  if (type === "PROTOBUF") return text;
  try { return JSON.stringify(JSON.parse(text), null, 2); } catch (_) { return text; }
}

// Line diff (longest common subsequence), bounded so a huge schema cannot
// stall the page: past 2,000 lines a side it shows both texts whole.
function lineDiff(before, after) {
  const a = before.split("\n"), b = after.split("\n");
  if (a.length > 2000 || b.length > 2000) {
    return a.map((l) => ({ op: "-", l })).concat(b.map((l) => ({ op: "+", l })));
  }
  const n = a.length, m = b.length;
  const lcs = Array.from({ length: n + 1 }, () => new Int32Array(m + 1));
  for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--) {
    lcs[i][j] = a[i] === b[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
  }
  const out = [];
  let i = 0, j = 0;
  while (i < n && j < m) {
    if (a[i] === b[j]) { out.push({ op: " ", l: a[i] }); i++; j++; }
    else if (lcs[i + 1][j] >= lcs[i][j + 1]) out.push({ op: "-", l: a[i++] });
    else out.push({ op: "+", l: b[j++] });
  }
  while (i < n) out.push({ op: "-", l: a[i++] });
  while (j < m) out.push({ op: "+", l: b[j++] });
  return out;
}

pages.schemas = async function () {
  setTitle("Schemas");
  $("#view").innerHTML = `<div class="panel"><div class="panel-head"><h2>Subjects</h2><span class="hint" id="sr-level"></span></div><div id="sr-subjects"><div class="empty">Loading…</div></div></div>`;
  try {
    const [subjects, level] = await Promise.all([api("GET", `${REGISTRY}/subjects`), api("GET", `${REGISTRY}/config`)]);
    $("#sr-level").textContent = `Global compatibility: ${level.compatibilityLevel}`;
    const latest = await Promise.all(subjects.map((s) => api("GET", `${REGISTRY}/subjects/${encodeURIComponent(s)}/versions/latest`)));
    $("#sr-subjects").innerHTML = subjects.length
      ? `<table id="subjects"><thead><tr><th>Subject</th><th>Type</th><th class="num">Latest version</th><th class="num">Schema id</th></tr></thead><tbody>${
        latest.map((v) => `<tr data-subject="${esc(v.subject)}"><td><a class="link" href="#/schema/${encodeURIComponent(v.subject)}">${esc(v.subject)}</a></td>
          <td>${esc(v.schemaType || "AVRO")}</td><td class="num">${v.version}</td><td class="num">${v.id}</td></tr>`).join("")
      }</tbody></table>`
      : '<div class="empty">No schemas registered yet. Serializers register them on first use, or POST to /subjects/{subject}/versions on the registry listener.</div>';
  } catch (e) { toast(e.message, true); }
};

pages.schema = async function (subject, version) {
  setTitle(subject);
  const enc = encodeURIComponent(subject);
  $("#view").innerHTML = `<div class="crumbs"><a href="#/schemas">Schemas</a> / <b>${esc(subject)}</b></div>
    <div class="panel"><div class="panel-head"><h2>Versions</h2>
      <div class="toolbar"><label class="hint" for="sr-subject-level">Compatibility</label>
        <select id="sr-subject-level">${["BACKWARD", "BACKWARD_TRANSITIVE", "FORWARD", "FORWARD_TRANSITIVE", "FULL", "FULL_TRANSITIVE", "NONE"].map((l) => `<option>${l}</option>`).join("")}</select>
        <button class="small" id="sr-set-level">Set</button></div></div>
      <div id="sr-versions"><div class="empty">Loading…</div></div></div>
    <div class="grid-2">
      <div class="panel"><div class="panel-head"><h2 id="sr-schema-title">Schema</h2></div><pre class="code" id="sr-schema"></pre></div>
      <div class="panel"><div class="panel-head"><h2 id="sr-diff-title">Changes</h2></div><pre class="code diff" id="sr-diff"></pre></div>
    </div>`;
  try {
    const [versions, level] = await Promise.all([
      api("GET", `${REGISTRY}/subjects/${enc}/versions`),
      api("GET", `${REGISTRY}/config/${enc}?defaultToGlobal=true`),
    ]);
    $("#sr-subject-level").value = level.compatibilityLevel;
    $("#sr-set-level").onclick = async () => {
      try {
        await api("PUT", `${REGISTRY}/config/${enc}`, { compatibility: $("#sr-subject-level").value });
        toast(`${subject}: ${$("#sr-subject-level").value}`);
      } catch (e) { toast(e.message, true); }
    };
    const chosen = Number(version) || versions[versions.length - 1];
    $("#sr-versions").innerHTML = `<table id="versions"><thead><tr><th class="num">Version</th><th></th></tr></thead><tbody>${
      versions.map((v) => `<tr data-version="${v}" class="${v === chosen ? "selected" : ""}"><td class="num"><a class="link" href="#/schema/${enc}/${v}">${v}</a></td><td>${v === chosen ? "shown" : ""}</td></tr>`).join("")
    }</tbody></table>`;
    const shown = await api("GET", `${REGISTRY}/subjects/${enc}/versions/${chosen}`);
    const type = shown.schemaType || "AVRO";
    $("#sr-schema-title").textContent = `Version ${shown.version} · id ${shown.id} · ${type}`;
    $("#sr-schema").textContent = prettySchema(shown.schema, type);
    const index = versions.indexOf(chosen);
    if (index > 0) {
      const previous = await api("GET", `${REGISTRY}/subjects/${enc}/versions/${versions[index - 1]}`);
      $("#sr-diff-title").textContent = `Changes from version ${previous.version}`;
      $("#sr-diff").innerHTML = lineDiff(prettySchema(previous.schema, previous.schemaType), prettySchema(shown.schema, type))
        .map((d) => `<span class="${d.op === "+" ? "add" : d.op === "-" ? "del" : ""}">${esc(d.op + " " + d.l)}</span>`).join("\n");
    } else {
      $("#sr-diff-title").textContent = "Changes";
      $("#sr-diff").textContent = "The first version: nothing to compare with.";
    }
  } catch (e) { toast(e.message, true); }
};

function stateBadge(s) {
  const cls = s === "Stable" ? "ok" : s === "Empty" ? "" : s === "Dead" ? "warn" : "info";
  return `<span class="badge ${cls}">${esc(s)}</span>`;
}

pages.group = function (id) {
  setTitle(id);
  const enc = encodeURIComponent(id);
  $("#view").innerHTML = `<div class="crumbs"><a href="#/groups">Consumer groups</a> / <b>${esc(id)}</b></div>
    <div class="cards" id="g-cards"></div>
    <div class="grid-2">
      <div class="panel"><div class="panel-head"><h2>Lag by partition</h2></div><div class="panel-body"><canvas class="chart" id="g-lag-bars"></canvas></div></div>
      <div class="panel"><div class="panel-head"><h2>Total lag over time</h2></div><div class="panel-body"><canvas class="chart" id="g-lag-line"></canvas></div></div>
    </div>
    <div class="panel"><div class="panel-head"><h2>Members and assignments</h2><span class="hint" id="g-members-hint"></span></div><div id="g-members"></div></div>
    <div class="panel"><div class="panel-head"><h2>Offsets</h2>
      <div class="row-actions"><button class="small" id="g-reset">Reset offsets…</button><button class="small danger" id="g-delete">Delete group</button></div></div>
      <div id="g-offsets"></div></div>`;
  const history = [];
  let group = null;
  $("#g-reset").onclick = () => {
    const topics = [...new Set(((group && group.offsets) || []).map((o) => o.topic))];
    if (!topics.length) { toast("The group has no committed offsets", true); return; }
    resetOffsetsDialog(id, topics, () => refresh());
  };
  $("#g-delete").onclick = async () => {
    if (!(await confirmDialog(`Delete group “${id}”?`, "Its committed offsets are removed; consumers that join it later start from auto.offset.reset. Only a group with no members can be deleted.", "Delete"))) return;
    try {
      await api("DELETE", `/v1/groups/${enc}`);
      toast(`Deleted group ${id}`);
      location.hash = "#/groups";
    } catch (e) { toast(e.message, true); }
  };
  let membersHtml = null;
  const refresh = async (stop) => {
    let g;
    try { g = await api("GET", `/v1/groups/${enc}`); } catch (e) {
      if (e.status === 404) {
        if (stop) stop();
        notFound(`No consumer group “${id}”`, "The broker has no group by this name: it never committed offsets here, or it was deleted.", "#/groups", "← All consumer groups");
        return;
      }
      if ($("#g-cards")) $("#g-cards").innerHTML = `<div class="empty">${esc(e.message)}</div>`;
      return;
    }
    if (!$("#g-cards")) return; // left the page while the call was out
    group = g;
    history.push([Date.now(), g.total_lag]);
    if (history.length > 120) history.shift();
    setCards($("#g-cards"), [
      ["State", stateBadge(g.state)], ["Type", esc(g.type || "–")], ["Protocol", esc(g.protocol_type || "–")], ["Members", g.members.length],
      ["Partitions", g.offsets.length], ["Total lag", `<span id="group-total-lag">${fmtInt(g.total_lag)}</span>`],
    ].map(([l, x]) => `<div class="card"><div class="label">${l}</div><div class="value">${x}</div></div>`).join(""));
    // Each member with the partitions assigned to it and their lag.
    const lagOf = new Map(g.offsets.map((o) => [`${o.topic}-${o.partition}`, o.lag]));
    $("#g-members-hint").textContent = g.members.length
      ? `${g.members.length} member${g.members.length === 1 ? "" : "s"} · ${g.members.reduce((a, m) => a + m.assignment.length, 0)} partitions assigned`
      : "";
    const html = g.members.length
      ? `<table id="group-members"><thead><tr><th>Member</th><th>Client</th><th>Host</th><th class="num">Partitions</th><th>Assignment (lag)</th></tr></thead><tbody>${
        g.members.map((m) => `<tr data-member="${esc(m.member_id)}"><td class="mono">${esc(m.member_id)}</td><td class="mono">${esc(m.client_id)}</td><td class="mono">${esc(m.client_host)}</td>
          <td class="num assigned-count">${m.assignment.length}</td>
          <td class="assignment">${m.assignment.length ? m.assignment.map((a) => {
            const lag = lagOf.get(`${a.topic}-${a.partition}`);
            return `<span class="badge ${lag ? "warn" : "teal"}" data-tp="${esc(a.topic)}-${a.partition}">${esc(a.topic)}-${a.partition}${lag == null ? "" : ` · ${fmtInt(lag)}`}</span>`;
          }).join(" ") : '<span class="badge">none</span>'}</td></tr>`).join("")
      }</tbody></table>`
      : '<div class="empty">No active members.</div>';
    if (html !== membersHtml) { membersHtml = html; $("#g-members").innerHTML = html; }
    const maxLag = Math.max(1, ...g.offsets.map((o) => o.lag));
    $("#g-offsets").innerHTML = g.offsets.length
      ? `<table id="group-offsets"><thead><tr><th>Topic</th><th class="num">Partition</th><th class="num">Committed</th><th class="num">High watermark</th><th class="num">Lag</th><th style="width:22%"></th><th>Member</th></tr></thead><tbody>${
        g.offsets.map((o) => `<tr data-tp="${esc(o.topic)}-${o.partition}"><td>${esc(o.topic)}</td><td class="num">${o.partition}</td><td class="num committed">${fmtInt(o.committed_offset)}</td><td class="num">${fmtInt(o.high_watermark)}</td>
          <td class="num lag">${fmtInt(o.lag)}</td><td><div class="bar"><span style="width:${(100 * o.lag) / maxLag}%"></span></div></td><td class="mono">${esc(o.member_id || "–")}</td></tr>`).join("")
      }</tbody></table>`
      : '<div class="empty">No committed offsets.</div>';
    drawBarChart($("#g-lag-bars"), g.offsets.map((o) => ({ label: `${o.topic}-${o.partition}`, value: o.lag })));
    drawLineChart($("#g-lag-line"), [{ label: "lag", color: "#f59e0b", points: history }], { unit: "count" });
  };
  every(2000, refresh);
};

// Resets a group's committed offsets (POST /v1/groups/{g}/offsets/reset):
// to the earliest or latest offset, a given offset, or the first offset
// at or after a time, for one topic or all of the group's topics.
function resetOffsetsDialog(id, topics, done) {
  const { root, close } = modal(`<h3>Reset offsets of ${esc(id)}</h3>
    <div class="body">
      <div class="field"><label for="reset-topic">Topic</label><select id="reset-topic">${topics.length > 1 ? '<option value="">all of the group’s topics</option>' : ""}${topics.map((t) => `<option>${esc(t)}</option>`).join("")}</select></div>
      <div class="field"><label for="reset-to">Move to</label><select id="reset-to">
        <option value="earliest">the earliest offset</option><option value="latest">the latest offset (skip everything)</option>
        <option value="offset">an offset</option><option value="timestamp">a time</option></select></div>
      <div class="field" id="reset-offset-field" hidden><label for="reset-offset">Offset (each partition; clamped to what it holds)</label><input id="reset-offset" type="number" min="0" value="0"></div>
      <div class="field" id="reset-time-field" hidden><label for="reset-time">Time (local): the first record at or after it</label><input id="reset-time" type="datetime-local" step="1"></div>
      <div class="hint">The group must have no members: stop its consumers first.</div>
      <div class="error" id="reset-error"></div></div>
    <div class="foot"><button id="reset-cancel">Cancel</button><button class="primary" id="reset-submit">Reset</button></div>`);
  const to = $("#reset-to", root);
  to.onchange = () => {
    $("#reset-offset-field", root).hidden = to.value !== "offset";
    $("#reset-time-field", root).hidden = to.value !== "timestamp";
  };
  $("#reset-cancel", root).onclick = close;
  $("#reset-submit", root).onclick = async () => {
    const body = { to: to.value };
    if (to.value === "offset") {
      const offset = parseInt($("#reset-offset", root).value, 10);
      if (!(offset >= 0)) { $("#reset-error", root).textContent = "Give an offset of 0 or more."; return; }
      body.offset = offset;
    }
    if (to.value === "timestamp") {
      const ms = new Date($("#reset-time", root).value).getTime();
      if (!isFinite(ms) || ms < 0) { $("#reset-error", root).textContent = "Pick a time."; return; }
      body.timestamp = ms;
    }
    const chosen = $("#reset-topic", root).value;
    try {
      for (const topic of chosen ? [chosen] : topics) {
        await api("POST", `/v1/groups/${encodeURIComponent(id)}/offsets/reset`, { topic, ...body });
      }
      close();
      toast("Offsets reset");
      done();
    } catch (e) { $("#reset-error", root).textContent = e.message; }
  };
}

// ---------------------------------------------------------------- brokers

// The brokers of the cluster and one broker's configs: its static ones
// (read-only, from its config file) and the dynamic replication throttles.
// A broker answers only for itself; the others' configs are on their own
// HTTP listeners.
pages.brokers = function (idArg) {
  setTitle("Brokers");
  $("#view").innerHTML = `<div class="panel"><div class="panel-head"><h2>Brokers</h2><span class="hint">Pick one to see its configs</span></div>
      <div id="brokers-table"><div class="empty">Loading…</div></div></div>
    <div class="panel"><div class="panel-head"><h2 id="broker-configs-title">Configs</h2>
      <input id="broker-cfg-filter" placeholder="Filter configs…" style="width:220px"></div>
      <div id="broker-configs"><div class="empty">Loading…</div></div></div>`;
  let configs = [];
  const renderConfigs = () => {
    const f = $("#broker-cfg-filter").value.trim().toLowerCase();
    const rows = configs.filter((c) => c.name.includes(f));
    $("#broker-configs").innerHTML = rows.length
      ? `<table id="broker-config-table"><thead><tr><th>Config</th><th>Value</th><th>Source</th></tr></thead><tbody>${rows.map((c) => `<tr data-config="${esc(c.name)}">
          <td class="mono">${esc(c.name)}</td><td class="mono value">${c.sensitive ? '<span class="badge">hidden</span>' : esc(c.value)}</td>
          <td class="source">${c.is_default ? '<span class="badge">default</span>' : `<span class="badge info">${esc(c.source.toLowerCase().replace(/_config$/, "").replace(/_/g, " "))}</span>`}</td></tr>`).join("")}</tbody></table>`
      : '<div class="empty">No config matches.</div>';
  };
  $("#broker-cfg-filter").addEventListener("input", renderConfigs);
  (async () => {
    let c;
    try { c = await api("GET", "/v1/cluster"); } catch (e) {
      $("#brokers-table").innerHTML = `<div class="empty">${esc(e.message)}</div>`; return;
    }
    const id = idArg != null && idArg !== "" ? Number(idArg) : c.node_id;
    $("#brokers-table").innerHTML = `<table id="brokers"><thead><tr><th>ID</th><th>Host</th><th class="num">Port</th><th>Rack</th><th>Role</th><th></th></tr></thead><tbody>${
      c.brokers.map((b) => `<tr data-broker="${b.node_id}" class="${b.node_id === id ? "selected" : ""}"><td class="mono"><a class="link" href="#/brokers/${b.node_id}">${b.node_id}</a></td>
        <td class="mono">${esc(b.host)}</td><td class="num mono">${b.port}</td><td class="mono">${esc(b.rack ?? "")}</td>
        <td>${b.is_controller ? '<span class="badge teal">controller</span> ' : ""}${b.fenced ? '<span class="badge warn">fenced</span>' : ""}${b.node_id === c.node_id ? '<span class="badge info">this broker</span>' : ""}</td>
        <td><div class="row-actions"><a class="link" href="#/brokers/${b.node_id}">Configs →</a></div></td></tr>`).join("")
    }</tbody></table>`;
    $("#broker-configs-title").textContent = `Configs of broker ${id}`;
    try { configs = (await api("GET", `/v1/cluster/brokers/${encodeURIComponent(id)}/configs`)).configs; } catch (e) {
      $("#broker-configs").innerHTML = `<div class="empty" id="broker-configs-error">${esc(e.message)}</div>`; return;
    }
    renderConfigs();
  })();
};

// ---------------------------------------------------------------- balance

// A value the API reports as null ("not measured yet") is shown as "unknown".
function orUnknown(v, fmt) { return v == null ? "unknown" : fmt(v); }

// One broker's state as the balancer sees it. "Drained" (decommissioned and
// holding no replica) is checked first: it is the operator's cue to stop it.
function brokerState(b) {
  if (b.drained) return { text: "decommissioned: safe to stop", cls: "ok" };
  if (b.lost) return { text: "lost", cls: "danger" };
  if (b.decommissioning) return { text: "decommissioning", cls: "warn" };
  return { text: "in service", cls: "teal" };
}

pages.balance = function () {
  setTitle("Balance");
  $("#view").innerHTML = `<div class="cards" id="bal-cards"></div>
    <div class="panel"><div class="panel-head"><h2>Brokers</h2><span class="hint">Decommission moves a broker's replicas away; stop it once it shows “safe to stop”.</span></div>
      <div id="bal-brokers"><div class="empty">Loading…</div></div></div>
    <div class="panel"><div class="panel-head"><h2>Moves in flight</h2><span class="hint" id="bal-moves-hint"></span></div>
      <div id="bal-moves"><div class="empty">Loading…</div></div></div>`;
  // Repaint a container only when its markup changes, so a button is not
  // replaced under the pointer by a refresh that changed nothing.
  const painted = {};
  // A load that finishes after the user left the view finds no container.
  const paint = (id, html) => {
    const el = $("#" + id);
    if (el && painted[id] !== html) { painted[id] = html; el.innerHTML = html; }
  };
  const load = async () => {
    let b, c;
    try {
      // The addresses are a nicety: the view works without /v1/cluster.
      [b, c] = await Promise.all([api("GET", "/v1/cluster/balance"), api("GET", "/v1/cluster").catch(() => null)]);
    } catch (e) {
      paint("bal-cards", `<div class="empty">${esc(e.message)}</div>`);
      return;
    }
    const addr = new Map(((c && c.brokers) || []).map((x) => [x.node_id, `${x.host}:${x.port}`]));
    paint("bal-cards", [
      ["Balancer", `<span id="bal-enabled">${b.enabled ? '<span class="badge ok">on</span>' : '<span class="badge">off</span>'}</span>`],
      ["Moves", `<span id="bal-move-count">${b.moves.length}</span>`],
      ["Bytes left", `<span id="bal-bytes-left">${fmtBytes(b.bytes_left)}</span>`],
      ["Copy rate", `<span id="bal-rate">${orUnknown(b.rate_bytes_per_s, (r) => fmtBytes(r) + "/s")}</span>`],
      ["Time left", `<span id="bal-eta">${orUnknown(b.eta_s, (s) => fmtDuration(s * 1000))}</span>`],
    ].map(([l, x]) => `<div class="card"><div class="label">${l}</div><div class="value">${x}</div></div>`).join(""));
    paint("bal-brokers", b.brokers.length
      ? `<table id="balance-brokers"><thead><tr><th>ID</th><th>Address</th><th class="num">Replicas</th><th class="num">Leaders</th><th class="num">Disk used</th><th style="width:14%"></th><th>State</th><th></th></tr></thead><tbody>${
        b.brokers.map((x) => {
          const st = brokerState(x);
          const disk = x.disk_used_percent;
          const action = x.decommissioning
            ? `<button class="small" data-recommission="${x.node_id}">Recommission</button>`
            : `<button class="small danger" data-decommission="${x.node_id}">Decommission</button>`;
          return `<tr data-broker="${x.node_id}"><td class="mono">${x.node_id}</td><td class="mono">${esc(addr.get(x.node_id) || "–")}</td>
            <td class="num replicas">${x.replicas}</td><td class="num leaders">${x.leaders}</td>
            <td class="num disk">${orUnknown(disk, (p) => p + " %")}</td><td>${disk == null ? "" : `<div class="bar"><span style="width:${Math.min(100, disk)}%"></span></div>`}</td>
            <td class="state"><span class="badge ${st.cls}">${esc(st.text)}</span></td><td><div class="row-actions">${action}</div></td></tr>`;
        }).join("")
      }</tbody></table>`
      : `<div class="empty">No brokers reported${b.enabled ? "" : " (the balancer runs only in a cluster)"}.</div>`);
    paint("bal-moves-hint", b.moves.length ? `${b.moves.length} partition${b.moves.length === 1 ? "" : "s"} moving` : "");
    paint("bal-moves", b.moves.length
      ? `<table id="balance-moves"><thead><tr><th>Topic</th><th class="num">Partition</th><th>Replicas</th><th>Adding</th><th>Removing</th><th class="num">Size</th><th class="num">Bytes left</th><th style="width:16%"></th></tr></thead><tbody>${
        b.moves.map((m) => {
          const done = m.bytes_total && m.bytes_left != null ? 100 * (1 - m.bytes_left / m.bytes_total) : null;
          return `<tr data-tp="${esc(m.topic)}-${m.partition}"><td>${esc(m.topic)}</td><td class="num">${m.partition}</td>
            <td class="mono">${m.replicas.join(", ")}</td><td class="mono">${m.adding_replicas.join(", ") || "–"}</td><td class="mono">${m.removing_replicas.join(", ") || "–"}</td>
            <td class="num">${orUnknown(m.bytes_total, fmtBytes)}</td><td class="num bytes-left">${orUnknown(m.bytes_left, fmtBytes)}</td>
            <td>${done == null ? "" : `<div class="bar"><span style="width:${Math.max(0, Math.min(100, done))}%"></span></div>`}</td></tr>`;
        }).join("")
      }</tbody></table>`
      : '<div class="empty">No partition is moving.</div>');
  };
  $("#bal-brokers").addEventListener("click", async (ev) => {
    const btn = ev.target.closest("button");
    if (!btn) return;
    const on = btn.dataset.decommission != null;
    const id = on ? btn.dataset.decommission : btn.dataset.recommission;
    if (id == null) return;
    const ok = on
      ? await confirmDialog(`Decommission broker ${id}?`, "The balancer moves every replica it holds to other brokers and places no new ones on it. Stop it once it shows “decommissioned: safe to stop”.", "Decommission")
      : await confirmDialog(`Recommission broker ${id}?`, "It takes replicas and leaderships again; the balancer moves a share back to it.", "Recommission");
    if (!ok) return;
    btn.disabled = true;
    try {
      await api(on ? "POST" : "DELETE", `/v1/cluster/brokers/${encodeURIComponent(id)}/decommission`);
      toast(on ? `Decommissioning broker ${id}` : `Broker ${id} is back in service`);
    } catch (e) {
      toast(e.message, true);
    }
    // The refresh repaints the row (and re-enables or replaces the button).
    delete painted["bal-brokers"];
    load();
  });
  every(3000, load);
};

// ---------------------------------------------------------------- API reference

// Renders /v1/openapi.json: the same document clients generate code from.
pages.api = async function () {
  setTitle("HTTP API");
  const v = $("#view");
  let spec;
  try { spec = await api("GET", "/v1/openapi.json"); } catch (e) { toast(e.message, true); return; }
  const byTag = {};
  for (const [path, item] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(item)) {
      const tag = (op.tags && op.tags[0]) || "other";
      (byTag[tag] = byTag[tag] || []).push({ path, method, op });
    }
  }
  const tags = spec.tags || Object.keys(byTag).map((name) => ({ name }));
  v.innerHTML = `<div class="panel"><div class="panel-body">${esc(spec.info.description || "")}
      <div style="margin-top:8px"><a class="link" href="/v1/openapi.json" target="_blank" rel="noopener">OpenAPI ${esc(spec.openapi)} document →</a></div></div></div>`
    + tags.filter((t) => byTag[t.name]).map((t) => `<div class="panel"><div class="panel-head"><h2>${esc(t.name)}</h2><span class="hint">${esc(t.description || "")}</span></div>${
      byTag[t.name].map(({ path, method, op }) => `<div class="op" id="op-${esc(op.operationId)}"><span class="method ${method}">${method.toUpperCase()}</span>
        <span class="path">${esc(path)}</span><span class="summary">${esc((op.summary || "").replace(/\s*\n\s*/g, " "))}</span>
        ${(op.parameters || []).length ? `<span class="params">${op.parameters.map((p) => `${esc(p.name)}${p.in === "query" ? "?" : ""}`).join("  ")}</span>` : ""}</div>`).join("")
    }</div>`).join("");
};

// ---------------------------------------------------------------- theme and sidebar
//
// Both follow the browser until the user picks: the theme follows
// prefers-color-scheme, the sidebar collapses to icons below 900 px. A
// choice made with the toggles is kept in localStorage (it is not a
// secret, and should outlive the tab).

const THEME_KEY = "sluice.console.theme";
const SIDEBAR_KEY = "sluice.console.sidebar";
const darkQuery = window.matchMedia("(prefers-color-scheme: dark)");
const narrowQuery = window.matchMedia("(max-width: 900px)");

function storedChoice(key, allowed) {
  try { const v = localStorage.getItem(key); return allowed.includes(v) ? v : null; } catch (_) { return null; }
}
function storeChoice(key, value) {
  try { localStorage.setItem(key, value); } catch (_) { /* storage off: the choice lasts this page */ }
}

function effectiveTheme() {
  return storedChoice(THEME_KEY, ["dark", "light"]) || (darkQuery.matches ? "dark" : "light");
}

function applyTheme() {
  const chosen = storedChoice(THEME_KEY, ["dark", "light"]);
  if (chosen) document.documentElement.dataset.theme = chosen;
  else delete document.documentElement.dataset.theme;
  const theme = effectiveTheme();
  const btn = $("#theme-toggle");
  btn.textContent = theme === "dark" ? "☀" : "☾";
  btn.title = theme === "dark" ? "Switch to the light theme" : "Switch to the dark theme";
  btn.dataset.theme = theme;
  // Canvas charts draw their colours once; redraw them in the new theme.
  window.dispatchEvent(new Event("resize"));
}

function sidebarCollapsed() {
  const chosen = storedChoice(SIDEBAR_KEY, ["collapsed", "expanded"]);
  return chosen ? chosen === "collapsed" : narrowQuery.matches;
}

function applySidebar() {
  const chosen = storedChoice(SIDEBAR_KEY, ["collapsed", "expanded"]);
  document.body.classList.toggle("side-collapsed", chosen === "collapsed");
  document.body.classList.toggle("side-expanded", chosen === "expanded");
  const collapsed = sidebarCollapsed();
  $("#side-toggle").title = collapsed ? "Expand the sidebar" : "Collapse the sidebar";
  $("#side-toggle").setAttribute("aria-expanded", String(!collapsed));
  window.dispatchEvent(new Event("resize"));
}

$("#theme-toggle").addEventListener("click", () => {
  storeChoice(THEME_KEY, effectiveTheme() === "dark" ? "light" : "dark");
  applyTheme();
});
$("#side-toggle").addEventListener("click", () => {
  storeChoice(SIDEBAR_KEY, sidebarCollapsed() ? "expanded" : "collapsed");
  applySidebar();
});
darkQuery.addEventListener("change", applyTheme);
narrowQuery.addEventListener("change", applySidebar);
applyTheme();
applySidebar();

// ---------------------------------------------------------------- boot

async function heartbeat() {
  const pill = $("#cluster-pill");
  try {
    const c = await api("GET", "/v1/cluster");
    pill.className = "pill up";
    $("#cluster-id").textContent = `${c.cluster_id} · ${c.brokers[0].host}:${c.brokers[0].port}`;
  } catch (e) {
    pill.className = e.status === 403 ? "pill up" : "pill down";
    $("#cluster-id").textContent = e.status === 403 ? "connected · no DESCRIBE on the cluster"
      : e.status === 401 ? "signed out" : "broker unreachable";
  }
}

// Who is signed in: with http_auth off the answer is User:ANONYMOUS and
// nothing changes; with it on and no valid token, the login page shows.
async function whoami() {
  try {
    const me = await api("GET", "/v1/auth/whoami");
    showPrincipal(me.auth_enabled ? me.principal : null);
  } catch (_) { /* 401 showed the login page; otherwise the pill says it */ }
}

$("#login-form").addEventListener("submit", signIn);
$("#logout").addEventListener("click", logout);
window.addEventListener("hashchange", route);
whoami();
heartbeat();
setInterval(heartbeat, 5000);
sampleThroughput();
setInterval(sampleThroughput, 5000);
route();
