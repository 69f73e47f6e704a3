"""The stakeholder email's body: what the dashboard shows for the month, for a customer-success
lead and an executive. KPIs formatted in the reporting currency with their change against the
previous loaded month, who is about to leave (the at-risk list's head, by value at stake), the
most valuable customers whose health is falling (health_trend 'down'), the quality gate's result,
the seed's executive sections, and a link to the dashboard month. Two parts: HTML that renders in
common mail clients (tables and inline styles only: no script, no stylesheet, no image) and the
same as plain text. Every value from a source is escaped in the HTML."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from decimal import Decimal

from psycopg import sql
from psycopg.rows import dict_row

from include.customer_performance import glossary, metrics
from include.customer_performance.config import settings
from include.customer_performance.glossary import share_text
from include.customer_performance.quality import report as quality_report

# (KPI key, kind, +1 when up is good / -1 when up is bad); each shown by its glossary label
KPIS = (
    ("mrr", "money", +1),
    ("active_customers", "count", +1),
    ("new_customers", "count", +1),
    ("mrr_at_risk", "money", -1),
    ("save_list_expected_loss", "money", -1),
    ("high_risk_customers", "count", -1),
    ("avg_health_score", "score", +1),
    ("nps", "score", +1),
    ("avg_satisfaction", "score", +1),
)
TOP = 5  # customers in each list
MONTH_TO_DATE = (
    "Month to date: the month has not closed, so its figures are not compared with the previous month's"
    " (a part of a month against a whole one would read as a fall)."
)


def compact(value: float | None, kind: str, currency: str = "") -> str:
    """A number as a reader takes it in: 1.21 M USD, 12.3 k USD, 4,741, 35.2 %, 71.4."""
    if value is None:
        return "n/a"
    v = float(value)
    if kind == "money":
        a = abs(v)
        text = (
            f"{v / 1e9:.2f} B"
            if a >= 1e9
            else f"{v / 1e6:.2f} M"
            if a >= 1e6
            else f"{v / 1e3:.1f} k"
            if a >= 1e4
            else f"{v:,.0f}"
        )
        return f"{text} {currency}".strip()
    if kind == "count":
        return f"{round(v):,}"
    if kind == "share":
        return share_text(v)
    return f"{v:,.1f}"


def change(now: float | None, before: float | None, kind: str, currency: str = "") -> tuple[str, int]:
    """The change from ``before`` to ``now`` in words (absolute and %) and its sign (0: none or
    not comparable)."""
    if now is None or before is None:
        return "n/a", 0
    delta = float(now) - float(before)
    sign = (delta > 0) - (delta < 0)
    shown = ("+" if delta > 0 else "-" if delta < 0 else "±") + compact(abs(delta), kind, currency)
    if before and kind != "score":
        shown += f" ({100 * delta / abs(float(before)):+.1f} %)"
    return shown, sign


# still active in words, by the scorecard's defaults (a digest gathered without the run's scorecard)
_ACTIVE = glossary.active_text(
    *(metrics.DEFAULTS["risk"][k] for k in ("active_gaps", "active_days", "active_login_days"))
)


@dataclass
class Digest:
    month: str  # "July 2025"
    period: str
    run_id: str
    currency: str
    kpis: dict
    previous_month: str | None = None
    previous: dict = field(default_factory=dict)
    save: list[dict] = field(default_factory=list)  # the save list's first customers
    save_total: int = 0
    win_back: list[dict] = field(default_factory=list)
    win_back_total: int = 0
    no_purchase_days: int = 90  # the churn event's horizon
    high_risk: float = 0.6  # the save list's least churn probability
    active: str = _ACTIVE  # still active, in words (the scorecard's rule)
    movers: list[dict] = field(default_factory=list)
    gate: list[dict] = field(default_factory=list)
    quarantined: int = 0
    sections: dict[str, list[str]] = field(default_factory=dict)  # the executive sections, the notes
    trust: dict = field(default_factory=dict)  # quality/report.trust: scores per source, failed warnings
    link: str | None = None  # the dashboard month
    month_closed: bool = True  # False: month to date, not compared with the previous month


def _plain(rows: list[dict]) -> list[dict]:
    return [{k: float(v) if isinstance(v, Decimal) else v for k, v in r.items()} for r in rows]


def gather(
    conn,
    run,
    schema: str,
    kpis: dict,
    currency: str,
    high_risk: float,
    no_purchase_days: int,
    link: str | None,
    active: str = _ACTIVE,
) -> Digest:
    """The digest of ``run`` from its staged tables and the previous month's run record."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute("SELECT to_regclass(%s) AS t", (f"{schema}.pipeline_runs",))
        previous, previous_month = {}, None
        if cur.fetchone()["t"] is not None:
            cur.execute(
                sql.SQL(
                    # the newest month before this one whose last load closed it: a month to date is
                    # no fair base
                    "SELECT DISTINCT ON (report_month) report_month, kpis,"
                    " period_end = (report_month + interval '1 month')::date AS closed FROM {}"
                    " WHERE report_month < %s ORDER BY report_month DESC, period_end DESC LIMIT 1"
                ).format(sql.Identifier(schema, "pipeline_runs")),
                (run.period.report_month,),
            )
            found = cur.fetchone()
            if found and found["closed"]:
                previous, previous_month = found["kpis"] or {}, found["report_month"].strftime("%B %Y")
        metrics = run.table("customer_metrics")
        lists = {}
        for name in ("save", "win-back"):
            cur.execute(sql.SQL("SELECT count(*) AS n FROM {} WHERE churn_list = %s").format(metrics), (name,))
            total = cur.fetchone()["n"]
            cur.execute(
                sql.SQL(
                    "SELECT customer_id, name, segment, region, health_band, churn_probability, expected_loss,"
                    " value_if_kept, churn_reason, days_since_last_purchase FROM {} WHERE churn_list = %s"
                    " ORDER BY list_rank LIMIT %s"
                ).format(metrics),
                (name, TOP),
            )
            lists[name] = (_plain(cur.fetchall()), total)
        cur.execute(
            sql.SQL(
                "SELECT customer_id, name, segment, region, previous_health_score, health_score,"
                " health_score - previous_health_score AS health_change, expected_loss, risk_driver FROM {}"
                " WHERE health_trend = 'down' ORDER BY health_score - previous_health_score,"
                " expected_loss DESC NULLS LAST, customer_id LIMIT %(top)s"
            ).format(metrics),
            {"top": TOP},
        )
        movers = _plain(cur.fetchall())
        staged = sql.SQL("(SELECT * FROM {} UNION ALL SELECT * FROM {})").format(
            run.table("dq_results"), run.table("dq_aggregates")
        )
        gate = _plain(quality_report.gate_counts(cur, staged))
        trust = quality_report.trust(cur, staged, settings())
    return Digest(
        month=run.period.report_month.strftime("%B %Y"),
        period=str(run.period),
        run_id=run.run_id,
        currency=currency,
        kpis=kpis,
        previous_month=previous_month,
        previous=previous,
        save=lists["save"][0],
        save_total=lists["save"][1],
        win_back=lists["win-back"][0],
        win_back_total=lists["win-back"][1],
        no_purchase_days=no_purchase_days,
        high_risk=high_risk,
        active=active,
        movers=movers,
        gate=gate,
        quarantined=int(sum(g["quarantined"] for g in gate)),
        link=link,
        month_closed=run.period.is_complete_month,
        trust=trust,
    )


