// The Customer Performance dashboard: fetches one month from the plugin's API and draws plain
// SVG charts. No library and nothing from the internet. Every bar and point carries its label
// and value as data attributes (data-label, data-value); body[data-ready] is set when done.
"use strict";

const NS = "http://www.w3.org/2000/svg";
// dates as MM-DD on an axis; anything else as it is
const tick = label => /^\d{4}-\d{2}-\d{2}$/.test(String(label)) ? String(label).slice(5) : String(label);
const fmt = (v, d = 0) => v === null || v === undefined ? "n/a"
  : Number(v).toLocaleString("en-US", { minimumFractionDigits: d, maximumFractionDigits: d });

function el(tag, attrs = {}, parent = null, ns = NS) {
  const e = ns ? document.createElementNS(ns, tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (parent) parent.appendChild(e);
  return e;
}

function svgFrame(target, w = 440, h = 200) {
  target.innerHTML = "";
  return el("svg", { viewBox: `0 0 ${w} ${h}`, width: "100%", role: "img" }, target);
}

// bars: [{label, value}]
function bars(target, points, color = "#2f80ed") {
  const w = 440, h = 200, left = 60, bottom = 40;
  const svg = svgFrame(target, w, h);
  const max = Math.max(0, ...points.map(p => p.value));
  const min = Math.min(0, ...points.map(p => p.value));
  const span = (max - min) || 1;
  const bw = (w - left - 10) / Math.max(points.length, 1);
  const y = v => 10 + (h - bottom - 10) * (max - v) / span;
  el("text", { x: 4, y: 14 }, svg).textContent = fmt(max);
  el("text", { x: 4, y: h - bottom }, svg).textContent = fmt(min);
  points.forEach((p, i) => {
    const top = Math.min(y(p.value), y(0)), height = Math.abs(y(p.value) - y(0));
    const r = el("rect", {
      x: left + i * bw + 1, y: top, width: Math.max(bw - 2, 1), height: Math.max(height, 0.5), fill: color,
      "data-label": p.label, "data-value": p.value,
    }, svg);
    el("title", {}, r).textContent = `${p.label}: ${fmt(p.value, 2)}`;
    if (points.length <= 8 || i % Math.ceil(points.length / 8) === 0) {
      const t = el("text", { x: left + i * bw + bw / 2, y: h - bottom + 12, "text-anchor": "middle" }, svg);
      t.textContent = tick(p.label);
    }
  });
}

// line: [{label, value}] with numeric or categorical x
function line(target, points, color = "#27ae60", maxY = null) {
  const w = 440, h = 200, left = 60, bottom = 30;
  const svg = svgFrame(target, w, h);
  const max = maxY ?? (Math.max(0, ...points.map(p => p.value)) || 1);
  const x = i => left + (w - left - 10) * (points.length > 1 ? i / (points.length - 1) : 0.5);
  const y = v => 10 + (h - bottom - 10) * (1 - v / max);
  el("text", { x: 4, y: 14 }, svg).textContent = fmt(max);
  el("text", { x: 4, y: h - bottom }, svg).textContent = "0";
  el("polyline", {
    points: points.map((p, i) => `${x(i)},${y(p.value)}`).join(" "), fill: "none", stroke: color, "stroke-width": 2,
  }, svg);
  points.forEach((p, i) => {
    const c = el("circle", { cx: x(i), cy: y(p.value), r: 2.5, fill: color, "data-label": p.label, "data-value": p.value }, svg);
    el("title", {}, c).textContent = `${p.label}: ${fmt(p.value, 2)}`;
    if (i % Math.ceil(points.length / 8) === 0) {
      el("text", { x: x(i), y: h - bottom + 14, "text-anchor": "middle" }, svg).textContent = tick(p.label);
    }
  });
}

function table(target, columns, rows) {
  target.innerHTML = "";
  const head = el("tr", {}, el("thead", {}, target, null), null);
  columns.forEach(([title]) => { el("th", {}, head, null).textContent = title; });
  const body = el("tbody", {}, target, null);
  if (!rows.length) {
    const td = el("td", { colspan: columns.length }, el("tr", {}, body, null), null);
    td.textContent = "none";
  }
  rows.forEach(r => {
    const tr = el("tr", {}, body, null);
    columns.forEach(([, key, digits]) => {
      const td = el("td", digits === undefined ? {} : { class: "num" }, tr, null);
      td.textContent = digits === undefined ? (r[key] ?? "") : fmt(r[key], digits);
      td.dataset.key = key;
      td.dataset.value = r[key] ?? "";
    });
  });
}

function kpis(k) {
  const tiles = [
    ["Customers", k.customers], ["Active customers", k.active_customers], ["Revenue", fmt(k.revenue, 2)],
    ["Transactions", k.transactions], ["Revenue at risk", fmt(k.revenue_at_risk, 2)],
    ["High-risk customers", k.high_risk_customers], ["Top 20 % revenue share", fmt(100 * (k.top20_revenue_share ?? 0), 1) + " %"],
    ["Avg satisfaction", fmt(k.avg_satisfaction, 2)], ["Avg health score", fmt(k.avg_health_score, 1)],
  ];
  drawTiles(document.getElementById("kpis"), tiles);
}

// KPI tiles: [[name, value]], a number formatted, anything else as it is (always as text)
function drawTiles(box, tiles) {
  box.innerHTML = "";
  tiles.forEach(([name, value]) => {
    const d = el("div", { class: "kpi", "data-kpi": name }, box, null);
    el("b", {}, d, null).textContent = typeof value === "number" ? fmt(value) : value;
    el("span", {}, d, null).textContent = name;
  });
}

// The one vocabulary of risk, with the thresholds the month was computed with.
function risk(k, m) {
  const tiles = [
    [`High risk (churn ≥ ${fmt(m.high_risk_churn, 2)})`, k.high_risk_customers],
    ["At-risk segment", k.segment_at_risk],
    [`Red band (health < ${fmt(m.red_below, 0)})`, k.health_red],
    ["Revenue at risk", fmt(k.revenue_at_risk, 2) + ` (${fmt(100 * (k.revenue_at_risk_share ?? 0), 1)} %)`],
    ["Value at stake", k.value_at_stake === undefined ? "n/a" : fmt(k.value_at_stake, 2)],
  ];
  drawTiles(document.getElementById("risk"), tiles);
  document.getElementById("risk-vocabulary").textContent =
    `High risk: churn probability of at least ${fmt(m.high_risk_churn, 2)} (no purchase expected again). ` +
    "At-risk segment: the high-risk customers who bought before and are not new this month. " +
    `Red band: a health score below ${fmt(m.red_below, 0)}, a broader signal (engagement, satisfaction and ` +
    "support count too). Revenue at risk: this month's revenue × churn probability. Value at stake: " +
    "the next 12 months' expected value (CLV) × churn probability, largest where a valuable customer's future is in the balance.";
}

function backtest(rows, m) {
  const params = Object.entries(m.params || {}).map(([k, v]) => `${k} ${fmt(v, 3)}`).join(", ");
  document.getElementById("model").textContent = `(this month's model: ${m.method || "n/a"}` +
    (params ? `, ${params}` : "") + (m.fallback_reason ? `; fallback: ${m.fallback_reason}` : "") + ")";
  const red = Object.fromEntries(rows.filter(r => r.measure === "health_band" && r.bucket === "red")
    .map(r => [r.horizon_months, r.lift_over_green]));
  table(document.querySelector('[data-table="backtest"]'), [
    ["Predicted month", "predicted_month"], ["Months after", "horizon_months", 0], ["Customers", "customers", 0],
    ["No purchase since", "churned", 0], ["Churn rate", "observed_churn_rate", 3], ["ROC AUC", "auc", 3],
    ["Red / green churn", "red_over_green", 1], ["Purchase days expected", "expected_purchases", 0],
    ["Purchase days made", "actual_purchases", 0],
  ], rows.filter(r => r.measure === "overall").map(r => ({ ...r, red_over_green: red[r.horizon_months] ?? null })));
  table(document.querySelector('[data-table="calibration"]'), [
    ["Months after", "horizon_months", 0], ["Decile", "bucket"], ["Customers", "customers", 0],
    ["Predicted churn", "mean_churn_probability", 3], ["Observed churn", "observed_churn_rate", 3],
  ], rows.filter(r => r.measure === "churn_decile"));
}

const chart = name => document.querySelector(`[data-chart="${name}"]`);

function draw(d) {
  document.getElementById("period").textContent =
    `${d.run.period_start} .. ${d.run.period_end} (end exclusive), run ${d.run.run_id}`;
  kpis(d.kpis);
  line(chart("daily_revenue"), d.daily.map(r => ({ label: r.day, value: r.revenue })));
  bars(chart("daily_transactions"), d.daily.map(r => ({ label: r.day, value: r.transactions })), "#9b51e0");
  bars(chart("weekly_revenue"), d.weekly.map(r => ({ label: r.week, value: r.revenue })));
  bars(chart("weekly_transactions"), d.weekly.map(r => ({ label: r.week, value: r.transactions })), "#9b51e0");
  bars(chart("regions"), d.regions.map(r => ({ label: r.label, value: r.revenue })), "#f2994a");
  bars(chart("segments"), d.segments.map(r => ({ label: r.label, value: r.revenue })), "#56ccf2");
  line(chart("pareto"), d.pareto.map(r => ({ label: r.customers_pct, value: r.revenue_pct })), "#eb5757", 100);
  const bandColor = { green: "#27ae60", yellow: "#f2c94c", red: "#eb5757" };
  bars(chart("health_bands"), d.health_bands.map(r => ({ label: r.label, value: r.customers })), "#828282");
  chart("health_bands").querySelectorAll("rect").forEach(r => {
    r.setAttribute("fill", bandColor[r.dataset.label] || "#828282");
  });
  bars(chart("engagement"), d.engagement.map(r => ({ label: `${r.bucket}-${r.bucket + 10}`, value: r.customers })), "#6fcf97");
  risk(d.kpis, d.model);
  table(document.querySelector('[data-table="at_risk"]'), [
    ["Customer", "customer_id"], ["Name", "name"], ["Segment", "segment"], ["Band", "health_band"],
    ["Churn p", "churn_probability", 2], ["CLV 12m", "clv_12m", 2], ["Value at stake", "value_at_stake", 2],
    ["Revenue at risk", "revenue_at_risk", 2], ["Weakest part", "risk_driver"],
  ], d.at_risk);
  backtest(d.backtest, d.model);
  table(document.querySelector('[data-table="quality"]'), [
    ["Period end", "period_end"], ["Checks", "checks", 0], ["Failed", "failed", 0], ["Critical", "critical", 0],
    ["Quarantined rows", "quarantined", 0],
  ], d.quality);
  table(document.querySelector('[data-table="alerts"]'), [
    ["Alert", "alert"], ["Severity", "severity"], ["Scope", "scope"], ["Message", "message"],
  ], d.alerts);
}

// A month is YYYY-MM and nothing else: the page only ever calls its own API with it.
const MONTH = /^\d{4}-(0[1-9]|1[0-2])$/;

async function show(month) {
  const main = document.getElementById("main"), empty = document.getElementById("empty");
  document.body.dataset.ready = "false";
  if (!MONTH.test(month)) {
    empty.textContent = "That is not a month: use ?month=YYYY-MM.";
    main.hidden = true; empty.hidden = false;
    document.body.dataset.ready = "true";
    return;
  }
  const resp = await fetch(`api/month/${encodeURIComponent(month)}`);
  if (resp.ok) {
    draw(await resp.json());
    main.hidden = false; empty.hidden = true;
  } else {
    const detail = (await resp.json()).detail || resp.statusText;
    empty.textContent = `No data for ${month}: ${detail}. Run or backfill the month first.`;
    main.hidden = true; empty.hidden = false;
  }
  document.body.dataset.month = month;
  document.body.dataset.ready = "true";
}

async function start() {
  const listed = await fetch("api/months");
  if (!listed.ok) throw new Error(listed.status === 401 ? "sign in to Airflow first" : `HTTP ${listed.status}`);
  const { months, latest_complete } = await listed.json();
  const wanted = new URLSearchParams(location.search).get("month");
  const month = wanted || latest_complete || months[0];
  const select = document.getElementById("month");
  new Set([month, ...months].filter(Boolean)).forEach(m => { el("option", { value: m }, select, null).textContent = m; });
  select.value = month || "";
  select.onchange = () => { history.replaceState(null, "", `?month=${encodeURIComponent(select.value)}`); show(select.value); };
  if (!month) {
    const empty = document.getElementById("empty");
    empty.textContent = "No month has been loaded yet: run or backfill the DAG first.";
    empty.hidden = false;
    document.body.dataset.ready = "true";
    return;
  }
  await show(month);
}

start().catch(err => {
  const empty = document.getElementById("empty");
  empty.textContent = `The dashboard could not load: ${err}`;
  empty.hidden = false;
  document.body.dataset.ready = "error";
});
