"""Read a loaded month back from the analytics database: the executive dashboard (the original
specification's "Sample Output", docs/destinations.md, "Executive summary") that the report CLI and the demo print.

    python -m include.customer_performance report --month 2025-07
"""

from __future__ import annotations

from datetime import date

from psycopg import sql
from psycopg.rows import dict_row

from include.customer_performance import glossary


class MonthNotLoadedError(LookupError):
    pass


def latest_complete_month(conn, schema: str) -> date:
    """The newest month whose month-close run has been loaded."""
    cur = conn.execute("SELECT to_regclass(%s)", (f"{schema}.latest_complete_month",))
    if cur.fetchone()[0] is not None:
        row = conn.execute(
            sql.SQL("SELECT report_month FROM {}").format(sql.Identifier(schema, "latest_complete_month"))
        )
        month = row.fetchone()[0]
        if month is not None:
            return month
    raise MonthNotLoadedError(f"no complete month has been loaded into {schema} yet; run the DAG for one first")


def has_backtest(cur, schema: str) -> bool:
    """Whether the schema has migration 0006 (the back-test, the run record's churn model): a
    deployment upgraded but not yet loaded has not."""
    cur.execute("SELECT to_regclass(%s) IS NOT NULL", (f"{schema}.model_backtest",))
    return bool(cur.fetchone()[0])


def month_summary(conn, schema: str, report_month: date) -> dict:
    """The latest run's KPIs, quality result and row counts for ``report_month``."""
    with conn.cursor() as plain:
        upgraded = has_backtest(plain, schema)
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            sql.SQL(
                "SELECT run_id, period_start, period_end, kpis, quality, {model} AS churn_model, loaded_at FROM {t}"
                " WHERE report_month = %s ORDER BY loaded_at DESC LIMIT 1"
            ).format(
                t=sql.Identifier(schema, "pipeline_runs"),
                model=sql.SQL("churn_model" if upgraded else "NULL::jsonb"),
            ),
            (report_month,),
        )
        run = cur.fetchone()
        if run is None:
            raise MonthNotLoadedError(
                f"{report_month:%Y-%m} has not been loaded into {schema}; run the DAG for it first"
            )
        counts = {}
        for table in (
            "customer_performance",
            "regional_summary",
            "performance_trends",
            "data_quality_results",
            "alerts",
        ):
            cur.execute(
                sql.SQL("SELECT count(*) AS n FROM {} WHERE report_month = %s").format(sql.Identifier(schema, table)),
                (report_month,),
            )
            counts[table] = cur.fetchone()["n"]
        cur.execute(
            sql.SQL(
                "SELECT severity, rule, expectation, table_name, column_name, failing_rows, rows_checked FROM {}"
                " WHERE report_month = %s AND period_end = %s AND NOT success ORDER BY severity, rule"
            ).format(sql.Identifier(schema, "data_quality_results")),
            (report_month, run["period_end"]),
        )
        failed = cur.fetchall()
        # the checks as the dashboard and the email count them: every rule of the month's report
        # (the gate's and the aggregates'), the per-table scores not being checks
        from include.customer_performance.quality.report import gate_counts

        by = gate_counts(
            cur,
            sql.SQL("(SELECT * FROM {} WHERE report_month = {} AND period_end = {})").format(
                sql.Identifier(schema, "data_quality_results"),
                sql.Literal(report_month),
                sql.Literal(run["period_end"]),
            ),
        )
        gate = {k: sum(g[k] for g in by) for k in ("checks", "failed", "quarantined")}
        gate["critical"] = sum(g["failed"] for g in by if g["severity"] == "critical")
        gate["success"] = not gate["critical"]
        run = {**run, "gate": gate}
        cur.execute(
            sql.SQL(
                "SELECT alert, severity, scope, message FROM {} WHERE report_month = %s AND period_end = %s"
                " ORDER BY severity, alert, scope"
            ).format(sql.Identifier(schema, "alerts")),
            (report_month, run["period_end"]),
        )
        alerts = cur.fetchall()
        if not upgraded:
            return {**run, "row_counts": counts, "failed_checks": failed, "alerts": alerts, "backtest": []}
        # (to_jsonb: the baselines' columns come with migration 0013; a row before it has none)
        cur.execute(
            sql.SQL(
                "SELECT predicted_month, horizon_months, measure, bucket, customers, churned, observed_churn_rate,"
                " mean_churn_probability, auc, (to_jsonb(b) ->> 'recency_auc')::numeric AS recency_auc,"
                " (to_jsonb(b) ->> 'health_auc')::numeric AS health_auc,"
                " (to_jsonb(b) ->> 'btyd_auc')::numeric AS btyd_auc,"
                " (to_jsonb(b) ->> 'active_auc')::numeric AS active_auc,"
                " (to_jsonb(b) ->> 'active_recency_auc')::numeric AS active_recency_auc,"
                " (to_jsonb(b) ->> 'save_list')::bigint AS save_list,"
                " (to_jsonb(b) ->> 'save_precision')::numeric AS save_precision, lift_over_green, expected_purchases,"
                " actual_purchases, (to_jsonb(b) ->> 'expected_revenue')::numeric AS expected_revenue,"
                " (to_jsonb(b) ->> 'actual_revenue')::numeric AS actual_revenue, churn_method"
                " FROM {} AS b WHERE report_month = %s AND period_end = %s ORDER BY horizon_months, measure, bucket"
            ).format(sql.Identifier(schema, "model_backtest")),
            (report_month, run["period_end"]),
        )
        backtest = cur.fetchall()
    return {**run, "row_counts": counts, "failed_checks": failed, "alerts": alerts, "backtest": backtest}