def _kpi_rows(d: Digest) -> list[tuple[str, str, str, int]]:
    """(label, value, change, goodness: +1 good, -1 bad, 0 neither)."""
    rows = []
    for key, kind, good in KPIS:
        label = glossary.label(key)
        value = d.kpis.get(key)
        shown = compact(value, kind, d.currency)
        if key == "high_risk_customers" and d.kpis.get("high_risk_share") is not None:
            shown += f" ({compact(d.kpis['high_risk_share'], 'share')})"
        delta, sign = (
            change(value, d.previous.get(key), kind, d.currency)
            if d.previous and d.month_closed
            else ("month to date" if d.previous else "n/a", 0)
        )
        rows.append((label, shown, delta, sign * good))
    return rows


def _gate_line(d: Digest) -> str:
    by = {g["severity"]: g for g in d.gate}
    critical = by.get("critical", {}).get("failed", 0)
    checks = sum(int(g["checks"]) for g in d.gate)
    parts = [f"{int(g['failed'])} of {int(g['checks'])} {g['severity']}" for g in d.gate]
    verdict = "FAILED" if critical else "PASSED"
    return (
        f"Quality gate {verdict}: {checks} checks; failed: "
        + ", ".join(parts)
        + f"; {d.quarantined:,} rows quarantined."
    )


