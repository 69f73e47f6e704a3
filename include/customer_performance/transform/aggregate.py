"""Aggregates of the validated data: regional summary, daily/weekly trends, the KPI row, alerts,
the back-test, and the insights (the month against the previous one, the engagement heatmap, the
interactions by type and department, the tables of association)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from psycopg import sql

from include.customer_performance import metrics, scorecard
from include.customer_performance.config import Settings
from include.customer_performance.db import Connect, on_own_connection
from include.customer_performance.period import add_months
from include.customer_performance.sql import model, placeholders
from include.customer_performance.staging import Run, replace_table_as

AGGREGATES = (
    "regional_summary",
    "performance_trends",
    "kpis",
    "alerts",
    "backtest",
    "period_comparison",
    "engagement_heatmap",
    "interaction_summary",
    "engagement_correlations",
)


def previous_regions(cur, run: Run, analytics_schema: str) -> sql.Composable:
    """Last month's revenue per region from the analytics database, or an empty relation."""
    cur.execute("SELECT to_regclass(%s)", (f"{analytics_schema}.regional_summary",))
    if cur.fetchone()[0] is None:
        return sql.SQL("(SELECT NULL::text AS region, NULL::numeric AS revenue WHERE false)")
    return sql.SQL("(SELECT region, revenue FROM {} WHERE report_month = {} AND grouping_level = 'region')").format(
        sql.Identifier(analytics_schema, "regional_summary"), sql.Literal(run.period.previous_month.report_month)
    )


def previous_customers(cur, run: Run, analytics_schema: str) -> tuple[sql.Composable, bool]:
    """The previous month's published customer rows as the insights read them, and whether that
    month's last load closed it (else an empty relation: a month to date is no fair base)."""
    columns = "customer_id, region, crm_segment, revenue, transaction_count, features_used, period_end"
    cur.execute("SELECT to_regclass(%s)", (f"{analytics_schema}.customer_performance",))
    if cur.fetchone()[0] is None:
        loaded = False
    else:
        cur.execute(
            sql.SQL(
                "SELECT EXISTS (SELECT 1 FROM {} WHERE report_month = %(m)s"
                " AND period_end = (%(m)s::date + interval '1 month')::date)"
            ).format(sql.Identifier(analytics_schema, "customer_performance")),
            {"m": run.period.previous_month.report_month},
        )
        loaded = cur.fetchone()[0]
    if not loaded:
        empty = (
            "SELECT NULL::bigint AS customer_id, NULL::text AS region, NULL::text AS crm_segment,"
            " NULL::numeric AS revenue, NULL::bigint AS transaction_count, NULL::bigint AS features_used,"
            " NULL::date AS period_end WHERE false"
        )
        return sql.SQL(f"({empty})"), False  # noqa: S608 - the package's own names
    return sql.SQL("(SELECT " + columns + " FROM {} WHERE report_month = {})").format(
        sql.Identifier(analytics_schema, "customer_performance"), sql.Literal(run.period.previous_month.report_month)
    ), True


# sql/backtest.sql reads the expected purchases of these horizons (expected_purchases_<n>m)
if set(metrics.BACKTEST_HORIZONS_MONTHS) - {1, 3}:
    raise ValueError("metrics.BACKTEST_HORIZONS_MONTHS: sql/backtest.sql and churn.HORIZONS know 1 and 3 months only")


def event_horizon(days: int) -> dict:
    """The back-test horizon whose months hold the churn event's ``days`` (the shortest of at least
    ``days`` / 31 months, else the longest): the churn probability is scored there."""
    fits = [h for h in sorted(metrics.BACKTEST_HORIZONS_MONTHS) if 31 * h >= days]
    return {"no_purchase_days": days, "event_horizon": fits[0] if fits else max(metrics.BACKTEST_HORIZONS_MONTHS)}


