// One customer's months (static/customer.html?id=N&month=YYYY-MM): their health, risk and
// activity over the loaded months, from the plugin's API. The helpers (el, h, table, line,
// vbars, the formats) come from dashboard.js. The id must be digits and the month YYYY-MM
// before anything is requested; all text goes in with textContent.
"use strict";

const ID = /^\d{1,18}$/;
// the API sits next to the page's folder: this page is served from static/
const API = new URL("../api/", document.currentScript.src);

function customerFail(message, state = "true") {
  const empty = document.getElementById("empty");
  empty.textContent = message;
  empty.hidden = false;
  document.getElementById("main").hidden = true;
  document.body.dataset.ready = state;
}

function drawCustomer(c, month) {
  const rows = c.months || [];
  const latest = rows[rows.length - 1] || {};
  const focus = rows.find(r => r.month === month) || latest;
  document.title = `${c.name || "Customer"} #${c.customer_id} - Customer Performance`;
  document.getElementById("title").textContent = `${c.name || "Customer"} (#${c.customer_id})`;
  const facts = document.getElementById("facts");
  clear(facts);
  const fact = (label, value, attrs = {}) => {
    const d = h("div", attrs, facts);
    h("b", {}, d, value);
    h("span", {}, d, label);
    return d;
  };
  fact("Region", c.region || "unknown");
  fact("Segment", c.segment || "unknown");
  const band = fact(`Health, ${monthName(focus.month)}`, `${fmt(focus.health_score, 1)} `, { "data-kpi": "Health" });
  bandTag(band.querySelector("b"), focus.health_band);
  fact("Churn probability", pct(focus.churn_probability, 0));
  fact("Expected loss (12 m)", money(focus.expected_loss));
  fact("Why at risk", focus.churn_reason || "n/a");
  fact("Health's weakest part", focus.risk_driver || "n/a");
  fact("Months loaded", count(rows.length));

  line(chart("customer_health"), rows.map(r => ({ label: r.month, value: r.health_score })), {
    color: COLORS.green, yMax: 100, yTitle: "Health score (0–100)", xTitle: "Month", xLabel: p => monthShort(p.label),
    valueLabels: true, valueFmt: v => fmt(v, 1), labelEvery: 1,
    refs: [{ y: 40, text: "below: red band" }],
  });
  vbars(chart("customer_revenue"), rows.map(r => ({ label: r.month, value: r.revenue })), {
    yTitle: `Revenue (${CURRENCY})`, xTitle: "Month", xLabel: p => monthShort(p.label), valueFmt: money,
  });
  table(tableEl("customer_months"), [
    { title: "Month", key: "month", cls: "nowrap", fmt: v => monthName(v) },
    { title: "Status", key: "status" },
    { title: "Segment", key: "segment" },
    { title: "Health", key: "health_score", cls: "nowrap", cell: healthCell },
    { title: "Band", key: "health_band", cell: (td, r) => bandTag(td, r.health_band) },
    { title: "Churn", key: "churn_probability", num: true, fmt: v => pct(v, 0) },
    { title: `Revenue (${CURRENCY})`, key: "revenue", num: true, fmt: v => fmt(v, 0) },
    { title: "Purchases", key: "transaction_count", num: true, fmt: count },
    { title: "Logins", key: "login_count", num: true, fmt: count },
    { title: "Contacts", key: "interaction_count", num: true, fmt: count },
    { title: "Satisfaction", key: "avg_satisfaction", num: true, fmt: v => fmt(v, 1) },
    { title: `Expected loss (${CURRENCY})`, key: "expected_loss", num: true, fmt: v => fmt(v, 0) },
    { title: "Why at risk", key: "churn_reason" },
    { title: "Risk driver", key: "risk_driver" },
  ], rows, { rowClass: r => (r.month === month ? "all" : "") });
}

async function startCustomer() {
  document.body.dataset.ready = "false";
  const params = new URLSearchParams(location.search);
  const id = params.get("id"), month = params.get("month");
  const back = document.getElementById("back");
  if (month !== null && MONTH.test(month)) back.setAttribute("href", `../?month=${encodeURIComponent(month)}`);
  if (id === null || !ID.test(id)) {
    customerFail("That is not a customer id: use ?id= followed by digits (e.g. customer.html?id=42).");
    return;
  }
  if (month !== null && !MONTH.test(month)) {
    customerFail("That is not a month: use &month=YYYY-MM (or leave it out).");
    return;
  }
  const resp = await fetch(new URL(`customer/${encodeURIComponent(id)}`, API));
  if (resp.status === 404) {
    customerFail(`No data for customer ${id}: the customer is in no loaded month.`);
    return;
  }
  if (!resp.ok) throw new Error(resp.status === 401 ? "sign in to Airflow first" : `HTTP ${resp.status}`);
  document.getElementById("main").hidden = false;
  drawCustomer(await resp.json(), month);
  document.body.dataset.ready = "true";
}

startCustomer().catch(err => customerFail(`The customer could not load: ${err}`, "error"));