def trust_lines(d: Digest) -> list[str]:
    """What to trust: each source's completeness, accuracy and freshness against their minimums,
    then each warning rule that failed with its rows and ceiling (quality/report.trust)."""
    lines = []
    for r in (d.trust or {}).get("scores", []):
        fresh = "not checked" if r["fresh"] is None else "fresh" if r["fresh"] else "STALE"
        lines.append(
            f"{r['table_name']}: {glossary.label('completeness').lower()} {share_text(r['completeness'])}"
            f" (min {share_text(r['completeness_min'])}), {glossary.label('accuracy').lower()}"
            f" {share_text(r['accuracy'])} (min {share_text(r['accuracy_min'])}), {fresh}"
            + (f": {r['freshness_detail']}" if r["fresh"] is False and r["freshness_detail"] else "")
        )
    for w in (d.trust or {}).get("warnings", []):
        if w["ceiling"] is None:  # an outcome check (volume, freshness): an alert in its own words
            lines.append(f"warning {w['rule']}: {w['message'] or 'see the alerts'}")
            continue
        share = w["failing_rows"] / w["rows_checked"] if w["failing_rows"] is not None and w["rows_checked"] else None
        lines.append(
            f"warning {w['rule']}: {w['failing_rows'] or 0:,} of {w['rows_checked'] or 0:,} rows"
            f" ({share_text(share, 2)}; {glossary.label('ceiling').lower()} {share_text(w['ceiling'], 2)}),"
            f" {w['quarantined_rows'] or 0:,} quarantined"
        )
    return lines or ["no score was computed (no source suite ran)"]


def _change(c: dict) -> float | None:
    """A mover's health change (its row's, else worked out from its two scores)."""
    if c.get("health_change") is not None:
        return c["health_change"]
    if c.get("health_score") is None or c.get("previous_health_score") is None:
        return None
    return float(c["health_score"]) - float(c["previous_health_score"])


def _customer_line(c: dict, currency: str, kind: str = "save") -> str:
    who = (
        f"{c['name'] or 'unnamed'} (#{c['customer_id']}, {c['segment'] or 'no segment'}, {c['region'] or 'no region'})"
    )
    if kind == "movers":
        return (
            f"{who}: health {compact(c['previous_health_score'], 'score')} -> {compact(c['health_score'], 'score')};"
            f" expected loss {compact(c['expected_loss'], 'money', currency)}; {c['risk_driver'] or 'no weak part'}"
        )
    if kind == "win-back":
        return (
            f"{who}: value if won back {compact(c['value_if_kept'], 'money', currency)};"
            f" {c['churn_reason'] or 'no reason given'}"
        )
    return (
        f"{who}: expected loss {compact(c['expected_loss'], 'money', currency)},"
        f" churn {compact(c['churn_probability'], 'share')}; {c['churn_reason'] or 'no reason given'}"
    )