def breakdowns(conn, schema: str, report_month: date) -> dict[str, list[dict]]:
    """Segments, health bands and regions of the month, its insights, and the heads of its save and
    win-back lists."""

    out = {}
    with conn.cursor(row_factory=dict_row) as cur:
        for name, column in (("segments", "segment"), ("health_bands", "health_band")):
            cur.execute(
                sql.SQL(
                    "SELECT coalesce({col}, 'unknown') AS name, count(*) AS customers, coalesce(sum(revenue), 0)"
                    " AS revenue, coalesce(sum(revenue_at_risk), 0) AS revenue_at_risk FROM {t}"
                    " WHERE report_month = %s GROUP BY 1 ORDER BY 3 DESC, 1"
                ).format(col=sql.Identifier(column), t=sql.Identifier(schema, "customer_performance")),
                (report_month,),
            )
            out[name] = cur.fetchall()
        cur.execute(
            sql.SQL(
                "SELECT coalesce(region, 'unknown') AS name, customers, revenue, revenue_at_risk FROM {}"
                " WHERE report_month = %s AND grouping_level = 'region' ORDER BY revenue DESC NULLS LAST, 1"
            ).format(sql.Identifier(schema, "regional_summary")),
            (report_month,),
        )
        out["regions"] = cur.fetchall()
    out.update(insights(conn, schema, report_month))
    with conn.cursor() as plain:
        plain.execute(
            "SELECT 1 FROM information_schema.columns WHERE table_schema = %s AND table_name = 'customer_performance'"
            " AND column_name = 'churn_list'",
            (schema,),
        )
        if plain.fetchone() is None:  # the lists come with migration 0014
            return {**out, "save": [], "win_back": []}
    with conn.cursor(row_factory=dict_row) as cur:
        for key, name in (("save", "save"), ("win_back", "win-back")):
            cur.execute(
                sql.SQL(
                    "SELECT customer_id, name, segment, churn_probability, expected_loss, value_if_kept,"
                    " days_since_last_purchase, churn_reason FROM {} WHERE report_month = %(m)s"
                    " AND period_end = (report_month + interval '1 month')::date AND churn_list = %(list)s"
                    " ORDER BY list_rank LIMIT 10"
                ).format(sql.Identifier(schema, "customer_performance")),
                {"m": report_month, "list": name},
            )
            out[key] = cur.fetchall()
    return out


