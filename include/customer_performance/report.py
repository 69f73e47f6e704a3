"""Read a loaded month back from the analytics database: the executive dashboard (the original
specification's "Sample Output", README "Executive summary") that the report CLI and the demo print.

    python -m include.customer_performance report --month 2025-07
"""

from __future__ import annotations

from datetime import date

from psycopg import sql
from psycopg.rows import dict_row


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


def month_summary(conn, schema: str, report_month: date) -> dict:
    """The latest run's KPIs, quality result and row counts for ``report_month``."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            sql.SQL(
                "SELECT run_id, period_start, period_end, kpis, quality, loaded_at FROM {}"
                " WHERE report_month = %s ORDER BY loaded_at DESC LIMIT 1"
            ).format(sql.Identifier(schema, "pipeline_runs")),
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
        cur.execute(
            sql.SQL(
                "SELECT alert, severity, scope, message FROM {} WHERE report_month = %s AND period_end = %s"
                " ORDER BY severity, alert, scope"
            ).format(sql.Identifier(schema, "alerts")),
            (report_month, run["period_end"]),
        )
        alerts = cur.fetchall()
    return {**run, "row_counts": counts, "failed_checks": failed, "alerts": alerts}


def breakdowns(conn, schema: str, report_month: date) -> dict[str, list[dict]]:
    """Segments, health bands and regions of the month, for the dashboard."""
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
    return out


def _pct(part: float | None, whole: float | None = None) -> str:
    """``part`` as a percentage: of ``whole``, or as a share itself when no whole is given."""
    if part is None or (whole is not None and not whole):
        return "n/a"
    return f"{(part / whole if whole is not None else part):.1%}"


def executive_dashboard(summary: dict, parts: dict, currency: str) -> str:
    """The seed's executive dashboard, plus revenue, segments, health bands and regions."""
    k, q = summary["kpis"], summary["quality"]
    month = summary["period_start"].strftime("%B %Y")
    period = f"{summary['period_start']}..{summary['period_end']} (end exclusive)"
    money = f"{{:,.2f}} {currency}"

    def n(v) -> str:
        return "n/a" if v is None else f"{v:,}"

    lines = [
        f"CUSTOMER PERFORMANCE DASHBOARD: {month}",
        f"period {period}, run {summary['run_id']}, loaded {summary['loaded_at']:%Y-%m-%d %H:%M} UTC",
        "",
        "CUSTOMER OVERVIEW",
        f"Total Customers: {n(k['customers'])}",
        f"Active Customers: {n(k['active_customers'])} ({_pct(k['active_customers'], k['customers'])})",
        f"New Customers: {n(k['new_customers'])} ({_pct(k['new_customers'], k['customers'])})",
        f"High Risk Customers: {n(k['high_risk_customers'])} ({_pct(k['high_risk_share'])})",
        f"Top Region: {k['top_region'] or 'n/a'}",
        "",
        "SUPPORT PERFORMANCE",
        f"Total Tickets: {n(k['tickets'])}",
        f"Resolved: {n(k['tickets_resolved'])} ({_pct(k['resolved_share'])})",
        "Average Resolution Time: "
        + ("n/a" if k["avg_resolution_hours"] is None else f"{k['avg_resolution_hours']:.1f} hours"),
        "Escalated: "
        + ("n/a" if k["escalated_share"] is None else f"{round(k['escalated_share'] * (k['tickets'] or 0)):,}")
        + f" ({_pct(k['escalated_share'])})",
        "",
        "CUSTOMER SATISFACTION",
        "Average Satisfaction: " + ("n/a" if k["avg_satisfaction"] is None else f"{k['avg_satisfaction']:.1f} / 10"),
        f"High Renewal Likelihood: {_pct(k['renewal_likely_share'])} of customers with a purchase history",
        f"Average Engagement Score: {k['avg_engagement_score']}",
        "",
        "REVENUE",
        f"Net Revenue: {money.format(k['revenue'])} over {n(k['transactions'])} transactions",
        f"Refunds: {money.format(k['refunds'])}",
        f"Top 20% of Customers Hold: {_pct(k['top20_revenue_share'])} of revenue",
        f"Revenue at Risk: {money.format(k['revenue_at_risk'])} ({_pct(k['revenue_at_risk_share'])})",
        f"Expected 12-Month CLV: {money.format(k['clv_12m'])}",
    ]
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
        f"Gate: {'PASSED' if q['success'] else 'FAILED'}, {q['checks']} checks, {q['failed']} failed"
        f" ({q['critical_failed']} critical), {q['quarantined_rows']:,} rows quarantined",
    ]
    for f in summary["failed_checks"]:
        lines.append(f"  {f['severity']:<8} {f['rule']}: {n(f['failing_rows'])} of {n(f['rows_checked'])} rows")
    lines += ["", f"ALERTS ({len(summary['alerts'])})"]
    lines += [f"  {a['severity']:<8} {a['message']}" for a in summary["alerts"]] or ["  none"]
    return "\n".join(lines)