def list_titles(d: Digest) -> dict[str, str]:
    """The save and win-back lists' titles, each saying what it holds."""
    return {
        "save": (
            f"Save list, who to call: {d.save_total:,} customers still active ({d.active})"
            f" with a churn probability of at least {share_text(d.high_risk)} (no completed"
            f" purchase in the next {d.no_purchase_days} days), the largest expected loss (value if kept x churn"
            " probability) first"
        ),
        "win-back": (
            f"Win back: {d.win_back_total:,} customers most likely gone already (high risk and no longer active),"
            " the most valuable if won back first"
        ),
    }


def text(d: Digest, files: list[str], links: list[dict] = ()) -> str:
    """The plain-text part. ``links``: the files too large to attach, ``{url, href}`` each (href: a
    time-limited download link, or None)."""
    vs = f"vs {d.previous_month}" if d.previous_month else "no previous month loaded"
    lines = [f"Customer Performance, {d.month} ({d.period})", ""]
    if not d.month_closed:
        lines += [MONTH_TO_DATE, ""]
    if d.link:
        lines += [f"Dashboard: {d.link}", ""]
    lines += [_gate_line(d), "", "WHAT TO TRUST", *(f"  {line}" for line in trust_lines(d))]
    lines += ["", f"KEY FIGURES ({vs})"]
    lines += [f"  {label:<28} {value:>18}   {delta}" for label, value, delta, _ in _kpi_rows(d)]
    titles = list_titles(d)
    lines += ["", titles["save"]]
    lines += [f"  {_customer_line(c, d.currency)}" for c in d.save] or ["  none"]
    lines += ["", titles["win-back"]]
    lines += [f"  {_customer_line(c, d.currency, 'win-back')}" for c in d.win_back] or ["  none"]
    lines += ["", "HEALTH FALLING (the customers whose health fell most since last month)"]
    lines += [f"  {_customer_line(c, d.currency, 'movers')}" for c in d.movers] or ["  none"]
    for title, section in d.sections.items():
        lines += ["", title.upper(), *(f"  {line}" for line in section)]
    lines += ["", "FILES" + (" (too large to attach; here:)" if links else " (attached)")]
    if links:
        for link in links:
            lines += [f"  {link['url']}"] + ([f"    download (time-limited): {link['href']}"] if link["href"] else [])
    else:
        lines += [f"  {f}" for f in files]
    lines += ["", f"Run {d.run_id}"]
    return "\n".join(lines) + "\n"


# inline styles only: what Outlook, Gmail and Apple Mail all render
_TD = "padding:4px 10px;border-bottom:1px solid #e4e7eb;font-family:Arial,sans-serif;font-size:14px;"
_H = "font-family:Arial,sans-serif;color:#1f2933;"
_COLOURS = {1: "#1e7b34", -1: "#b42318", 0: "#52606d"}


