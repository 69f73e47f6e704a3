// The Customer Performance dashboard: fetches one month from the plugin's API (plus pages of the
// at-risk list) and draws plain SVG charts. No library and nothing from the internet. Every bar,
// point and cell carries its label and value as data attributes (data-label, data-value); tables
// carry data-table with td data-key/data-value; KPI cards data-kpi (and data-value, data-previous,
// data-delta); body[data-ready] is "true" when drawn, "error" when something failed.
// All text is inserted with textContent. customer.html reuses the helpers (body[data-page]).
"use strict";

const NS = "http://www.w3.org/2000/svg";
const COLORS = {
  revenue: "#2563eb", transactions: "#7c3aed", green: "#16a34a", yellow: "#eab308", red: "#dc2626",
  unknown: "#9aa5b1", neutral: "#64748b", up: "#15803d", down: "#b91c1c",
};
const MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
  "October", "November", "December"];
// A month is YYYY-MM and nothing else: the page only ever calls its own API with it.
const MONTH = /^\d{4}-(0[1-9]|1[0-2])$/;

// -- formatting ---------------------------------------------------------------------------------
const isNum = v => v !== null && v !== undefined && v !== "" && Number.isFinite(Number(v));
const fmt = (v, d = 0) => !isNum(v) ? "n/a"
  : Number(v).toLocaleString("en-US", { minimumFractionDigits: d, maximumFractionDigits: d });
const count = v => fmt(v, 0);
// 1.21 M, 439 k, 20.4 k, 783 (three significant digits above a thousand)
function compact(v) {
  if (!isNum(v)) return "n/a";
  const n = Number(v), a = Math.abs(n);
  const three = x => x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2);
  if (a >= 1e9) return (n < 0 ? "-" : "") + three(a / 1e9) + " B";
  if (a >= 1e6) return (n < 0 ? "-" : "") + three(a / 1e6) + " M";
  if (a >= 1e3) return (n < 0 ? "-" : "") + three(a / 1e3) + " k";
  return fmt(n, a >= 100 || Number.isInteger(n) ? 0 : 1);
}
// an axis tick: 50 k, 1.25 k, 0.5 (no trailing zeros)
const tick = v => compact(v).replace(/\.(\d*?)0+(?=\D|$)/, (m, d) => d ? `.${d}` : "");
let CURRENCY = "USD";
// the glossary's labels (the API's d.labels): a published name is shown by its one label
let LABELS = {};
const L = k => LABELS[k] || k;
const money = v => isNum(v) ? `${compact(v)} ${CURRENCY}` : "n/a";
// a share (0-1, published to 4 decimals) as a percent, rounded half away from zero on its
// integer ten-thousandths: the email and the report CLI round it alike (glossary.share_text)
function pct(share, d = 1) {
  if (!isNum(share)) return "n/a";
  const n = Math.round(Math.abs(Number(share)) * 10000), unit = 10 ** (2 - d);
  const r = Math.floor((n + unit / 2) / unit) * unit / 100;
  return `${Number(share) < 0 && r ? "-" : ""}${fmt(r, d)} %`;
}
const signed = (v, f) => !isNum(v) ? "n/a" : (Number(v) > 0 ? "+" : Number(v) < 0 ? "−" : "±") + f(Math.abs(v));
const monthName = m => MONTH.test(m || "") ? `${MONTHS[+m.slice(5, 7) - 1]} ${m.slice(0, 4)}` : String(m ?? "");
const monthShort = m => MONTH.test(m || "") ? `${MONTHS[+m.slice(5, 7) - 1].slice(0, 3)} ${m.slice(0, 4)}` : String(m ?? "");
// "June" against a month of the same year, else "Dec 2024"
const vsMonth = (m, ref) => MONTH.test(m || "") && String(ref).slice(0, 4) === m.slice(0, 4) ? MONTHS[+m.slice(5, 7) - 1] : monthShort(m);
const dayShort = d => { const [, mo, da] = String(d).split("-"); return `${MONTHS[+mo - 1].slice(0, 3)} ${+da}`; };
const addDays = (iso, n) => { const t = new Date(iso + "T00:00:00Z"); t.setUTCDate(t.getUTCDate() + n); return t.toISOString().slice(0, 10); };
const when = ts => ts ? String(ts).replace("T", " ").slice(0, 16) + " UTC" : "n/a";

// -- DOM ------------------------------------------------------------------------------------------
function el(tag, attrs = {}, parent = null, ns = NS) {
  const e = ns ? document.createElementNS(ns, tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) e.setAttribute(k, v);
  if (parent) parent.appendChild(e);
  return e;
}
const h = (tag, attrs = {}, parent = null, text = null) => {
  const e = el(tag, attrs, parent, null);
  if (text !== null) e.textContent = text;
  return e;
};
const svgText = (svg, x, y, text, attrs = {}) => { const t = el("text", { x, y, ...attrs }, svg); t.textContent = text; return t; };
const clear = target => { while (target.firstChild) target.removeChild(target.firstChild); };
function noData(target, why = "No data for this month.") {
  clear(target);
  h("div", { class: "nodata" }, target, why);
}