INSIGHTS = {
    "comparison": "SELECT grouping_level, coalesce(label, 'unknown') AS label, customers, new_customers,"
    " acquisition_rate, revenue, previous_revenue, revenue_change, revenue_change_share, previous_active_customers,"
    " retained_customers, retention_rate FROM {t} WHERE report_month = %(m)s AND period_end = %(end)s"
    " ORDER BY grouping_level DESC, revenue DESC, label",
    "heatmap": "SELECT weekday, hour, sessions FROM {t} WHERE report_month = %(m)s AND period_end = %(end)s"
    " ORDER BY sessions DESC, weekday, hour",
    "interactions": "SELECT grouping_level, interaction_type, department, priority, resolution_status, interactions,"
    " customers, avg_satisfaction, resolved_share, escalated_share FROM {t} WHERE report_month = %(m)s"
    " AND period_end = %(end)s ORDER BY grouping_level, interactions DESC",
    "correlations": "SELECT analysis, bucket, customers, mean_value, mean_revenue, retention_rate, mean_satisfaction,"
    " correlation, correlated_with FROM {t} WHERE report_month = %(m)s AND period_end = %(end)s"
    " ORDER BY analysis, bucket_order",
}
INSIGHT_TABLES = {
    "comparison": "period_comparison",
    "heatmap": "engagement_heatmap",
    "interactions": "interaction_summary",
    "correlations": "engagement_correlations",
}


def insights(conn, schema: str, report_month: date) -> dict[str, list[dict]]:
    """The month's insight tables (migration 0007; empty before it), of its last load."""
    out = {}
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            sql.SQL("SELECT max(period_end) AS e FROM {} WHERE report_month = %s").format(
                sql.Identifier(schema, "pipeline_runs")
            ),
            (report_month,),
        )
        end = cur.fetchone()["e"]
        for key, table in INSIGHT_TABLES.items():
            cur.execute("SELECT to_regclass(%s) AS t", (f"{schema}.{table}",))
            if cur.fetchone()["t"] is None:
                out[key] = []
                continue
            cur.execute(sql.SQL(INSIGHTS[key]).format(t=sql.Identifier(schema, table)), {"m": report_month, "end": end})
            out[key] = cur.fetchall()
    return out


def _signed(v: float | None, money: str | None = None) -> str:
    if v is None:
        return "n/a"
    return ("+" if v >= 0 else "-") + (money.format(abs(v)) if money else f"{abs(v):,}")


WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def insight_lines(ins: dict, money: str) -> dict[str, list[str]]:
    """The insight tables in words: growth, acquisition and retention; engagement; interactions;
    the tables of association."""
    out = {}
    comparison = ins.get("comparison") or []
    lines = []
    for level in ("total", "region", "crm_segment"):
        for r in (r for r in comparison if r["grouping_level"] == level):
            label = "All customers" if level == "total" else f"{glossary.label(level)} {r['label']}"
            change = (
                "no previous month loaded"
                if r["previous_revenue"] is None
                else f"{_signed(r['revenue_change'], money)} ({_pct(r['revenue_change_share'])}) vs last month"
            )
            lines.append(
                f"{label:<24} revenue {money.format(r['revenue'])}, {change};"
                f" acquisition {_pct(r['acquisition_rate'])} ({r['new_customers']:,} new),"
                f" retention {_pct(r['retention_rate'])}"
                + (
                    ""
                    if r["previous_active_customers"] is None
                    else f" ({r['retained_customers']:,} of {r['previous_active_customers']:,})"
                )
            )
    out["GROWTH, ACQUISITION AND RETENTION"] = lines or ["n/a"]
    heat = ins.get("heatmap") or []
    if heat:
        total = sum(h["sessions"] for h in heat)
        busiest = ", ".join(f"{WEEKDAYS[h['weekday'] - 1]} {h['hour']:02d}:00" for h in heat[:3])
        out["ENGAGEMENT PATTERNS"] = [f"{total:,} sessions; busiest hours (UTC): {busiest}"]
    inter = ins.get("interactions") or []
    lines = []
    for r in inter:
        if r["grouping_level"] in ("interaction_type", "department"):
            what = r["interaction_type"] or r["department"] or "unknown"
            lines.append(
                f"{r['grouping_level'].replace('_', ' ')} {what:<10} {r['interactions']:>8,} interactions,"
                f" satisfaction {r['avg_satisfaction'] if r['avg_satisfaction'] is not None else 'n/a'},"
                f" resolved {_pct(r['resolved_share'])}, escalated {_pct(r['escalated_share'])}"
            )
    for r in inter:
        if r["grouping_level"] == "resolution_status":
            lines.append(
                f"resolution {r['resolution_status'] or 'none':<14} {r['interactions']:>8,} interactions,"
                f" satisfaction {r['avg_satisfaction'] if r['avg_satisfaction'] is not None else 'n/a'}"
            )
    if lines:
        out["INTERACTIONS"] = lines
    corr = ins.get("correlations") or []
    lines = []
    for analysis, title in (
        ("activity_decile", "Sessions (decile) -> revenue"),
        ("support_contacts", "Support contacts -> satisfaction"),
        ("feature_usage", "Features used last month -> retention"),
    ):
        rows = [r for r in corr if r["analysis"] == analysis]
        total = next((r for r in rows if r["bucket"] == "all"), None)
        if not rows or total is None or not total["customers"]:
            lines.append(f"{title}: n/a")
            continue
        r_value = "n/a" if total["correlation"] is None else f"{total['correlation']:+.2f}"
        cells = []
        for r in rows:
            if r["bucket"] == "all":
                continue
            value = (
                r["mean_revenue"]
                if analysis == "activity_decile"
                else r["mean_satisfaction"]
                if analysis == "support_contacts"
                else r["retention_rate"]
            )
            shown = "n/a" if value is None else _pct(value) if analysis == "feature_usage" else f"{value:,.2f}"
            cells.append(f"{r['bucket']}: {shown}")
        lines.append(f"{title} (r = {r_value}): " + ", ".join(cells))
    out["ASSOCIATIONS (not causation)"] = lines
    return out


def risk_lines(k: dict, card: dict, money: str) -> list[str]:
    """The one vocabulary of risk (metrics.DEFAULTS "risk"), with the month's counts."""
    high = card["risk"]["high_risk_churn"]
    yellow = card["health"]["bands"]["yellow"]
    return [
        f"High risk (churn probability >= {high:.2f}): {k['high_risk_customers']:,} customers"
        f" ({_pct(k['high_risk_share'])})",
        f"  of whom in the at-risk segment (bought before, not new): {k['segment_at_risk']:,}",
        f"Red health band (health score < {yellow:g}; engagement, satisfaction and support count too):"
        f" {k['health_red']:,} customers",
        f"Revenue at risk (this period's revenue x churn): {money.format(k['revenue_at_risk'])}"
        f" ({_pct(k['revenue_at_risk_share'])} of revenue)",
        "Expected loss (value if kept over 12 months x churn probability), all customers: "
        + (
            "n/a"
            if k.get("expected_loss") is None
            else f"{money.format(k['expected_loss'])} ({_pct(k.get('expected_loss_share'))} of the value if kept)"
        ),
        "Save list (still active, high risk, the largest expected loss): "
        + (
            "n/a"
            if k.get("save_list_customers") is None
            else f"{k['save_list_customers']:,} customers, expected loss {money.format(k['save_list_expected_loss'])}"
        ),
        "Win-back list (most likely gone already, the most valuable if won back): "
        + (
            "n/a"
            if k.get("win_back_customers") is None
            else f"{k['win_back_customers']:,} customers, value if won back {money.format(k['win_back_value'])}"
        ),
    ]