def html_body(d: Digest, files: list[str], links: list[dict] = ()) -> str:
    """The HTML part: tables and inline styles, every value escaped."""
    e = html.escape
    vs = f"vs {e(d.previous_month)}" if d.previous_month else "no previous month loaded"
    out = [
        f"<div style='{_H}max-width:760px'>",
        f"<h2 style='{_H}margin:0 0 4px'>Customer Performance, {e(d.month)}</h2>",
        f"<p style='{_H}margin:0 0 12px;color:#52606d'>{e(d.period)}</p>",
    ]
    if not d.month_closed:
        out.append(f"<p style='{_H}padding:8px 10px;border-radius:4px;background:#fff4e5'>{e(MONTH_TO_DATE)}</p>")
    if d.link:
        out.append(
            f"<p style='{_H}'><a href='{e(d.link, quote=True)}' style='color:#1d4ed8'>Open the dashboard for"
            f" {e(d.month)}</a></p>"
        )
    failed = any(g["severity"] == "critical" and g["failed"] for g in d.gate)
    out.append(
        f"<p style='{_H}padding:8px 10px;border-radius:4px;background:{'#fde8e8' if failed else '#e8f5ec'}'>"
        f"{e(_gate_line(d))}</p>"
    )
    out.append(f"<h3 style='{_H}'>What to trust</h3><ul style='{_H}'>")
    out.extend(f"<li>{e(line)}</li>" for line in trust_lines(d))
    out.append("</ul>")
    out.append(f"<h3 style='{_H}'>Key figures <span style='color:#52606d;font-weight:normal'>({vs})</span></h3>")
    out.append("<table role='presentation' cellspacing='0' cellpadding='0' style='border-collapse:collapse'>")
    for label, value, delta, good in _kpi_rows(d):
        out.append(
            f"<tr><td style='{_TD}'>{e(label)}</td><td style='{_TD}text-align:right;font-weight:bold'>{e(value)}</td>"
            f"<td style='{_TD}text-align:right;color:{_COLOURS[good]}'>{e(delta)}</td></tr>"
        )
    out.append("</table>")

    def customers(title: str, rows: list[dict], kind: str) -> None:
        out.append(f"<h3 style='{_H}'>{e(title)}</h3>")
        if not rows:
            out.append(f"<p style='{_H}'>none</p>")
            return
        keys = {
            "movers": ("customer_id", "segment", "region", "health_change", "expected_loss", "risk_driver"),
            "save": ("customer_id", "segment", "region", "churn_probability", "expected_loss", "churn_reason"),
            "win-back": (
                "customer_id",
                "segment",
                "region",
                "days_since_last_purchase",
                "value_if_kept",
                "churn_reason",
            ),
        }[kind]
        head = [glossary.label(k) for k in keys]
        out.append("<table role='presentation' cellspacing='0' cellpadding='0' style='border-collapse:collapse'><tr>")
        out.extend(f"<th style='{_TD}text-align:left;color:#52606d'>{h}</th>" for h in head)
        out.append("</tr>")
        for c in rows:
            middle = {
                "movers": lambda c: (
                    f"{e(compact(_change(c), 'score'))} ({compact(c['previous_health_score'], 'score')}"
                    f" &rarr; {compact(c['health_score'], 'score')})"
                ),
                "save": lambda c: e(compact(c["churn_probability"], "share")),
                "win-back": lambda c: e(compact(c["days_since_last_purchase"], "count")),
            }[kind](c)
            money = c["value_if_kept"] if kind == "win-back" else c["expected_loss"]
            why = c["risk_driver"] if kind == "movers" else c["churn_reason"]
            out.append(
                f"<tr><td style='{_TD}'>{e(c['name'] or 'unnamed')} <span style='color:#52606d'>#{c['customer_id']}"
                f"</span></td><td style='{_TD}'>{e(c['segment'] or '')}</td><td style='{_TD}'>{e(c['region'] or '')}"
                f"</td><td style='{_TD}'>{middle}</td><td style='{_TD}text-align:right'>"
                f"{e(compact(money, 'money', d.currency))}</td>"
                f"<td style='{_TD}'>{e(why or '')}</td></tr>"
            )
        out.append("</table>")

    titles = list_titles(d)
    customers(titles["save"], d.save, "save")
    customers(titles["win-back"], d.win_back, "win-back")
    customers("Health falling: the customers whose health fell most since last month", d.movers, "movers")
    for title, section in d.sections.items():
        out.append(f"<h3 style='{_H}'>{e(title)}</h3><ul style='{_H}'>")
        out.extend(f"<li>{e(line)}</li>" for line in section)
        out.append("</ul>")
    where = "The files are too large to attach; they are here:" if links else "Attached:"
    out.append(f"<p style='{_H}'>{where}</p><ul style='{_H}'>")
    if links:
        for link in links:
            name = link["url"].rstrip("/").rpartition("/")[2]
            if link["href"]:
                out.append(
                    f'<li><a href="{e(link["href"])}">{e(name)}</a>'
                    f" <span style='color:#52606d'>({e(link['url'])}; the link is time-limited)</span></li>"
                )
            else:
                out.append(f"<li>{e(link['url'])}</li>")
    else:
        out.extend(f"<li>{e(f)}</li>" for f in files)
    out.append(f"</ul><p style='{_H}color:#9aa5b1;font-size:12px'>Run {e(d.run_id)}</p></div>")
    return "".join(out)