// nice round ticks covering [lo, hi]
function ticks(lo, hi, n = 5) {
  if (hi === lo) hi = lo + 1;
  const raw = (hi - lo) / n, mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map(s => s * mag).find(s => s >= raw);
  const out = [];
  for (let v = Math.floor(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(+v.toFixed(10));
  if (out[out.length - 1] < hi) out.push(out[out.length - 1] + step);
  return out;
}

function frame(target, { w = 640, h = 270, m = {} } = {}) {
  clear(target);
  const mm = { t: 22, r: 18, b: 48, l: 66, ...m };
  const svg = el("svg", { viewBox: `0 0 ${w} ${h}`, width: "100%", role: "img" }, target);
  const defs = el("defs", {}, svg);
  const pat = el("pattern", { id: `hatch-${Math.random().toString(36).slice(2)}`, width: 6, height: 6,
    patternUnits: "userSpaceOnUse", patternTransform: "rotate(45)" }, defs);
  el("rect", { width: 6, height: 6, fill: "#fff" }, pat);
  el("line", { x1: 0, y1: 0, x2: 0, y2: 6, stroke: "#94a3b8", "stroke-width": 3 }, pat);
  return { svg, w, h, x0: mm.l, x1: w - mm.r, y0: mm.t, y1: h - mm.b, hatch: `url(#${pat.id})`, m: mm };
}

function axisTitles(f, xTitle, yTitle) {
  if (xTitle) svgText(f.svg, (f.x0 + f.x1) / 2, f.h - 8, xTitle, { "text-anchor": "middle", class: "axis-title" });
  if (yTitle) {
    svgText(f.svg, 14, (f.y0 + f.y1) / 2, yTitle,
      { "text-anchor": "middle", class: "axis-title", transform: `rotate(-90 14 ${(f.y0 + f.y1) / 2})` });
  }
}

// horizontal gridlines with their values; returns the value -> y scale
function yAxis(f, lo, hi, tickFmt = tick) {
  const t = ticks(Math.min(0, lo), Math.max(0, hi));
  const a = t[0], b = t[t.length - 1];
  const y = v => f.y1 - (f.y1 - f.y0) * (v - a) / ((b - a) || 1);
  t.forEach(v => {
    el("line", { x1: f.x0, x2: f.x1, y1: y(v), y2: y(v), class: v === 0 ? "axis-line" : "grid-line" }, f.svg);
    svgText(f.svg, f.x0 - 6, y(v) + 3.5, tickFmt(v), { "text-anchor": "end" });
  });
  return y;
}

function titled(node, text) { el("title", {}, node).textContent = text; return node; }

// Vertical bars. points: [{label, value}]; o: {xTitle, yTitle, color, colorOf(p, i), valueFmt,
// tickFmt, xLabel(p), partial(p, i) -> note or null, labelEvery}
function vbars(target, points, o = {}) {
  if (!points.length) return noData(target);
  const f = frame(target, o.frame);
  const vals = points.map(p => Number(p.value) || 0);
  const y = yAxis(f, Math.min(...vals), Math.max(...vals), o.tickFmt);
  const bw = (f.x1 - f.x0) / points.length, gap = Math.min(bw * 0.22, 8);
  const showValues = points.length <= 12;
  const every = o.labelEvery || Math.ceil(points.length / 16);
  let partials = 0;
  points.forEach((p, i) => {
    const v = Number(p.value) || 0, x = f.x0 + i * bw + gap / 2;
    const partial = o.partial ? o.partial(p, i) : null;
    const color = o.colorOf ? o.colorOf(p, i) : (o.color || COLORS.revenue);
    const top = Math.min(y(v), y(0)), height = Math.max(Math.abs(y(v) - y(0)), 0.5);
    if (partial) {
      partials += 1;
      el("rect", { x, y: top, width: bw - gap, height, fill: f.hatch }, f.svg);
    }
    const r = el("rect", {
      x, y: top, width: Math.max(bw - gap, 1), height, fill: color, "fill-opacity": partial ? 0.45 : 1,
      "data-label": p.label, "data-value": p.value ?? "",
    }, f.svg);
    titled(r, `${o.xLabel ? o.xLabel(p) : p.label}: ${(o.valueFmt || compact)(p.value)}${partial ? ` (${partial})` : ""}`);
    if (showValues) {
      svgText(f.svg, x + (bw - gap) / 2, v >= 0 ? top - 4 : top + height + 11, (o.valueFmt || compact)(p.value),
        { "text-anchor": "middle", class: "value" });
    }
    if (i % every === 0) {
      svgText(f.svg, x + (bw - gap) / 2, f.y1 + 14, o.xLabel ? o.xLabel(p) : String(p.label), { "text-anchor": "middle" });
    }
    if (o.xSub && i % every === 0) {
      svgText(f.svg, x + (bw - gap) / 2, f.y1 + 26, o.xSub(p), { "text-anchor": "middle", class: "note" });
    }
    if (partial && showValues) {
      svgText(f.svg, x + (bw - gap) / 2, f.y1 + 26, "partial", { "text-anchor": "middle", class: "note" });
    }
  });
  if (partials && o.partialNote) svgText(f.svg, f.x1, 12, o.partialNote, { "text-anchor": "end", class: "note" });
  if (o.note) svgText(f.svg, f.x1, 12, o.note, { "text-anchor": "end", class: "note" });
  axisTitles(f, o.xTitle, o.yTitle);
  return f;
}

// Horizontal bars (categories on the left), diverging around 0 when values are negative.
// o: {xTitle, color, colorOf, valueFmt, extra(p) -> text after the value}
function hbars(target, points, o = {}) {
  if (!points.length) return noData(target);
  const rowH = 30, labelW = o.labelW || 120;
  const hgt = Math.max(150, points.length * rowH + 70);
  const f = frame(target, { h: hgt, m: { l: labelW, r: o.right || 150, t: 14, b: 44 } });
  const vals = points.map(p => Number(p.value) || 0);
  const t = ticks(Math.min(0, ...vals), Math.max(0, ...vals));
  const a = t[0], b = t[t.length - 1];
  const x = v => f.x0 + (f.x1 - f.x0) * (v - a) / ((b - a) || 1);
  t.forEach(v => {
    el("line", { x1: x(v), x2: x(v), y1: f.y0, y2: f.y1, class: v === 0 ? "axis-line" : "grid-line" }, f.svg);
    svgText(f.svg, x(v), f.y1 + 14, (o.tickFmt || tick)(v), { "text-anchor": "middle" });
  });
  const bh = Math.min(rowH * 0.66, (f.y1 - f.y0) / points.length * 0.7);
  const step = (f.y1 - f.y0) / points.length;
  points.forEach((p, i) => {
    const v = Number(p.value) || 0, cy = f.y0 + step * (i + 0.5);
    const left = Math.min(x(v), x(0)), wd = Math.max(Math.abs(x(v) - x(0)), 0.5);
    const r = el("rect", {
      x: left, y: cy - bh / 2, width: wd, height: bh, fill: o.colorOf ? o.colorOf(p, i) : (o.color || COLORS.revenue),
      "data-label": p.label, "data-value": p.value ?? "",
    }, f.svg);
    titled(r, `${p.label}: ${(o.valueFmt || compact)(p.value)}`);
    svgText(f.svg, f.x0 - 8, cy + 4, String(p.label), { "text-anchor": "end" });
    const txt = (o.valueFmt || compact)(p.value) + (o.extra ? o.extra(p) : "");
    // a negative bar's value sits right of the zero line (clear of the category labels)
    svgText(f.svg, (v >= 0 ? x(v) : x(0)) + 5, cy + 4, txt, { class: "value" });
  });
  axisTitles(f, o.xTitle, null);
  return f;
}

// A line over categorical (evenly spaced) or numeric x. points: [{label, value, x?}];
// o: {xTitle, yTitle, color, yMax, xMin, xMax, area, valueFmt, xLabel, refs: [{x|y, text}], marks: [{x, y, text}]}
function line(target, points, o = {}) {
  if (!points.length) return noData(target);
  const f = frame(target, o.frame);
  const vals = points.map(p => Number(p.value) || 0);
  const y = yAxis(f, 0, o.yMax ?? Math.max(...vals), o.tickFmt);
  const numeric = o.xMin !== undefined;
  const x = (p, i) => numeric ? f.x0 + (f.x1 - f.x0) * (p.x - o.xMin) / (o.xMax - o.xMin)
    : points.length <= 12 ? f.x0 + (f.x1 - f.x0) * (i + 0.5) / points.length // few points: centred in their slots
      : f.x0 + (f.x1 - f.x0) * i / (points.length - 1);
  const color = o.color || COLORS.revenue;
  const xy = points.map((p, i) => [x(p, i), y(Number(p.value) || 0)]);
  const start = o.origin ? [[x({ x: o.xMin }, 0), y(0)]] : [];
  const path = [...start, ...xy];
  if (o.area) {
    el("polygon", { points: [[path[0][0], y(0)], ...path, [path[path.length - 1][0], y(0)]].map(q => q.join(",")).join(" "),
      fill: color, "fill-opacity": 0.12 }, f.svg);
  }
  el("polyline", { points: path.map(q => q.join(",")).join(" "), fill: "none", stroke: color, "stroke-width": 2 }, f.svg);
  (o.refs || []).forEach(r => {
    if (r.x !== undefined) {
      const xx = x({ x: r.x }, 0);
      el("line", { x1: xx, x2: xx, y1: f.y0, y2: f.y1, class: "ref" }, f.svg);
      if (r.text) svgText(f.svg, xx + 4, f.y1 - 6, r.text, { class: "note" });
    } else {
      el("line", { x1: f.x0, x2: f.x1, y1: y(r.y), y2: y(r.y), class: "ref" }, f.svg);
      if (r.text) svgText(f.svg, f.x1 - 4, y(r.y) + 13, r.text, { class: "note", "text-anchor": "end" });
    }
  });
  const every = o.labelEvery || Math.ceil(points.length / 16);
  points.forEach((p, i) => {
    const c = el("circle", { cx: xy[i][0], cy: xy[i][1], r: 3, fill: color, "data-label": p.label, "data-value": p.value ?? "" }, f.svg);
    titled(c, `${o.xLabel ? o.xLabel(p) : p.label}: ${(o.valueFmt || compact)(p.value)}`);
    if (!numeric && i % every === 0) svgText(f.svg, xy[i][0], f.y1 + 14, o.xLabel ? o.xLabel(p) : String(p.label), { "text-anchor": "middle" });
    if (o.valueLabels) svgText(f.svg, xy[i][0], xy[i][1] - 7, (o.valueFmt || compact)(p.value), { "text-anchor": "middle", class: "value" });
  });
  if (numeric) {
    ticks(o.xMin, o.xMax, 10).forEach(v => svgText(f.svg, x({ x: v }, 0), f.y1 + 14, o.xTickFmt ? o.xTickFmt(v) : String(v), { "text-anchor": "middle" }));
  }
  (o.marks || []).forEach(mk => {
    const mx = x({ x: mk.x }, 0), my = y(mk.y);
    el("circle", { cx: mx, cy: my, r: 5, fill: "none", stroke: "#111827", "stroke-width": 1.5 }, f.svg);
    svgText(f.svg, mx + 9, my + 16, mk.text, { class: "value" });
  });
  if (o.note) svgText(f.svg, f.x1, 12, o.note, { "text-anchor": "end", class: "note" });
  axisTitles(f, o.xTitle, o.yTitle);
  return f;
}

// Stacked vertical bars. groups: [{label, parts: {key: value}}]; keys in stacking order (bottom first)
function stacked(target, groups, keys, colors, o = {}) {
  if (!groups.length) return noData(target);
  const f = frame(target, o.frame);
  const totals = groups.map(g => keys.reduce((s, k) => s + (Number(g.parts[k]) || 0), 0));
  const y = yAxis(f, 0, Math.max(...totals), o.tickFmt);
  const bw = Math.min((f.x1 - f.x0) / groups.length, 110), gap = bw * 0.3;
  const off = f.x0 + ((f.x1 - f.x0) - bw * groups.length) / 2;
  groups.forEach((g, i) => {
    let acc = 0;
    const x = off + i * bw + gap / 2;
    keys.forEach(k => {
      const v = Number(g.parts[k]) || 0;
      const top = y(acc + v), height = y(acc) - y(acc + v);
      const r = el("rect", { x, y: top, width: bw - gap, height: Math.max(height, 0), fill: colors[k],
        "data-label": `${g.label} ${k}`, "data-value": g.parts[k] ?? "" }, f.svg);
      titled(r, `${o.xLabel ? o.xLabel(g) : g.label}, ${k}: ${count(v)} (${pct(totals[i] ? v / totals[i] : null)})`);
      if (height > 14) {
        svgText(f.svg, x + (bw - gap) / 2, top + height / 2 + 4, `${compact(v)} · ${pct(totals[i] ? v / totals[i] : null, 0)}`,
          { "text-anchor": "middle", class: "value", style: "fill:#fff" });
      }
      acc += v;
    });
    svgText(f.svg, x + (bw - gap) / 2, f.y1 + 14, o.xLabel ? o.xLabel(g) : g.label, { "text-anchor": "middle" });
    svgText(f.svg, x + (bw - gap) / 2, y(totals[i]) - 4, count(totals[i]), { "text-anchor": "middle", class: "value" });
  });
  axisTitles(f, o.xTitle, o.yTitle);
  legend(target, keys.map(k => [k, colors[k]]));
  return f;
}

// Grouped vertical bars. cats: x categories; series: [{key, color}]; value(cat, key)
function grouped(target, cats, series, value, o = {}) {
  if (!cats.length || !series.length) return noData(target);
  const f = frame(target, o.frame);
  const all = cats.flatMap(c => series.map(s => Number(value(c, s.key)) || 0));
  const y = yAxis(f, 0, Math.max(...all), o.tickFmt);
  const gw = (f.x1 - f.x0) / cats.length, bw = (gw * 0.8) / series.length;
  cats.forEach((c, i) => {
    series.forEach((s, j) => {
      const v = value(c, s.key);
      if (!isNum(v)) return;
      const x = f.x0 + i * gw + gw * 0.1 + j * bw;
      const r = el("rect", { x, y: y(v), width: bw - 1, height: Math.max(y(0) - y(v), 0.5), fill: s.color,
        "data-label": `${c} ${s.key}`, "data-value": v }, f.svg);
      titled(r, `${c}, ${s.key}: ${count(v)}`);
    });
    svgText(f.svg, f.x0 + i * gw + gw / 2, f.y1 + 14, c, { "text-anchor": "middle" });
  });
  axisTitles(f, o.xTitle, o.yTitle);
  legend(target, series.map(s => [s.key, s.color]));
  return f;
}

function legend(target, items) {
  const box = h("div", { class: "legend" }, target);
  items.forEach(([label, color]) => {
    const s = h("span", {}, box);
    h("i", { style: `background:${color}` }, s);
    s.appendChild(document.createTextNode(label));
  });
  return box;
}

// A weekday x hour grid of sessions, white to blue
function heatmap(target, cells) {
  if (!cells.length) return noData(target);
  const f = frame(target, { h: 290, m: { l: 48, r: 14, t: 10, b: 70 } });
  const days = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
  const cw = (f.x1 - f.x0) / 24, ch = (f.y1 - f.y0) / 7;
  const max = Math.max(1, ...cells.map(c => Number(c.sessions) || 0));
  const min = Math.min(...cells.map(c => Number(c.sessions) || 0));
  const shade = v => { const t = max > min ? (v - min) / (max - min) : 1; return `rgb(${Math.round(239 - 209 * t)},${Math.round(246 - 182 * t)},${Math.round(255 - 80 * t)})`; };
  const seen = new Map(cells.map(c => [`${c.weekday}-${c.hour}`, c]));
  for (let d = 1; d <= 7; d++) {
    svgText(f.svg, f.x0 - 6, f.y0 + ch * (d - 0.5) + 4, days[d - 1], { "text-anchor": "end" });
    for (let hr = 0; hr < 24; hr++) {
      const c = seen.get(`${d}-${hr}`);
      const attrs = { x: f.x0 + hr * cw, y: f.y0 + (d - 1) * ch, width: cw - 1, height: ch - 1,
        fill: c ? shade(Number(c.sessions) || 0) : "#f8fafc" };
      if (c) Object.assign(attrs, { "data-label": `${d}-${hr}`, "data-value": c.sessions });
      const r = el("rect", attrs, f.svg);
      titled(r, `${days[d - 1]} ${String(hr).padStart(2, "0")}:00–${String(hr).padStart(2, "0")}:59 UTC: ` +
        (c ? `${count(c.sessions)} sessions, ${count(c.session_minutes)} minutes` : "no sessions"));
    }
  }
  for (let hr = 0; hr < 24; hr += 2) svgText(f.svg, f.x0 + (hr + 0.5) * cw, f.y1 + 13, String(hr).padStart(2, "0"), { "text-anchor": "middle" });
  svgText(f.svg, (f.x0 + f.x1) / 2, f.y1 + 30, "Hour of day (UTC)", { "text-anchor": "middle", class: "axis-title" });
  // the colour scale
  const lx = f.x0, ly = f.h - 22, lw = 220;
  const grad = el("linearGradient", { id: `heat-${Math.random().toString(36).slice(2)}` }, f.svg.querySelector("defs"));
  el("stop", { offset: "0", "stop-color": shade(min) }, grad);
  el("stop", { offset: "1", "stop-color": shade(max) }, grad);
  svgText(f.svg, lx, ly + 10, "Sessions (month total):", {});
  svgText(f.svg, lx + 140, ly + 10, count(min), {});
  el("rect", { x: lx + 170, y: ly, width: lw, height: 12, fill: `url(#${grad.id})`, stroke: "#cbd2d9" }, f.svg);
  svgText(f.svg, lx + 176 + lw, ly + 10, `${count(max)} (busiest slot)`, {});
  return f;
}

// A small trend line in a KPI card
function sparkline(parent, pts, good) {
  const w = 150, ht = 30;
  const svg = el("svg", { viewBox: `0 0 ${w} ${ht}`, width: "100%", height: ht, class: "spark", preserveAspectRatio: "none" }, parent);
  const vals = pts.map(p => Number(p.value));
  if (pts.length < 2 || vals.some(v => !Number.isFinite(v))) {
    svgText(svg, 0, 20, pts.length < 2 ? "trend: one month loaded" : "", { class: "note" });
    return;
  }
  const lo = Math.min(...vals), hi = Math.max(...vals), span = (hi - lo) || 1;
  const x = i => 4 + (w - 8) * i / (pts.length - 1), y = v => ht - 4 - (ht - 8) * (v - lo) / span;
  el("polyline", { points: vals.map((v, i) => `${x(i)},${y(v)}`).join(" "), fill: "none", stroke: "#64748b", "stroke-width": 1.5,
    "vector-effect": "non-scaling-stroke" }, svg);
  pts.forEach((p, i) => {
    const c = el("circle", { cx: x(i), cy: y(vals[i]), r: i === pts.length - 1 ? 3 : 2, fill: i === pts.length - 1 ? good : "#64748b",
      "data-label": p.label, "data-value": p.value }, svg);
    titled(c, `${monthName(p.label)}: ${p.text}`);
  });
}

// Tables. columns: [{title, key, fmt(value, row) -> text, num, cell(td, row) to draw the cell}]
function table(target, columns, rows, o = {}) {
  clear(target);
  const head = h("tr", {}, h("thead", {}, target));
  // a column is titled by the glossary's label of its term (c.term, else its key), money with the
  // currency; th[data-term] names the term (the glossary test reads it)
  columns.forEach(c => {
    const term = c.term || c.key;
    const title = c.title ?? `${L(term)}${c.money ? ` (${CURRENCY})` : ""}`;
    h("th", { ...(c.num ? { class: "num" } : {}), ...(c.title === undefined ? { "data-term": term } : {}) }, head, title);
  });
  const body = h("tbody", {}, target);
  if (!rows.length) {
    h("td", { colspan: columns.length, class: "nodata" }, h("tr", {}, body), o.empty || "No data for this month.");
  }
  rows.forEach(r => {
    const tr = h("tr", o.rowClass ? { class: o.rowClass(r) || "" } : {}, body);
    columns.forEach(c => {
      const td = h("td", { class: c.num ? "num" : (c.cls || "") }, tr);
      if (c.cell) c.cell(td, r);
      else td.textContent = c.fmt ? c.fmt(r[c.key], r) : (r[c.key] ?? "");
      td.dataset.key = c.key;
      td.dataset.value = r[c.key] ?? "";
    });
  });
}

function bandTag(parent, band) {
  return h("span", { class: `band ${["green", "yellow", "red"].includes(band) ? band : ""}` }, parent, band || "n/a");
}

// health "49.2 ↓ from 81.6"
function healthCell(td, r) {
  td.appendChild(document.createTextNode(fmt(r.health_score, 1)));
  const trend = r.health_trend; // up / down / flat, as the pipeline scored it (null: no earlier month)
  if (trend) h("span", { class: `arrow ${trend}` }, td, { up: " ▲", down: " ▼", flat: " ▶" }[trend] || "");
  if (isNum(r.previous_health_score)) h("span", { class: "muted", title: "last month" }, td, ` (was ${fmt(r.previous_health_score, 1)})`);
}

// "2025-07-17 · 14 days ago"
const agoCell = (dayKey, daysKey, never) => (td, r) => {
  td.classList.add("when");
  if (!r[dayKey]) { td.textContent = never; return; }
  td.textContent = `${dayShort(r[dayKey])} · ${r[daysKey] === 0 ? "today" : `${count(r[daysKey])} days ago`}`;
};

// -- the dashboard --------------------------------------------------------------------------------
const chart = name => document.querySelector(`[data-chart="${name}"]`);
const tableEl = name => document.querySelector(`[data-table="${name}"]`);
let failures = [];

// draw one section; a failure shows in the section and marks the page, the rest still draws
function section(name, fn) {
  try {
    fn();
  } catch (err) {
    failures.push(name);
    console.error(name, err);
    const box = document.querySelector(`[data-section="${name}"]`) || document.getElementById("main");
    h("div", { class: "banner error" }, box, `This section could not be drawn: ${err}`);
  }
}

function banners(list) {
  const box = document.getElementById("banners");
  clear(box);
  (list || []).forEach(b => h("div", { class: `banner ${["error", "warning", "info"].includes(b.level) ? b.level : "info"}`, role: "status" }, box, b.text));
}

function pipeline(d) {
  const box = document.getElementById("pipeline");
  clear(box);
  // the load
  const load = h("div", {}, box);
  h("h3", {}, load, "This month's load");
  h("p", {}, load, `Period ${d.run.period_start} to ${addDays(d.run.period_end, -1)}` +
    (d.run.month_closed ? " (month closed)" : " (month to date)"));
  h("p", {}, load, `Loaded ${when(d.run.loaded_at)}`);
  const rp = h("p", {}, load, "Run ");
  const a = h("a", { href: `/dags/customer_performance/runs/${encodeURIComponent(d.run.run_id)}`, "data-run": d.run.run_id }, rp, d.run.run_id);
  a.title = "Open the run in Airflow";
  // where the gate's Data Docs are: a link when they are on the web, else the location to open
  if (d.run.data_docs) {
    const dp = h("p", {}, load, "Data Docs: ");
    if (d.run.data_docs_link) {  // on an object store: a time-limited link the server signed
      h("a", { href: d.run.data_docs_link, "data-docs": "" }, dp, "open");
      h("code", { title: "on the export location" }, dp, " " + d.run.data_docs);
    } else if (/^https?:\/\//.test(d.run.data_docs)) h("a", { href: d.run.data_docs, "data-docs": "" }, dp, "open");
    else h("code", { "data-docs": "", title: "on the export location" }, dp, d.run.data_docs);
  }
  // the gate
  const gate = h("div", {}, box);
  h("h3", {}, gate, "Quality gate");
  if (!d.gate.length) h("p", { class: "muted" }, gate, "No gate results for this load.");
  ["critical", "warning", "info"].forEach(sev => {
    const g = d.gate.find(x => x.severity === sev);
    if (!g) return;
    const cls = !g.failed ? "ok" : sev === "critical" ? "fail" : "warn";
    const chip = h("span", { class: `chip ${cls}`, "data-gate": sev, "data-value": g.failed }, gate,
      `${sev}: ${count(g.failed)} of ${count(g.checks)} failed`);
    if (g.quarantined) chip.title = `${count(g.quarantined)} rows quarantined`;
  });
  const q = d.gate.reduce((s, g) => s + (Number(g.quarantined) || 0), 0);
  h("p", { class: "muted" }, gate, q ? `${count(q)} rows quarantined (not in these figures)` : "No rows quarantined");
  // rows per source
  const src = h("div", {}, box);
  h("h3", {}, src, "Rows per source");
  const hist = (d.history || []).filter(x => x.month <= d.month).slice(0, 3);
  if (!hist.length) h("p", { class: "muted" }, src, "No load history.");
  else {
    const t = h("table", { "data-table": "sources" }, src);
    const hr = h("tr", {}, h("thead", {}, t));
    h("th", { "data-term": "source" }, hr, L("source"));
    hist.forEach(x => h("th", { class: "num", "data-month": x.month }, hr, monthShort(x.month)));  // a value, not a term
    if (hist.length > 1) h("th", { class: "num", "data-term": "rows_change" }, hr, L("rows_change"));
    const tb = h("tbody", {}, t);
    [["extract_customer_db", "Customer DB"], ["extract_crm_api", "CRM API"], ["extract_sales_db", "Sales DB"]].forEach(([k, label]) => {
      const tr = h("tr", {}, tb);
      h("td", {}, tr, label);
      hist.forEach((x, i) => {
        const v = x.rows ? x.rows[k] : null;
        const td = h("td", { class: "num" + (v === 0 ? " bad" : ""), "data-key": i === 0 ? k : `${k}@${x.month}`, "data-value": v ?? "" }, tr, isNum(v) ? count(v) : "n/a");
        if (v === 0) td.title = "this source delivered nothing";
      });
      if (hist.length > 1) {
        const cur = hist[0].rows?.[k], old = hist[1].rows?.[k];
        h("td", { class: "num muted" }, tr, isNum(cur) && isNum(old) && old ? signed((cur - old) / old, v => pct(v)) : "n/a");
      }
    });
  }
  // Airflow
  const af = h("div", {}, box);
  h("h3", {}, af, "Airflow");
  if (!d.airflow || !d.airflow.available) {
    h("p", { class: "muted" }, af, "Run states are not available here.");
  } else if (!d.airflow.runs.length) {
    h("p", { class: "muted" }, af, "No Airflow run of this month.");
  } else {
    const r = d.airflow.runs[0];
    const p = h("p", {}, af, "Latest run: ");
    h("span", { class: `state-${r.state}`, "data-airflow-state": r.state }, p, r.state);
    if (r.end_date) h("p", { class: "muted" }, af, `ended ${when(r.end_date)}`);
    if (r.failed_tasks && r.failed_tasks.length) h("p", { class: "bad" }, af, `failed: ${r.failed_tasks.join(", ")}`);
    const link = h("p", {}, af);
    h("a", { href: `/dags/customer_performance/runs/${encodeURIComponent(r.run_id)}` }, link, "open in Airflow");
  }
}

// the closed month loaded before this one (history is newest first): a month whose last load is
// month to date is not a fair comparison
function previousMonth(d) {
  return (d.history || []).find(x => x.month < d.month && x.month_closed) || null;
}

// KPI cards: {key, kind, good direction, sub(k)}, each named by the glossary's label of its key
const CARDS = [
  { key: "mrr", alt: "revenue", kind: "money", good: 1 },
  { key: "customers", kind: "count", good: 1, sub: () => "on the books this month" },
  { key: "active_customers", kind: "count", good: 1,
    sub: k => `${pct(isNum(k.customers) && k.customers ? k.active_customers / k.customers : null)} bought this month` },
  { key: "new_customers", kind: "count", good: 1, sub: () => "registered this month" },
  { key: "mrr_at_risk", alt: "revenue_at_risk", kind: "money", good: -1,
    sub: k => `${pct(k.revenue_at_risk_share)} of revenue` },
  { key: "save_list_expected_loss", kind: "money", good: -1,
    sub: k => `${count(k.save_list_customers)} customers on the save list` },
  { key: "high_risk_customers", kind: "count", good: -1,
    sub: (k, m) => `${pct(k.high_risk_share)} of customers (churn ≥ ${fmt(m.high_risk_churn, 2)})` },
  { key: "avg_health_score", kind: "score", good: 1, sub: () => "0–100, higher is healthier" },
  { key: "nps", kind: "nps", good: 1,
    sub: k => `${count(k.promoters)} promoters, ${count(k.detractors)} detractors` },
  { key: "avg_satisfaction", kind: "sat", good: 1, sub: () => "out of 10" },
];
const kpiValue = (k, c) => isNum(k[c.key]) ? Number(k[c.key]) : isNum(k[c.alt]) ? Number(k[c.alt]) : null;
const kpiText = (v, kind) => ({ money, count, score: x => fmt(x, 1), nps: x => fmt(x, 1), sat: x => fmt(x, 2) }[kind] || count)(v);

function kpis(d) {
  const box = document.getElementById("kpis");
  clear(box);
  const prev = previousMonth(d);
  document.getElementById("kpi-lead").textContent = prev
    ? `${monthName(d.month)} against ${monthName(prev.month)}; the line under each figure is its trend over the loaded months.`
    : `${monthName(d.month)}: no earlier month is loaded, so there is nothing to compare with yet.`;
  const trend = (d.history || []).filter(x => x.month <= d.month).slice().reverse();
  CARDS.forEach(c => {
    const v = kpiValue(d.kpis, c);
    const pv = prev ? kpiValue(prev.kpis || {}, c) : null;
    // month to date against a whole month would read as a fall: compared once the month closes
    const mtd = !(d.run || {}).month_closed;
    const delta = v !== null && pv !== null && !mtd ? v - pv : null;
    const tile = h("div", { class: "kpi", "data-kpi": L(c.key), "data-term": c.key, "data-value": v ?? "", "data-previous": pv ?? "",
      "data-delta": delta === null ? "" : +delta.toFixed(4) }, box);
    h("div", { class: "value" }, tile, kpiText(v, c.kind));
    h("div", { class: "name" }, tile, L(c.key));
    if (c.sub) h("div", { class: "sub" }, tile, c.sub(d.kpis, d.model || {}));
    let cls = "flat", text;
    if (mtd && prev) text = `month to date: compared with ${monthShort(prev.month)} once the month closes`;
    else if (delta === null) text = prev ? `no ${monthShort(prev.month)} figure to compare` : "no earlier month loaded";
    else {
      const arrow = delta > 0 ? "▲" : delta < 0 ? "▼" : "▶";
      const abs = c.kind === "money" ? compact(Math.abs(delta)) : c.kind === "count" ? count(Math.abs(delta))
        : c.kind === "nps" || c.kind === "score" ? `${fmt(Math.abs(delta), 1)} pts` : fmt(Math.abs(delta), 2);
      const rel = ["money", "count", "sat"].includes(c.kind) && pv ? ` (${signed(delta / Math.abs(pv), x => pct(x))})` : "";
      text = `${arrow} ${delta < 0 ? "−" : delta > 0 ? "+" : "±"}${abs}${rel} vs ${vsMonth(prev.month, d.month)}`;
      cls = delta === 0 ? "flat" : Math.sign(delta) === c.good ? "good" : "bad";
    }
    h("div", { class: `delta ${cls}`, "data-delta-of": L(c.key) }, tile, text);
    sparkline(tile, trend.map(x => ({ label: x.month, value: kpiValue(x.kpis || {}, c), text: kpiText(kpiValue(x.kpis || {}, c), c.kind) })),
      cls === "bad" ? COLORS.down : cls === "good" ? COLORS.up : "#64748b");
  });
}

// -- the save list, paged, and the win-back list ---------------------------------------------------
const PAGE = 20;
let atRisk = { month: null, total: 0, offset: 0 };

const AT_RISK_COLUMNS = [
  { key: "customer_id", cell: (td, r) => {
    h("a", { href: `static/customer.html?id=${encodeURIComponent(r.customer_id)}&month=${encodeURIComponent(atRisk.month)}` }, td, `#${r.customer_id}`);
  } },
  { key: "name", cls: "nowrap" },
  { key: "segment", cls: "nowrap" },
  { key: "region", cls: "nowrap" },
  { key: "health_band", cell: (td, r) => bandTag(td, r.health_band) },
  { key: "health_score", cell: healthCell },
  { key: "churn_probability", num: true, fmt: v => pct(v, 0) },
  { key: "value_if_kept", num: true, money: true, fmt: v => isNum(v) ? fmt(v, 0) : "n/a" },
  { key: "expected_loss", num: true, money: true, fmt: v => isNum(v) ? fmt(v, 0) : "n/a" },
  { key: "last_purchase_day", cell: agoCell("last_purchase_day", "days_since_last_purchase", "never") },
  { key: "last_login_day", cell: agoCell("last_login_day", "days_since_last_login", "none on record") },
  { key: "churn_reason" },
];
const WIN_BACK_COLUMNS = AT_RISK_COLUMNS.filter(c => !["health_band", "health_score", "expected_loss"].includes(c.key));

function drawAtRisk(page) {
  atRisk.total = page.total ?? 0;
  atRisk.offset = page.offset ?? 0;
  table(tableEl("at_risk"), AT_RISK_COLUMNS, page.rows || [], { empty: "No active customer is at high risk this month." });
  const first = atRisk.total ? atRisk.offset + 1 : 0, last = Math.min(atRisk.offset + (page.rows || []).length, atRisk.total);
  document.getElementById("at-risk-page").textContent = `${count(first)}–${count(last)} of ${count(atRisk.total)}`;
  document.getElementById("at-risk-prev").disabled = atRisk.offset <= 0;
  document.getElementById("at-risk-next").disabled = atRisk.offset + PAGE >= atRisk.total;
}

async function turnPage(step) {
  const month = atRisk.month;
  if (!MONTH.test(month || "")) return;
  const offset = Math.max(0, atRisk.offset + step * PAGE);
  const buttons = ["at-risk-prev", "at-risk-next"].map(id => document.getElementById(id));
  buttons.forEach(b => { b.disabled = true; });
  try {
    const resp = await fetch(`api/month/${encodeURIComponent(month)}/at-risk?offset=${offset}&limit=${PAGE}`);
    if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
    const page = await resp.json();
    if (atRisk.month === month) drawAtRisk(page);
  } catch (err) {
    document.getElementById("at-risk-page").textContent = `could not load the page: ${err}`;
  }
}

function atRiskSection(d) {
  atRisk = { month: d.month, total: 0, offset: 0 };
  const ar = d.at_risk || { total: 0, rows: [] };
  const sum = document.getElementById("at-risk-summary");
  clear(sum);
  sum.dataset.count = "at_risk";
  sum.dataset.value = ar.total ?? 0;
  sum.dataset.expectedLoss = ar.expected_loss ?? "";
  h("b", {}, sum, `${count(ar.total)} customers`);
  sum.appendChild(document.createTextNode(" to call, "));
  h("b", {}, sum, `${money(ar.expected_loss)}`);
  sum.appendChild(document.createTextNode(" of expected loss between them"));
  const m = d.model || {};
  const days = m.no_purchase_days ?? 90;
  document.getElementById("risk-vocabulary").textContent =
    `Churn probability: the probability of no completed purchase in the next ${days} days` +
    ` (${m.method === "gradient_boosting" ? "gradient-boosted model trained on this data's own history" : "BTYD model; the trained model needs more published history"}).` +
    ` Save list: still active (${m.active || "n/a"}), churn probability at least ${fmt(ar.high_risk_churn ?? m.high_risk_churn, 2)},` +
    " at least 1 to lose, the largest expected loss first. Expected loss: the value a customer brings over the next 12 months if kept" +
    " × its churn probability. Win back: high risk and no longer active (most likely gone already), the most valuable if won back first. Health arrows compare with last month.";
  const wb = d.win_back || [];
  const wsum = document.getElementById("win-back-summary");
  clear(wsum);
  wsum.dataset.count = "win_back";
  wsum.dataset.value = wb.length;
  h("b", {}, wsum, `${count(wb.length)} customers`);
  wsum.appendChild(document.createTextNode(" to win back, "));
  h("b", {}, wsum, money(wb.reduce((s, r) => s + (Number(r.value_if_kept) || 0), 0)));
  wsum.appendChild(document.createTextNode(" a year between them if won back"));
  table(tableEl("win_back"), WIN_BACK_COLUMNS, wb, { empty: "No customer is likely gone this month." });
  document.getElementById("at-risk-csv").setAttribute("href", `api/month/${encodeURIComponent(d.month)}/at-risk.csv`);
  document.getElementById("at-risk-prev").onclick = () => turnPage(-1);
  document.getElementById("at-risk-next").onclick = () => turnPage(1);
  drawAtRisk(ar);
}

// -- health ---------------------------------------------------------------------------------------
function health(d) {
  const bandColor = p => COLORS[p.label] || COLORS.unknown;
  const hb = d.health_bands || [];
  const total = hb.reduce((s, r) => s + (Number(r.revenue) || 0), 0);
  vbars(chart("health_bands"), hb.map(r => ({ label: r.label, value: r.customers, share: r.share, revenue: r.revenue })), {
    colorOf: bandColor, yTitle: "Customers", xTitle: `Health band (red: health score below ${fmt(d.model?.red_below, 0)})`,
    valueFmt: count, frame: { m: { b: 70 } },
    xLabel: p => `${p.label}: ${pct(p.share)} of customers`,
  });
  // revenue under each band's label
  const svg = chart("health_bands").querySelector("svg");
  if (svg) {
    const rects = svg.querySelectorAll("rect[data-label]");
    rects.forEach((r, i) => {
      const b = hb[i];
      const cx = Number(r.getAttribute("x")) + Number(r.getAttribute("width")) / 2;
      svgText(svg, cx, 270 - 70 + 30, `revenue ${money(b.revenue)} (${pct(total ? b.revenue / total : null, 0)})`, { "text-anchor": "middle", class: "note" });
      svgText(svg, cx, 270 - 70 + 44, `at risk ${money(b.revenue_at_risk)}`, { "text-anchor": "middle", class: "note" });
    });
  }
  const hist = (d.history || []).filter(x => x.month <= d.month).slice().reverse();
  stacked(chart("health_by_month"), hist.map(x => ({ label: x.month, parts: { green: x.kpis?.health_green, yellow: x.kpis?.health_yellow, red: x.kpis?.health_red } })),
    ["green", "yellow", "red"], { green: COLORS.green, yellow: COLORS.yellow, red: COLORS.red },
    { yTitle: "Customers", xTitle: "Month", xLabel: g => monthName(g.label) });
  table(tableEl("movers"), [
    { key: "customer_id", cell: (td, r) => h("a", { href: `static/customer.html?id=${encodeURIComponent(r.customer_id)}&month=${encodeURIComponent(d.month)}` }, td, `#${r.customer_id}`) },
    { key: "name" }, { key: "segment" }, { key: "region" },
    { key: "health_band", cell: (td, r) => bandTag(td, r.health_band) },
    { key: "previous_health_score", num: true, fmt: v => fmt(v, 1) },
    { key: "health_score", num: true, fmt: v => fmt(v, 1) },
    { key: "health_change", num: true, cell: (td, r) => { td.textContent = signed(r.health_change, v => fmt(v, 1)); td.classList.add("bad"); } },
    { key: "churn_probability", num: true, fmt: v => pct(v, 0) },
    { key: "expected_loss", num: true, money: true, fmt: v => fmt(v, 0) },
    { key: "risk_driver" },
  ], d.movers || [], { empty: previousMonth(d) ? "No customer's health fell since last month." : "No data: last month is not loaded, so there is nothing to compare with." });
}

// -- revenue and activity -------------------------------------------------------------------------
function revenue(d) {
  const mname = monthName(d.month), start = d.run.period_start, end = d.run.period_end;
  const mtd = !d.run.month_closed ? `month to date: through ${dayShort(addDays(end, -1))}` : null;
  const day = p => String(+String(p.label).slice(8, 10));
  line(chart("daily_revenue"), d.daily.map(r => ({ label: r.day, value: r.revenue })), {
    yTitle: `Revenue (${CURRENCY})`, xTitle: `Day of ${mname}`, xLabel: day, area: true, labelEvery: 2, note: mtd,
  });
  vbars(chart("daily_transactions"), d.daily.map(r => ({ label: r.day, value: r.transactions })), {
    color: COLORS.transactions, yTitle: "Transactions", xTitle: `Day of ${mname}`, xLabel: day, valueFmt: count, labelEvery: 2, note: mtd,
  });
  const partial = p => {
    const inside = [0, 1, 2, 3, 4, 5, 6].map(i => addDays(p.label, i)).filter(x => x >= start && x < end).length;
    return inside < 7 ? `partial week: ${inside} of its 7 days in the period` : null;
  };
  const wk = { xTitle: `ISO week (starting Monday), ${mname}`, xLabel: p => `wk of ${dayShort(p.label)}`, partial,
    partialNote: "hatched = partial week (part of it outside the period)" };
  vbars(chart("weekly_revenue"), d.weekly.map(r => ({ label: r.week, value: r.revenue })), { ...wk, yTitle: `Revenue (${CURRENCY})` });
  vbars(chart("weekly_transactions"), d.weekly.map(r => ({ label: r.week, value: r.transactions })),
    { ...wk, yTitle: "Transactions", color: COLORS.transactions, valueFmt: count });
  const total = rows => rows.reduce((s, r) => s + (Number(r.revenue) || 0), 0);
  const rt = total(d.regions), st = total(d.segments);
  hbars(chart("regions"), d.regions.map(r => ({ label: r.label, value: r.revenue, customers: r.customers })), {
    color: "#ea580c", xTitle: `Revenue (${CURRENCY})`, valueFmt: money,
    extra: p => ` · ${pct(rt ? p.value / rt : null, 0)} · ${count(p.customers)} cust.`, right: 190,
  });
  const pen = d.penetration || [];
  const market = pen.some(r => r.penetration_base === "addressable_market");
  if (!pen.length) noData(chart("penetration"));
  else {
    hbars(chart("penetration"), pen.map(r => ({ label: r.label, value: r.market_penetration, base: r.penetration_base,
      active: r.active_customers, of: r.penetration_base === "addressable_market" ? r.addressable_market : r.customers })), {
      color: "#0d9488", valueFmt: v => pct(v), right: 250,
      xTitle: `${L("market_penetration")}: ${L("active_customers").toLowerCase()} over ${market ? "the addressable market where given, else" : ""} the region's customers`,
      extra: p => ` · ${count(p.active)} of ${count(p.of)} ${p.base === "addressable_market" ? "in the market" : "customers"}`,
    });
  }
  hbars(chart("segments"), d.segments.map(r => ({ label: r.label, value: r.revenue, customers: r.customers })), {
    color: "#0891b2", xTitle: `Revenue (${CURRENCY})`, valueFmt: money,
    extra: p => ` · ${pct(st ? p.value / st : null, 0)} · ${count(p.customers)} cust.`, right: 190,
  });
  const par = d.pareto || [];
  const at20 = par.find(r => Number(r.customers_pct) === 20);
  line(chart("pareto"), par.map(r => ({ label: r.customers_pct, value: r.revenue_pct, x: Number(r.customers_pct) })), {
    color: "#dc2626", yMax: 100, xMin: 0, xMax: 100, origin: true, tickFmt: v => `${v} %`, xTickFmt: v => `${v} %`,
    yTitle: "Share of revenue (%)", xTitle: "Share of the customers who bought, largest first (%)", valueFmt: v => `${fmt(v, 1)} %`,
    refs: [{ x: 20, text: "20 % of customers" }, { y: 80, text: "80 % of revenue" }],
    marks: at20 ? [{ x: 20, y: at20.revenue_pct, text: `top 20 % of customers: ${pct(at20.revenue_share)} of revenue` }] : [],
  });
  if (isNum(d.kpis.top20_revenue_share)) {
    h("p", { class: "caption" }, chart("pareto"),
      `Over the customers who bought this month (revenue above 0), as the KPI counts them: the top 20 % hold ` +
      `${pct(d.kpis.top20_revenue_share)} of revenue.`);
  }
  // every bucket of 10, an empty one as 0
  const eng = new Map((d.engagement || []).map(r => [Number(r.bucket), r.customers]));
  const buckets = (d.engagement || []).length ? [0, 10, 20, 30, 40, 50, 60, 70, 80, 90] : [];
  vbars(chart("engagement"), buckets.map(b => ({ label: `${b}-${b + 10}`, value: eng.get(b) ?? 0 })), {
    color: "#16a34a", yTitle: "Customers", xTitle: "Engagement score (0–100, buckets of 10)", valueFmt: count,
  });
}

// -- growth against last month --------------------------------------------------------------------
function growth(d) {
  const prev = previousMonth(d);
  const rows = d.comparison || [];
  const vs = prev ? monthName(prev.month) : "last month";
  const cols = level => [
    { key: "label", term: level },
    { key: "revenue", num: true, money: true, fmt: v => fmt(v, 0) },
    { key: "previous_revenue", num: true, money: true, fmt: v => fmt(v, 0) },
    { key: "revenue_change", num: true, money: true, cell: (td, r) => {
      td.textContent = isNum(r.revenue_change) ? signed(r.revenue_change, v => fmt(v, 0)) : "n/a";
      if (isNum(r.revenue_change)) td.classList.add(r.revenue_change >= 0 ? "good" : "bad");
    } },
    { key: "revenue_change_share", num: true, fmt: v => signed(v, x => pct(x)) },
    { key: "customers", num: true, fmt: count },
    { key: "new_customers", num: true, fmt: count },
    { key: "acquisition_rate", num: true, fmt: v => pct(v) },
    { key: "active_customers", num: true, fmt: count },
    { key: "previous_active_customers", num: true, fmt: count },
    { key: "retained_customers", num: true, fmt: count },
    { key: "retention_rate", num: true, fmt: v => pct(v) },
  ];
  const noPrev = "No data: the previous month is not loaded, so there is no change to show.";
  ["region", "crm_segment"].forEach(level => {
    const part = rows.filter(r => r.grouping_level === level);
    table(tableEl(`comparison_${level}`), cols(level), part);
    const withChange = part.filter(r => isNum(r.revenue_change));
    if (!withChange.length) noData(chart(`${level}_change`), part.length ? noPrev : "No data for this month.");
    else {
      hbars(chart(`${level}_change`), withChange.map(r => ({ label: r.label, value: r.revenue_change, share: r.revenue_change_share })), {
        colorOf: p => (p.value >= 0 ? COLORS.up : COLORS.down), valueFmt: v => signed(v, money),
        extra: p => isNum(p.share) ? ` (${signed(p.share, x => pct(x))})` : "",
        xTitle: `Revenue change vs ${vs} (${CURRENCY})`, right: 170,
      });
    }
  });
  const tot = rows.find(r => r.grouping_level === "total");
  const cap = document.querySelector('[data-section="growth"] h2');
  cap.textContent = "Growth against last month";
  if (tot && isNum(tot.revenue_change)) {
    h("span", { class: "muted", style: "font-weight:400;font-size:.9rem" }, cap,
      ` — total revenue ${signed(tot.revenue_change, money)} (${signed(tot.revenue_change_share, x => pct(x))}) vs ${vs}; ` +
      `acquisition ${pct(tot.acquisition_rate)}, retention ${pct(tot.retention_rate)}`);
  }
}

// -- engagement and support -----------------------------------------------------------------------
function engagement(d) {
  heatmap(chart("heatmap"), d.heatmap || []);
  const it = d.interactions || [];
  const types = it.filter(r => r.grouping_level === "interaction_type").map(r => r.interaction_type ?? "unknown");
  const depts = it.filter(r => r.grouping_level === "department").map(r => r.department ?? "unknown");
  const pairs = new Map(it.filter(r => r.grouping_level === "interaction_type+department")
    .map(r => [`${r.interaction_type ?? "unknown"}|${r.department ?? "unknown"}`, r.interactions]));
  const palette = ["#2563eb", "#7c3aed", "#0891b2", "#ea580c", "#dc2626", "#16a34a", "#ca8a04"];
  grouped(chart("interactions"), types, depts.map((k, i) => ({ key: k, color: palette[i % palette.length] })),
    (t, dep) => pairs.get(`${t}|${dep}`) ?? null, { yTitle: "Interactions", xTitle: "Interaction type (bars: department)" });
  table(tableEl("interactions_department"), [
    { key: "department", fmt: (v, r) => r.grouping_level === "total" ? "all" : v ?? "unknown" },
    { key: "interactions", num: true, fmt: count },
    { key: "customers", num: true, fmt: count },
    { key: "avg_satisfaction", num: true, fmt: v => fmt(v, 2) },
    { key: "resolved_share", num: true, fmt: v => pct(v) },
    { key: "escalated_share", num: true, fmt: v => pct(v) },
    { key: "avg_resolution_hours", num: true, fmt: v => fmt(v, 1) },
  ], [...it.filter(r => r.grouping_level === "department"), ...it.filter(r => r.grouping_level === "total")],
  { rowClass: r => r.grouping_level === "total" ? "all" : "" });

  const k = d.kpis;
  const sec = it.find(r => r.grouping_level === "department" && r.department === "security");
  smallTiles(document.getElementById("security"), [
    [L("security_incidents"), count(k.security_incidents), sec ? `${pct(sec.resolved_share)} resolved` : ""],
    [L("critical_incidents"), count(k.critical_incidents), `${pct(k.critical_incident_share)} of incidents`],
    [L("false_positives"), count(k.false_positives), `${pct(k.false_positive_share)} of incidents`],
  ]);
  const order = ["critical", "high", "medium", "low"];
  const pri = it.filter(r => r.grouping_level === "department+priority" && r.department === "security" && r.priority)
    .sort((a, b) => (order.indexOf(a.priority) + 99) % 99 - (order.indexOf(b.priority) + 99) % 99);
  const priColor = { critical: "#b91c1c", high: "#ea580c", medium: "#ca8a04", low: "#64748b" };
  vbars(chart("security_priority"), pri.map(r => ({ label: r.priority, value: r.interactions, avg: r.avg_resolution_hours })), {
    colorOf: p => priColor[p.label] || COLORS.neutral, valueFmt: count, yTitle: "Security incidents",
    xTitle: "Priority (department 'security')", frame: { h: 240, m: { b: 58 } },
    xSub: p => `${fmt(p.avg, 1)} h to resolve`,
  });

  const answers = Number(k.satisfaction_answers) || 0, pro = Number(k.promoters) || 0, det = Number(k.detractors) || 0;
  const passive = answers ? Math.max(answers - pro - det, 0) : null;
  smallTiles(document.getElementById("nps"), [
    [L("nps"), fmt(k.nps, 1), `${count(answers)} ${L("satisfaction_answers").toLowerCase()}, −100 to 100`],
    [L("promoters"), count(k.promoters), answers ? pct(pro / answers) : ""],
    [L("detractors"), count(k.detractors), answers ? pct(det / answers) : ""],
  ]);
  if (!answers) noData(chart("nps"), "No satisfaction answers this month.");
  else {
    hbars(chart("nps"), [
      { label: "promoters (9–10)", value: pro }, { label: "passives (7–8)", value: passive }, { label: "detractors (0–6)", value: det },
    ], { colorOf: (p, i) => [COLORS.green, "#94a3b8", COLORS.red][i], valueFmt: count, xTitle: L("satisfaction_answers"),
      extra: p => ` (${pct(p.value / answers, 0)})`, labelW: 130, right: 110 });
  }
}

function smallTiles(box, tiles) {
  clear(box);
  tiles.forEach(([name, value, sub]) => {
    const t = h("div", { class: "kpi", "data-kpi": name }, box);
    h("div", { class: "value" }, t, value);
    h("div", { class: "name" }, t, name);
    if (sub) h("div", { class: "sub" }, t, sub);
  });
}

// -- associations ---------------------------------------------------------------------------------
function associations(d) {
  const all = d.correlations || [];
  const spec = {
    activity_decile: { what: "sessions", with: "revenue", cols: [
      { key: "bucket", term: "activity_decile" }, { key: "customers", num: true, fmt: count },
      { key: "mean_value", term: "mean_sessions", num: true, fmt: v => fmt(v, 1) },
      { key: "mean_revenue", num: true, money: true, fmt: v => fmt(v, 0) },
      { key: "retention_rate", num: true, fmt: v => pct(v) }] },
    support_contacts: { what: "support contacts", with: "satisfaction", cols: [
      { key: "bucket", term: "support_contacts" }, { key: "customers", num: true, fmt: count },
      { key: "mean_satisfaction", num: true, fmt: v => fmt(v, 2) }] },
    feature_usage: { what: "features used last month", with: "retention", cols: [
      { key: "bucket", term: "feature_usage" }, { key: "customers", num: true, fmt: count },
      { key: "retention_rate", num: true, fmt: v => pct(v) }] },
  };
  Object.entries(spec).forEach(([name, s]) => {
    const rows = all.filter(r => r.analysis === name);
    const head = rows.find(r => Number(r.bucket_order) === 0);
    const buckets = rows.filter(r => Number(r.bucket_order) !== 0);
    const cap = document.querySelector(`[data-caption="${name}"]`);
    const usable = buckets.length && head && Number(head.customers) > 0;
    cap.dataset.value = head?.correlation ?? "";
    cap.textContent = usable
      ? `Correlation r = ${fmt(head.correlation, 2)} between ${s.what} and ${head.correlated_with || s.with} over ${count(head.customers)} customers. ` +
        "This is an association, not causation."
      : "No data for this month (the analysis needs an earlier month or activity).";
    table(tableEl(name), s.cols, usable ? buckets : [], { empty: "No data for this month." });
  });
}

// -- model and data quality -----------------------------------------------------------------------
function model(d) {
  const m = d.model || {};
  const rows = d.backtest || [];
  const params = Object.entries(m.params || {}).map(([k, v]) => `${k} ${fmt(v, 3)}`).join(", ");
  const trained = m.trained || {}, held = trained.holdout || {};
  document.getElementById("model").textContent =
    `Churn probability: the probability of no completed purchase in the next ${m.no_purchase_days ?? 90} days. This month's: ${m.method || "n/a"}` +
    (held.month ? ` (trained on ${count(trained.training_rows)} rows of ${(trained.training_months || []).join(", ")}; on the held-out month ${held.month}` +
      ` it ranked the event at ROC AUC ${fmt(held.model_auc, 3)}, the BTYD probability ${fmt(held.btyd_auc, 3)}, recency ${fmt(held.recency_auc, 3)})` : "") +
    (trained.fallback_reason ? `; the BTYD probability is published: ${trained.fallback_reason}` : "") +
    (params ? `. BTYD fit: ${params}` : "") + (m.fallback_reason ? `; BTYD fallback: ${m.fallback_reason}` : "") +
    ". The back-test scores earlier months' predictions against what those customers actually did: the churn probability at the horizon that holds its event, beside recency, the BTYD probability and the health score on the same customers.";
  const red = Object.fromEntries(rows.filter(r => r.measure === "health_band" && r.bucket === "red")
    .map(r => [r.horizon_months, r.lift_over_green]));
  const empty = "No data: a back-test needs an earlier month's predictions.";
  table(tableEl("backtest"), [
    { key: "predicted_month", fmt: v => v ? monthName(String(v).slice(0, 7)) : "n/a" },
    { key: "horizon_months", num: true, fmt: count },
    { key: "customers", num: true, fmt: count },
    { key: "churned", num: true, fmt: count },
    { key: "observed_churn_rate", num: true, fmt: v => pct(v) },
    { key: "auc", num: true, fmt: v => fmt(v, 3) },
    // the baselines: the same event ranked by recency alone and by the health score alone
    { key: "recency_auc", num: true, fmt: v => fmt(v, 3) },
    { key: "btyd_auc", num: true, fmt: v => fmt(v, 3) },
    { key: "health_auc", num: true, fmt: v => fmt(v, 3) },
    { key: "active_auc", num: true, fmt: v => fmt(v, 3) },
    { key: "active_recency_auc", num: true, fmt: v => fmt(v, 3) },
    { key: "save_precision", num: true, fmt: v => pct(v) },
    { key: "red_over_green", term: "lift_over_green", num: true, fmt: v => isNum(v) ? `${fmt(v, 1)}×` : "n/a" },
    { key: "expected_purchases", num: true, fmt: count },
    { key: "actual_purchases", num: true, fmt: count },
    // the CLV's value over the horizon against the revenue made
    { key: "expected_revenue", num: true, fmt: money },
    { key: "actual_revenue", num: true, fmt: money },
  ], rows.filter(r => r.measure === "overall").map(r => ({ ...r, red_over_green: red[r.horizon_months] ?? null })), { empty });
  table(tableEl("calibration"), [
    { key: "horizon_months", num: true, fmt: count },
    { key: "bucket", term: "churn_decile" },
    { key: "customers", num: true, fmt: count },
    { key: "mean_churn_probability", num: true, fmt: v => pct(v) },
    { key: "observed_churn_rate", num: true, fmt: v => pct(v) },
  ], rows.filter(r => r.measure === "churn_decile"), { empty });
  const GROUPS = ["1", "2-3", "4-9", "10+"];
  table(tableEl("frequency_groups"), [
    { key: "horizon_months", num: true, fmt: count },
    { key: "bucket", term: "frequency_group" },
    { key: "customers", num: true, fmt: count },
    { key: "expected_purchases", num: true, fmt: count },
    { key: "actual_purchases", num: true, fmt: count },
    { key: "expected_revenue", num: true, fmt: money },
    { key: "actual_revenue", num: true, fmt: money },
  ], rows.filter(r => r.measure === "frequency_group")
    .sort((a, b) => a.horizon_months - b.horizon_months || GROUPS.indexOf(a.bucket) - GROUPS.indexOf(b.bucket)), { empty });
  table(tableEl("quality"), [
    { key: "period", cell: (td, r) => { td.textContent = `${r.period_start} to ${addDays(r.period_end, -1)}`; } },
    { key: "checks", num: true, fmt: count },
    { key: "failed", num: true, fmt: count },
    { key: "critical", num: true, fmt: count },
    { key: "quarantined", num: true, fmt: count },
  ], d.quality || []);
  const t = d.trust || {};
  const against = (v, min) => isNum(v) ? `${pct(v)} (min ${pct(min)})` : "n/a";
  table(tableEl("scores"), [
    { key: "table_name" },
    { key: "completeness", num: true, cell: (td, r) => { td.textContent = against(r.completeness, r.completeness_min);
      if (isNum(r.completeness)) td.classList.add(r.completeness >= r.completeness_min ? "good" : "bad"); } },
    { key: "accuracy", num: true, cell: (td, r) => { td.textContent = against(r.accuracy, r.accuracy_min);
      if (isNum(r.accuracy)) td.classList.add(r.accuracy >= r.accuracy_min ? "good" : "bad"); } },
    { key: "freshness", cell: (td, r) => {
      td.textContent = r.fresh === null || r.fresh === undefined ? "not checked"
        : `${r.fresh ? "fresh" : "stale"} (within ${count(r.freshness_days)} days of the period end)`;
      if (r.freshness_detail) td.title = r.freshness_detail;
      if (r.fresh !== null && r.fresh !== undefined) td.classList.add(r.fresh ? "good" : "bad"); } },
  ], t.scores || []);
  table(tableEl("warnings"), [
    { key: "rule" }, { key: "failing_rows", num: true, fmt: count }, { key: "rows_checked", num: true, fmt: count },
    { key: "quarantined_rows", num: true, fmt: count },
    { key: "ceiling", num: true, cell: (td, r) => { td.textContent = isNum(r.ceiling)
      ? `${pct(r.rows_checked ? r.failing_rows / r.rows_checked : null, 2)} of ${pct(r.ceiling, 2)}` : r.message || "an alert, no ceiling"; } },
  ], t.warnings || [], { empty: "No warning rule failed this month." });
  table(tableEl("alerts"), [
    { key: "alert" }, { key: "severity" }, { key: "scope" }, { key: "message" },
  ], d.alerts || [], { empty: "No alerts this month." });
}

function draw(d) {
  CURRENCY = d.currency || "USD";
  LABELS = d.labels || {};
  const start = d.run.period_start, end = d.run.period_end;
  document.getElementById("period").textContent = `${monthName(d.month)}: ${dayShort(start)} – ${dayShort(addDays(end, -1))} ${end.slice(0, 4)}`;
  const badge = document.getElementById("closed");
  badge.hidden = false;
  badge.className = d.run.month_closed ? "badge" : "badge mtd";
  badge.textContent = d.run.month_closed ? "month closed" : "month to date";
  banners(d.banners);
  section("pipeline", () => pipeline(d));
  section("kpis", () => kpis(d));
  section("at_risk", () => atRiskSection(d));
  section("health", () => health(d));
  section("revenue", () => revenue(d));
  section("growth", () => growth(d));
  section("engagement", () => engagement(d));
  section("associations", () => associations(d));
  section("model", () => model(d));
}

async function show(month) {
  const main = document.getElementById("main"), empty = document.getElementById("empty");
  document.body.dataset.ready = "false";
  failures = [];
  banners([]);
  if (!MONTH.test(month)) {
    empty.textContent = "That is not a month: use ?month=YYYY-MM.";
    main.hidden = true; empty.hidden = false;
    document.body.dataset.ready = "true";
    return;
  }
  const resp = await fetch(`api/month/${encodeURIComponent(month)}`);
  if (resp.ok) {
    main.hidden = false; empty.hidden = true;
    draw(await resp.json());
  } else {
    let detail = resp.statusText;
    try { detail = (await resp.json()).detail || detail; } catch (_) { /* not JSON */ }
    empty.textContent = `No data for ${month}: ${detail}. Run or backfill the month first.`;
    main.hidden = true; empty.hidden = false;
    document.getElementById("period").textContent = "";
    document.getElementById("closed").hidden = true;
  }
  document.body.dataset.month = month;
  document.body.dataset.ready = failures.length ? "error" : "true";
  if (failures.length) document.body.dataset.failed = failures.join(" ");
}

async function start() {
  const listed = await fetch("api/months");
  if (!listed.ok) throw new Error(listed.status === 401 ? "sign in to Airflow first" : `HTTP ${listed.status}`);
  const { months, latest_complete } = await listed.json();
  const loaded = (months || []).filter(m => MONTH.test(m)).sort().reverse();
  const wanted = new URLSearchParams(location.search).get("month");
  const month = wanted ?? (latest_complete || loaded[0]);
  const select = document.getElementById("month");
  const options = MONTH.test(month || "") && !loaded.includes(month) ? [month, ...loaded].sort().reverse() : loaded;
  options.forEach(m => { h("option", { value: m }, select, `${monthName(m)}${m === latest_complete ? " (latest complete)" : ""}`); });
  select.value = MONTH.test(month || "") ? month : "";
  select.onchange = () => {
    history.replaceState(null, "", `?month=${encodeURIComponent(select.value)}`);
    show(select.value).catch(fail);
  };
  if (month === null || month === undefined) {
    const empty = document.getElementById("empty");
    empty.textContent = "No month has been loaded yet: run or backfill the DAG first.";
    empty.hidden = false;
    document.body.dataset.ready = "true";
    return;
  }
  await show(month);
}

function fail(err) {
  const empty = document.getElementById("empty");
  empty.textContent = `The dashboard could not load: ${err}`;
  empty.hidden = false;
  document.body.dataset.ready = "error";
}

if (document.body.dataset.page === "dashboard") start().catch(fail);