def backtest_lines(rows: list[dict], model: dict | None) -> list[str]:
    """The back-test of earlier months' predictions, and the model fitted this month."""
    model = model or {}
    trained = model.get("model") or {}
    params = ", ".join(f"{k} {v:.4g}" for k, v in (model.get("params") or {}).items())
    held = trained.get("holdout") or {}
    lines = [
        f"Churn probability this month: {model.get('method') or 'n/a'}"
        + (f"; BTYD fit {params}" if params else "")
        + (f"; BTYD fallback because {model['fallback_reason']}" if model.get("fallback_reason") else ""),
    ]
    if trained:
        lines.append(
            f"  {trained.get('event') or 'no completed purchase in the 90 days after the period'};"
            + (
                f" trained on {trained.get('training_rows') or 0:,} rows of {', '.join(trained['training_months'])};"
                f" held out {held.get('month')}: ROC AUC {held.get('model_auc')} (BTYD {held.get('btyd_auc')},"
                f" recency {held.get('recency_auc')})"
                if held
                else ""
            )
            + (
                f"; the BTYD probability is published: {trained['fallback_reason']}"
                if trained.get("fallback_reason")
                else ""
            )
        )
    overall = [r for r in rows if r["measure"] == "overall"]
    if not overall:
        return [*lines, "No back-test: the months before this one are not all published (or this is month to date)."]
    for o in overall:
        h = o["horizon_months"]
        bands = {r["bucket"]: r for r in rows if r["measure"] == "health_band" and r["horizon_months"] == h}
        red = bands.get("red", {}).get("lift_over_green")
        auc = "n/a" if o["auc"] is None else f"{o['auc']:.3f}"
        baselines = ", ".join(
            f"{name} {o[key]:.3f}"
            for name, key in (("recency", "recency_auc"), ("BTYD", "btyd_auc"), ("health score", "health_auc"))
            if o.get(key) is not None
        )
        active = (
            f"; among the customers active then: {o['active_auc']:.3f} (recency {o['active_recency_auc']:.3f})"
            if o.get("active_auc") is not None and o.get("active_recency_auc") is not None
            else ""
        )
        save = (
            f"; save list: {o['save_precision']:.0%} of its {o['save_list']:,} made no purchase"
            if o.get("save_precision") is not None and o.get("save_list")
            else ""
        )
        expected = "n/a" if o["expected_purchases"] is None else f"{o['expected_purchases']:,.0f}"
        churn = (
            f" churn probability ROC AUC {auc}"
            + (f" (alone, on the same customers: {baselines})" if baselines else "")
            + active
            + save
            + ";"
            if o.get("auc") is not None
            else ""
        )
        lines += [
            f"Predictions of {o['predicted_month']:%B %Y} against the {h} month(s) after it: {o['customers']:,}"
            f" customers, {o['churned']:,} made no purchase ({_pct(o['observed_churn_rate'])});{churn}"
            f" red band without a purchase {'n/a' if red is None else f'{red:.1f}x'} as often as green;"
            f" purchase days expected {expected}, made {o['actual_purchases'] or 0:,.0f}{_revenue(o)}",
        ]
        groups = [r for r in rows if r["measure"] == "frequency_group" and r["horizon_months"] == h]
        if groups:
            lines.append(
                "  purchase days expected / made by lifetime purchases then: "
                + ", ".join(
                    f"{r['bucket']}: {r['expected_purchases'] or 0:,.0f} / {r['actual_purchases'] or 0:,.0f}"
                    f"{_revenue(r, short=True)}"
                    for r in sorted(groups, key=lambda r: ("1", "2-3", "4-9", "10+").index(r["bucket"]))
                )
            )
        deciles = [r for r in rows if r["measure"] == "churn_decile" and r["horizon_months"] == h]
        if deciles:
            lines.append(
                "  calibration by decile of the churn probability (predicted -> observed, the same event): "
                + ", ".join(f"{r['mean_churn_probability']:.2f}->{r['observed_churn_rate']:.2f}" for r in deciles)
            )
    return lines