def published_predictions(cur, run: Run, analytics_schema: str) -> sql.Composable:
    """What the month-close runs of the back-test's months published (sql/backtest.sql), or an
    empty relation before the analytics schema has the columns."""
    columns = (
        "report_month date, customer_id bigint, churn_probability numeric, health_band text, churn_method text,"
        " expected_purchases_1m numeric, expected_purchases_3m numeric, transaction_count bigint, purchase_days bigint,"
        " days_since_last_purchase bigint, health_score numeric, churn_probability_btyd numeric, p_alive numeric,"
        " churn_list text, first_purchase timestamptz, usual_gap_days numeric, lifetime_purchases bigint,"
        " revenue numeric, expected_purchases_12m numeric, clv_12m numeric, days_since_last_login bigint"
    )
    cur.execute(
        "SELECT 1 FROM information_schema.columns WHERE table_schema = %s AND table_name = 'customer_performance'"
        " AND column_name = 'expected_purchases_3m'",
        (analytics_schema,),
    )
    if cur.fetchone() is None:
        nulls = ", ".join(f"NULL::{c.split()[1]} AS {c.split()[0]}" for c in columns.split(", "))
        return sql.SQL(f"(SELECT {nulls} WHERE false)")  # noqa: S608 - the package's own names
    names = sql.SQL(", ").join(sql.Identifier(c.split()[0]) for c in columns.split(", "))
    # each month closed, as literals: the planner estimates "period_end = report_month + 1 month" as
    # 0.5 % of the rows, and at 100,000 customers a month joins the next ones in nested loops (minutes)
    months = [add_months(run.period.report_month, -k) for k in range(1, max(metrics.BACKTEST_HORIZONS_MONTHS) + 1)]
    closed = sql.SQL(" OR ").join(
        sql.SQL("(report_month = {} AND period_end = {})").format(sql.Literal(m), sql.Literal(add_months(m, 1)))
        for m in months
    )
    return sql.SQL("(SELECT {names} FROM {table} WHERE {closed})").format(
        names=names, table=sql.Identifier(analytics_schema, "customer_performance"), closed=closed
    )


# The aggregates computed on the second connection (in this order) while the first computes the
# others: about half of the work each (at 1,000,000 customers, each alone: 27 s against 29 s; with
# the trends alone on the side, 18 s against 39 s).
SIDE = ("performance_trends", "interaction_summary")


def aggregate(cur, run: Run, cfg: Settings, connect: Connect | None = None) -> dict:
    """The aggregate tables of the run. With ``connect`` (a second connection to the analytics
    database), those of ``SIDE`` are computed on it, side by side with the others."""
    previous = run.period.previous_month
    if (run.period.end - run.period.start).days > 63:  # performance_trends keeps the days as bits of a bigint
        raise ValueError(f"performance_trends: the period {run.period} is longer than 63 days")
    # the staged tables a model reads are bound by name (sql.model); the interactions are the
    # validated ones (without the rows the gate quarantined), the alerts read the gate's report
    last_month, last_month_loaded = previous_customers(cur, run, cfg.analytics_schema)
    from include.customer_performance import market

    inputs = {
        "market_size": market.relation(market.of_settings(cfg)),
        "previous_regions": previous_regions(cur, run, cfg.analytics_schema),
        "published": published_predictions(cur, run, cfg.analytics_schema),
        "previous_customers": last_month,
    }
    card = scorecard.of_run(cur, run)
    params = {
        **card.sql_params(),  # the scorecard calculate computed with
        **run.period.as_params(),
        "period_share": (run.period.end - run.period.start).days / (previous.end - previous.start).days,
        "region_drop": cfg.alert_region_revenue_drop,
        "risk_share": cfg.alert_revenue_at_risk_share,
        "completeness_min": cfg.alert_completeness_min,
        "backtest_horizons": list(metrics.BACKTEST_HORIZONS_MONTHS),
        **event_horizon(card.get("churn.no_purchase_days")),
        "active_days": card.get("risk.active_days"),
        "active_gaps": card.get("risk.active_gaps"),
        "active_login_days": card.get("risk.active_login_days"),
        "fallback_gap_days": card.get("churn.fallback_gap_days"),
        "complete_month": run.month_closed,
        "previous_loaded": last_month_loaded,
    }
    side = SIDE if connect is not None else ()
    out = {}
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="aggregate-side") as pool:
        ahead = {name: pool.submit(on_own_connection, connect, _replace, run, name, inputs, params) for name in side}
        for name in AGGREGATES:
            if name not in side:
                rows = replace_table_as(cur, run.table(name), model(name, run, **bound(name, inputs)), params)
                out[name] = {"table": run.table_name(name), "rows": rows}
        for name, future in ahead.items():
            out[name] = {"table": run.table_name(name), "rows": future.result()}
    return {name: out[name] for name in AGGREGATES}


def bound(name: str, inputs: dict) -> dict:
    """The caller-computed inputs the model ``name`` reads."""
    return {k: v for k, v in inputs.items() if k in placeholders(name)}


def _replace(conn, run: Run, name: str, inputs: dict, params: dict) -> int:
    with conn.cursor() as cur:
        rows = replace_table_as(cur, run.table(name), model(name, run, **bound(name, inputs)), params)
        conn.commit()
        return rows
