"""What the dashboard shows for a month, read from the analytics database only. Every query is
bounded by ``report_month`` (the partition key, leading every index), so a month is read from its
own partition; the Pareto curve and the engagement histogram are computed in SQL, never by
pulling a million customers into Python."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from psycopg import sql
from psycopg.rows import dict_row

PARETO_POINTS = 20  # the curve at every 5 % of customers


def _plain(rows: list[dict]) -> list[dict]:
    """JSON-ready rows: numerics as floats, dates as ISO strings."""
    out = []
    for r in rows:
        out.append(
            {
                k: float(v) if isinstance(v, Decimal) else v.isoformat() if isinstance(v, date) else v
                for k, v in r.items()
            }
        )
    return out


def months(conn, schema: str) -> dict:
    """The loaded months (newest first) and the latest complete one (the schema's view)."""
    from include.customer_performance.report import MonthNotLoadedError, latest_complete_month

    with conn.cursor() as cur:
        cur.execute("SELECT to_regclass(%s)", (f"{schema}.pipeline_runs",))
        if cur.fetchone()[0] is None:
            return {"months": [], "latest_complete": None}
        cur.execute(
            sql.SQL("SELECT DISTINCT report_month FROM {} ORDER BY 1 DESC").format(
                sql.Identifier(schema, "pipeline_runs")
            )
        )
        loaded = [r[0].strftime("%Y-%m") for r in cur.fetchall()]
    try:
        latest = latest_complete_month(conn, schema).strftime("%Y-%m")
    except MonthNotLoadedError:
        latest = None
    return {"months": loaded, "latest_complete": latest}


def month_data(conn, schema: str, month: date) -> dict | None:
    """Everything the page draws for ``month``; None when the month has not been loaded."""
    q = {
        "run": "SELECT period_start, period_end, run_id, loaded_at::text AS loaded_at, kpis, {churn_model}"
        " FROM {pipeline_runs}"
        " WHERE report_month = %(m)s ORDER BY period_end DESC LIMIT 1",
        "daily": "SELECT bucket_start AS day, revenue, transactions FROM {performance_trends}"
        " WHERE report_month = %(m)s AND grain = 'day' AND scope = 'all' ORDER BY bucket_start",
        "weekly": "SELECT bucket_start AS week, revenue, transactions FROM {performance_trends}"
        " WHERE report_month = %(m)s AND grain = 'week' AND scope = 'all' ORDER BY bucket_start",
        "regions": "SELECT coalesce(region, 'unknown') AS label, revenue, customers FROM {regional_summary}"
        " WHERE report_month = %(m)s AND grouping_level = 'region' ORDER BY revenue DESC NULLS LAST, label",
        "segments": "SELECT coalesce(segment, 'unknown') AS label, revenue, customers FROM {regional_summary}"
        " WHERE report_month = %(m)s AND grouping_level = 'segment' ORDER BY revenue DESC NULLS LAST, label",
        "health_bands": "SELECT coalesce(health_band, 'unknown') AS label, count(*) AS customers,"
        " coalesce(sum(revenue_at_risk), 0) AS revenue_at_risk FROM {customer_performance}"
        " WHERE report_month = %(m)s GROUP BY 1"
        " ORDER BY array_position(ARRAY['green', 'yellow', 'red'], coalesce(health_band, 'unknown')), 1",
        # the customers whose loss would cost the most: 12-month CLV x churn probability
        "at_risk": "SELECT customer_id, name, region, segment, health_band, churn_probability, clv_12m,"
        " value_at_stake, revenue_at_risk, risk_driver FROM {customer_performance}"
        " WHERE report_month = %(m)s AND value_at_stake > 0 ORDER BY value_at_stake DESC, customer_id LIMIT 15",
        "backtest": "SELECT predicted_month, horizon_months, measure, bucket, customers, churned, observed_churn_rate,"
        " mean_churn_probability, auc, lift_over_green, expected_purchases, actual_purchases, churn_method"
        " FROM {model_backtest} WHERE report_month = %(m)s AND period_end = (SELECT max(period_end)"
        " FROM {model_backtest} WHERE report_month = %(m)s) ORDER BY horizon_months, measure, bucket",
        "engagement": "SELECT least(floor(engagement_score / 10), 9)::int * 10 AS bucket, count(*) AS customers"
        " FROM {customer_performance} WHERE report_month = %(m)s AND engagement_score IS NOT NULL"
        " GROUP BY 1 ORDER BY 1",
        "pareto": f"""
            WITH ranked AS (
                SELECT greatest(revenue, 0) AS revenue,
                       ntile({PARETO_POINTS}) OVER (ORDER BY revenue DESC NULLS LAST, customer_id) AS part
                FROM {{customer_performance}} WHERE report_month = %(m)s
            ), parts AS (SELECT part, sum(revenue) AS revenue FROM ranked GROUP BY part)
            SELECT part * {100 // PARETO_POINTS} AS customers_pct,
                   round(100 * sum(revenue) OVER (ORDER BY part) / nullif(sum(revenue) OVER (), 0), 2)
                       AS revenue_pct
            FROM parts ORDER BY part""",
        "quality": "SELECT period_end, count(*) FILTER (WHERE NOT success) AS failed,"
        " count(*) FILTER (WHERE NOT success AND severity = 'critical') AS critical,"
        " count(*) FILTER (WHERE score IS NULL) AS checks, coalesce(sum(quarantined_rows), 0) AS quarantined"
        " FROM {data_quality_results} WHERE report_month >= (%(m)s::date - interval '5 months')"
        " AND report_month <= %(m)s GROUP BY period_end ORDER BY period_end DESC LIMIT 12",
        "alerts": "SELECT alert, severity, scope, value, threshold, message FROM {alerts}"
        " WHERE report_month = %(m)s AND period_end = (SELECT max(period_end) FROM {alerts}"
        " WHERE report_month = %(m)s) ORDER BY severity, alert, scope",
    }
    tables = {
        name: sql.Identifier(schema, name)
        for name in (
            "pipeline_runs",
            "performance_trends",
            "regional_summary",
            "customer_performance",
            "data_quality_results",
            "alerts",
            "model_backtest",
        )
    }
    from include.customer_performance.report import has_backtest

    with conn.cursor() as plain:
        upgraded = has_backtest(plain, schema)
    # upgraded but not loaded since: what migration 0006 adds is not there yet, and shows empty
    tables["churn_model"] = sql.SQL("churn_model" if upgraded else "NULL::jsonb AS churn_model")
    skipped = () if upgraded else ("at_risk", "backtest")
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute("SELECT to_regclass(%s)", (f"{schema}.pipeline_runs",))
        if cur.fetchone()["to_regclass"] is None:
            return None
        out = {}
        for name, text in q.items():
            if name in skipped:
                out[name] = []
                continue
            cur.execute(sql.SQL(text).format(**tables), {"m": month})
            out[name] = _plain(cur.fetchall())
    if not out["run"]:
        return None
    run = out.pop("run")[0]
    out["kpis"] = _plain([run.pop("kpis") or {}])[0]
    model = run.pop("churn_model") or {}
    from include.customer_performance import metrics

    card = model.get("scorecard") or metrics.DEFAULTS
    out["model"] = {
        "method": model.get("method"),
        "params": model.get("params") or {},
        "fallback_reason": model.get("fallback_reason"),
        "high_risk_churn": card["risk"]["high_risk_churn"],
        "red_below": card["health"]["bands"]["yellow"],
    }
    out["run"] = run
    out["month"] = month.strftime("%Y-%m")
    return out