def _revenue(row: dict, short: bool = False) -> str:
    """The back-test's CLV check: the revenue the CLV expected over the horizon against the revenue
    made (empty before migration 0015 added them)."""
    if row.get("expected_revenue") is None or row.get("actual_revenue") is None:
        return ""
    pair = f"{row['expected_revenue']:,.0f} / {row['actual_revenue']:,.0f}"
    return f" (revenue {pair})" if short else f"; revenue expected by the CLV / made: {pair}"


def _pct(part: float | None, whole: float | None = None) -> str:
    """``part`` as a percentage: of ``whole``, or as a share itself when no whole is given (the
    glossary's rounding, as every screen shows a share)."""
    if part is None or (whole is not None and not whole):
        return "n/a"
    return glossary.share_text(part / whole if whole is not None else part)


def executive_sections(k: dict, money: str) -> dict[str, list[str]]:
    """The seed's executive dashboard ("Sample Output") from the KPI row, its figures named by the
    glossary's labels. Security operations are the CRM interactions of the security department;
    the NPS is computed from the satisfaction answers (docs/glossary.md)."""
    L = glossary.label  # noqa: N806

    def n(v) -> str:
        return "n/a" if v is None else f"{v:,}"

    def m(v) -> str:
        return "n/a" if v is None else money.format(v)

    return {
        "CUSTOMER OVERVIEW": [
            f"{L('customers')}: {n(k['customers'])}",
            f"{L('active_customers')}: {n(k['active_customers'])} ({_pct(k['active_customers'], k['customers'])})",
            f"{L('new_customers')}: {n(k['new_customers'])} ({_pct(k['new_customers'], k['customers'])})",
            f"{L('high_risk_customers')}: {n(k['high_risk_customers'])} ({_pct(k['high_risk_share'])})",
            f"{L('mrr')}: {m(k.get('mrr'))}",
            f"{L('mrr_at_risk')}: {m(k.get('mrr_at_risk'))} ({_pct(k['revenue_at_risk_share'])})",
            f"{L('top_region')}: {k['top_region'] or 'n/a'}",
        ],
        "SUPPORT PERFORMANCE": [
            f"{L('tickets')}: {n(k['tickets'])}",
            f"{L('tickets_resolved')}: {n(k['tickets_resolved'])} ({_pct(k['resolved_share'])})",
            f"{L('avg_resolution_hours')}: "
            + ("n/a" if k["avg_resolution_hours"] is None else f"{k['avg_resolution_hours']:.1f}"),
            f"{L('escalated_share')}: {_pct(k['escalated_share'])}",
        ],
        "SECURITY OPERATIONS": [
            f"{L('security_incidents')}: {n(k.get('security_incidents'))}",
            f"{L('critical_incidents')}: {n(k.get('critical_incidents'))} ({_pct(k.get('critical_incident_share'))})",
            f"{L('false_positives')}: {n(k.get('false_positives'))} ({_pct(k.get('false_positive_share'))})",
        ],
        "CUSTOMER SATISFACTION": [
            f"{L('avg_satisfaction')}: " + ("n/a" if k["avg_satisfaction"] is None else f"{k['avg_satisfaction']:.1f}"),
            f"{L('nps')}: "
            + ("n/a" if k.get("nps") is None else f"{k['nps']:+.1f}")
            + f" ({n(k.get('promoters'))} {L('promoters').lower()}, {n(k.get('detractors'))}"
            f" {L('detractors').lower()} of {n(k.get('satisfaction_answers'))} {L('satisfaction_answers').lower()})",
            f"{L('renewal_likely_share')}: {_pct(k['renewal_likely_share'])}",
            f"{L('avg_engagement_score')}: {k['avg_engagement_score']}",
        ],
        "REVENUE": [
            f"{L('revenue')}: {m(k['revenue'])}",
            f"{L('transactions')}: {n(k['transactions'])}",
            f"{L('refunds')}: {m(k['refunds'])}",
            f"{L('top20_revenue_share')}: {_pct(k['top20_revenue_share'])}",
            f"{L('revenue_at_risk')}: {m(k['revenue_at_risk'])} ({_pct(k['revenue_at_risk_share'])})",
            f"{L('clv_12m')}: {m(k['clv_12m'])}",
        ],
    }


def executive_dashboard(summary: dict, parts: dict, currency: str) -> str:
    """The seed's executive dashboard, plus revenue, segments, health bands and regions."""
    k = summary["kpis"]
    month = summary["period_start"].strftime("%B %Y")
    period = f"{summary['period_start']}..{summary['period_end']} (end exclusive)"
    money = f"{{:,.2f}} {currency}"

    def n(v) -> str:
        return "n/a" if v is None else f"{v:,}"

    lines = [
        f"CUSTOMER PERFORMANCE DASHBOARD: {month}",
        f"period {period}, run {summary['run_id']}, loaded {summary['loaded_at']:%Y-%m-%d %H:%M} UTC",
    ]
    for title, section in executive_sections(k, money).items():
        lines += ["", title, *section]
    from include.customer_performance import metrics

    card = (summary.get("churn_model") or {}).get("scorecard") or metrics.DEFAULTS
    lines += ["", "RISK", *risk_lines(k, card, money)]
    if parts.get("save"):
        lines.append("Save list, who to call (expected loss; why):")
        for c in parts["save"][:5]:
            lines.append(
                f"  {c['customer_id']:>10} {(c['name'] or '')[:24]:<24} {money.format(c['expected_loss'])}"
                f" (churn {c['churn_probability']:.2f}): {c['churn_reason'] or 'n/a'}"
            )
    if parts.get("win_back"):
        lines.append("Win back (value if won back; why):")
        for c in parts["win_back"][:5]:
            lines.append(
                f"  {c['customer_id']:>10} {(c['name'] or '')[:24]:<24} {money.format(c['value_if_kept'])}:"
                f" {c['churn_reason'] or 'n/a'}"
            )
    for title, section in insight_lines(parts, money).items():
        lines += ["", title, *section]
    lines += ["", "CHURN MODEL BACK-TEST", *backtest_lines(summary.get("backtest") or [], summary.get("churn_model"))]
    for title, key in (("SEGMENTS", "segments"), ("HEALTH BANDS", "health_bands"), ("REGIONS", "regions")):
        lines += ["", title]
        for row in parts[key]:
            lines.append(
                f"{row['name']:<12} {row['customers']:>10,} customers ({_pct(row['customers'], k['customers'])})"
                f"   revenue {money.format(row['revenue'] or 0)}   at risk {money.format(row['revenue_at_risk'] or 0)}"
            )
    lines += [
        "",
        "DATA QUALITY",
        f"Gate: {'PASSED' if summary['gate']['success'] else 'FAILED'}, {summary['gate']['checks']} checks,"
        f" {summary['gate']['failed']} failed ({summary['gate']['critical']} critical),"
        f" {summary['gate']['quarantined']:,} rows quarantined",
    ]
    for f in summary["failed_checks"]:
        lines.append(f"  {f['severity']:<8} {f['rule']}: {n(f['failing_rows'])} of {n(f['rows_checked'])} rows")
    lines += ["", f"ALERTS ({len(summary['alerts'])})"]
    lines += [f"  {a['severity']:<8} {a['message']}" for a in summary["alerts"]] or ["  none"]
    return "\n".join(lines)
