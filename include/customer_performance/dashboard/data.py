"""What the dashboard shows for a month, read from the analytics database only. Every query is
bounded by ``report_month`` (the partition key, leading every index), so a month is read from its
own partition; the Pareto curve and the engagement histogram are computed in SQL, never by
pulling a million customers into Python."""

from __future__ import annotations

import logging
import string
from datetime import date
from decimal import Decimal

from psycopg import sql
from psycopg.rows import dict_row

from include.customer_performance import glossary, metrics
from include.customer_performance.config import settings
from include.customer_performance.period import add_months
from include.customer_performance.quality import report as quality_report

log = logging.getLogger(__name__)

PARETO_POINTS = 20  # the curve at every 5 % of the customers who bought (as the KPI top20_revenue_share)
MOVERS = 10  # the movers shown
HISTORY_MONTHS = 12  # the months the trends and the bands over time show
AT_RISK_PAGE = 20  # the save list's page
# The save list (churn_model.lists): still active, high risk, the largest expected loss first; the
# win-back list: most likely gone, the most valuable if won back first. Each in its list_rank order.
AT_RISK = "churn_list = 'save'"
WIN_BACK = "churn_list = 'win-back'"
AT_RISK_COLUMNS = (
    "list_rank, customer_id, name, region, segment, health_band, health_score, previous_health_score, health_trend,"
    " churn_probability, p_alive, clv_12m, value_if_kept, expected_loss, churn_reason, days_since_last_purchase,"
    " (period_end - 1 - days_since_last_purchase) AS last_purchase_day, days_since_last_login,"
    " (period_end - 1 - days_since_last_login) AS last_login_day"
)


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


def _plain_trust(trust: dict) -> dict:
    return {k: _plain(v) for k, v in trust.items()}


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


def month_data(conn, schema: str, month: date, currency: str = "USD") -> dict | None:
    """Everything the page draws for ``month``; None when the month has not been loaded."""
    q = {
        "run": "SELECT period_start, period_end, run_id, loaded_at::text AS loaded_at, quality ->> 'data_docs'"
        " AS data_docs, kpis, {churn_model}"
        " FROM {pipeline_runs}"
        " WHERE report_month = %(m)s ORDER BY period_end DESC LIMIT 1",
        "daily": "SELECT bucket_start AS day, revenue, transactions FROM {performance_trends}"
        " WHERE report_month = %(m)s AND grain = 'day' AND scope = 'all' ORDER BY bucket_start",
        "weekly": "SELECT bucket_start AS week, revenue, transactions FROM {performance_trends}"
        " WHERE report_month = %(m)s AND grain = 'week' AND scope = 'all' ORDER BY bucket_start",
        "regions": "SELECT coalesce(region, 'unknown') AS label, revenue, customers FROM {regional_summary}"
        " WHERE report_month = %(m)s AND grouping_level = 'region' ORDER BY revenue DESC NULLS LAST, label",
        "penetration": "SELECT coalesce(region, 'unknown') AS label, market_penetration, penetration_base,"
        " active_customers, customers, addressable_market FROM {regional_summary}"
        " WHERE report_month = %(m)s AND grouping_level = 'region' ORDER BY market_penetration DESC NULLS LAST, label",
        "segments": "SELECT coalesce(segment, 'unknown') AS label, revenue, customers FROM {regional_summary}"
        " WHERE report_month = %(m)s AND grouping_level = 'segment' ORDER BY revenue DESC NULLS LAST, label",
        "health_bands": "SELECT coalesce(health_band, 'unknown') AS label, count(*) AS customers,"
        " round(count(*)::numeric / sum(count(*)) OVER (), 4) AS share, coalesce(sum(revenue), 0) AS revenue,"
        " coalesce(sum(revenue_at_risk), 0) AS revenue_at_risk FROM {customer_performance}"
        " WHERE report_month = %(m)s GROUP BY 1"
        " ORDER BY array_position(ARRAY['green', 'yellow', 'red'], coalesce(health_band, 'unknown')), 1",
        "at_risk_total": "SELECT count(*) AS customers, coalesce(sum(expected_loss), 0) AS expected_loss"
        " FROM {customer_performance} WHERE report_month = %(m)s AND period_end = %(end)s AND " + AT_RISK,
        "win_back": "SELECT " + AT_RISK_COLUMNS + " FROM {customer_performance}"
        " WHERE report_month = %(m)s AND period_end = %(end)s AND " + WIN_BACK + " ORDER BY list_rank",
        # the movers: the most valuable customers whose health fell since last month (by the
        # scorecard's trend_delta or more: health_trend 'down')
        "movers": "SELECT customer_id, name, region, segment, health_band, previous_health_score, health_score,"
        " health_score - previous_health_score AS health_change, churn_probability, expected_loss, risk_driver"
        " FROM {customer_performance} WHERE report_month = %(m)s AND health_trend = 'down'"
        f" ORDER BY health_score - previous_health_score, expected_loss DESC NULLS LAST, customer_id LIMIT {MOVERS}",
        "comparison": "SELECT grouping_level, coalesce(label, 'unknown') AS label, customers, new_customers,"
        " acquisition_rate, active_customers, revenue, previous_period_end, previous_revenue, revenue_change,"
        " revenue_change_share, previous_active_customers, retained_customers, retention_rate"
        " FROM {period_comparison} WHERE report_month = %(m)s AND period_end = %(end)s"
        " ORDER BY grouping_level, revenue DESC, label",
        "heatmap": "SELECT weekday, hour, sessions, session_minutes FROM {engagement_heatmap}"
        " WHERE report_month = %(m)s AND period_end = %(end)s ORDER BY weekday, hour",
        "interactions": "SELECT grouping_level, interaction_type, department, priority, resolution_status,"
        " interactions, customers, avg_satisfaction, resolved_share, escalated_share, avg_resolution_hours"
        " FROM {interaction_summary} WHERE report_month = %(m)s AND period_end = %(end)s"
        " ORDER BY grouping_level, interactions DESC",
        "correlations": "SELECT analysis, bucket, bucket_order, customers, mean_value, mean_revenue, retention_rate,"
        " mean_satisfaction, correlation, correlated_with FROM {engagement_correlations}"
        " WHERE report_month = %(m)s AND period_end = %(end)s ORDER BY analysis, bucket_order",
        # the months up to this one, newest first: the KPI cards' change and trend, the bands over
        # time, rows per source
        "history": "SELECT DISTINCT ON (report_month) report_month, period_start, period_end,"
        " loaded_at::text AS loaded_at, kpis, tasks FROM {pipeline_runs}"
        f" WHERE report_month <= %(m)s AND report_month > (%(m)s::date - interval '{HISTORY_MONTHS} months')"
        " ORDER BY report_month DESC, period_end DESC",
        "backtest": "SELECT predicted_month, horizon_months, measure, bucket, customers, churned, observed_churn_rate,"
        " mean_churn_probability, auc, {backtest_added}, lift_over_green, expected_purchases, actual_purchases,"
        " churn_method"
        " FROM {model_backtest} WHERE report_month = %(m)s AND period_end = (SELECT max(period_end)"
        " FROM {model_backtest} WHERE report_month = %(m)s) ORDER BY horizon_months, measure, bucket",
        "engagement": "SELECT least(floor(engagement_score / 10), 9)::int * 10 AS bucket, count(*) AS customers"
        " FROM {customer_performance} WHERE report_month = %(m)s AND engagement_score IS NOT NULL"
        " GROUP BY 1 ORDER BY 1",
        "pareto": f"""
            WITH ranked AS (
                SELECT revenue,
                       row_number() OVER (ORDER BY revenue DESC, customer_id) AS r, count(*) OVER () AS n
                FROM {{customer_performance}} WHERE report_month = %(m)s AND revenue > 0
            ), parts AS (
                -- point k holds the top ceil(k / {PARETO_POINTS} x buyers), as the KPI counts its top 20 %
                SELECT floor({PARETO_POINTS} * (r - 1)::numeric / n)::int + 1 AS part, sum(revenue) AS revenue
                FROM ranked GROUP BY 1
            ), shares AS (
                -- every point, a part no buyer falls in (fewer buyers than points) carrying the last
                SELECT p.part,
                       round(sum(coalesce(parts.revenue, 0)) OVER (ORDER BY p.part)
                             / nullif(sum(coalesce(parts.revenue, 0)) OVER (), 0), 4) AS share
                FROM generate_series(1, {PARETO_POINTS}) AS p (part) LEFT JOIN parts USING (part)
                WHERE EXISTS (SELECT FROM ranked)
            )
            SELECT part * {100 // PARETO_POINTS} AS customers_pct, 100 * share AS revenue_pct,
                   share AS revenue_share
            FROM shares ORDER BY part""",
        "quality": "SELECT min(period_start) AS period_start, period_end,"
        " count(*) FILTER (WHERE NOT success AND score IS NULL) AS failed,"
        " count(*) FILTER (WHERE NOT success AND severity = 'critical' AND score IS NULL) AS critical,"
        " count(*) FILTER (WHERE score IS NULL) AS checks, coalesce(sum(quarantined_rows), 0) AS quarantined"
        " FROM {data_quality_results} WHERE report_month >= (%(m)s::date - interval '5 months')"
        " AND report_month <= %(m)s GROUP BY period_end ORDER BY period_end DESC LIMIT 12",
        "alerts": "SELECT alert, severity, scope, value, threshold, message FROM {alerts}"
        " WHERE report_month = %(m)s AND period_end = (SELECT max(period_end) FROM {alerts}"
        " WHERE report_month = %(m)s) ORDER BY severity, alert, scope",
    }
    tables = {name: sql.Identifier(schema, name) for name in TABLES}
    with conn.cursor(row_factory=dict_row) as cur:
        present = _present(cur, schema)
        if "pipeline_runs" not in present:
            return None
        # upgraded but not loaded since: what migration 0006 adds is not there yet, and shows empty
        upgraded = "model_backtest" in present
        tables["churn_model"] = sql.SQL("churn_model" if upgraded else "NULL::jsonb AS churn_model")
        cur.execute(sql.SQL(q.pop("run")).format(**tables), {"m": month})
        found = cur.fetchall()
        if not found:
            return None
        run = _plain(found)[0]
        model = run.pop("churn_model") or {}
        card = model.get("scorecard") or metrics.DEFAULTS
        params = {"m": month, "end": run["period_end"], "high_risk": card["risk"]["high_risk_churn"]}
        # what later migrations add (0011: market penetration; 0013, 0015: the back-test's baselines
        # and revenue; 0014: the lists and the expected loss), shown empty until the schema has it
        penetration = _has_column(cur, schema, "regional_summary", "market_penetration")
        tables["backtest_added"] = _or_null(cur, schema, "model_backtest", BACKTEST_ADDED)
        lists = _has_column(cur, schema, "customer_performance", "churn_list")
        out = {}
        for name, text in q.items():
            needs = {field for _, field, _, _ in string.Formatter().parse(text) if field} - {"backtest_added"}
            if (
                not needs <= present
                or (not upgraded and name == "backtest")
                or (not lists and name in ("at_risk_total", "movers", "win_back"))
                or (name == "penetration" and not penetration)
            ):
                out[name] = []  # a table or column a later migration adds: shown empty until then
                continue
            cur.execute(sql.SQL(text).format(**tables), params)
            out[name] = _plain(cur.fetchall())
        out["at_risk"] = (
            at_risk_page(conn, schema, month, 0, AT_RISK_PAGE, run["period_end"], params["high_risk"])
            if lists
            else {"total": 0, "offset": 0, "limit": AT_RISK_PAGE, "rows": [], "high_risk_churn": params["high_risk"]}
        )
    history = out.pop("history")
    out["kpis"] = _plain([run.pop("kpis") or {}])[0]
    out["history"] = [
        {
            "month": h["report_month"][:7],
            "period_end": h["period_end"],
            "loaded_at": h["loaded_at"],
            "month_closed": _month_closed(h),
            "kpis": h["kpis"] or {},
            "rows": {t: (h["tasks"] or {}).get(t, {}).get("rows_out") for t in EXTRACTS},
        }
        for h in history
    ]
    totals = (out.pop("at_risk_total") or [{"customers": 0, "expected_loss": 0}])[0]
    out["at_risk"] = {**out["at_risk"], "expected_loss": totals["expected_loss"]}
    out["model"] = {
        "method": model.get("method"),
        "trained": {k: v for k, v in (model.get("model") or {}).items() if k != "top_features"},
        "params": model.get("params") or {},
        "fallback_reason": model.get("fallback_reason"),
        "high_risk_churn": card["risk"]["high_risk_churn"],
        "no_purchase_days": card["churn"].get("no_purchase_days"),
        # still active, in words, by the scorecard the run used (an older run's lists were drawn
        # without the login days)
        "active": glossary.active_text(
            card["risk"].get("active_gaps", metrics.DEFAULTS["risk"]["active_gaps"]),
            card["risk"].get("active_days", metrics.DEFAULTS["risk"]["active_days"]),
            card["risk"].get("active_login_days"),
        ),
        "red_below": card["health"]["bands"]["yellow"],
    }
    with conn.cursor() as cur:
        report = sql.SQL("(SELECT * FROM {} WHERE report_month = {} AND period_end = {})").format(
            tables["data_quality_results"], sql.Literal(month), sql.Literal(run["period_end"])
        )
        out["gate"] = _plain(quality_report.gate_counts(cur, report))
        out["trust"] = _plain_trust(quality_report.trust(cur, report, settings()))
    out["labels"] = glossary.labels()
    out["run"] = {**run, "month_closed": _month_closed(run), "data_docs_link": data_docs_link(run.get("data_docs"))}
    out["month"] = month.strftime("%Y-%m")
    out["currency"] = currency
    out["banners"] = banners(out)
    return out


TABLES = (
    "pipeline_runs",
    "performance_trends",
    "regional_summary",
    "customer_performance",
    "data_quality_results",
    "alerts",
    "model_backtest",
    "period_comparison",
    "engagement_heatmap",
    "interaction_summary",
    "engagement_correlations",
)
EXTRACTS = ("extract_customer_db", "extract_crm_api", "extract_sales_db")


def _present(cur, schema: str) -> set[str]:
    """The dashboard's tables that exist in the schema (a later migration's are missing before it)."""
    cur.execute(
        "SELECT c.relname FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %s AND c.relname = ANY(%s)",
        (schema, list(TABLES)),
    )
    return {r["relname"] for r in cur.fetchall()}


# the back-test's columns later migrations add (0013: the baselines; 0015: the revenue), with their types
BACKTEST_ADDED = {
    "recency_auc": "numeric",
    "health_auc": "numeric",
    "btyd_auc": "numeric",
    "active_auc": "numeric",
    "active_recency_auc": "numeric",
    "save_list": "bigint",
    "save_precision": "numeric",
    "expected_revenue": "numeric",
    "actual_revenue": "numeric",
}


def _table_columns(cur, schema: str, table: str) -> set[str]:
    cur.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s",
        (schema, table),
    )
    return {r["column_name"] for r in cur.fetchall()}


def _has_column(cur, schema: str, table: str, column: str) -> bool:
    """Whether the schema's ``table`` has ``column`` yet (a migration not applied since: not)."""
    return column in _table_columns(cur, schema, table)


def _or_null(cur, schema: str, table: str, columns: dict[str, str]) -> sql.Composable:
    """A select list of ``columns`` (name: type): each as itself where ``table`` has it, else a NULL
    of its type under its name, so a query reads a schema a later migration has not reached yet."""
    have = _table_columns(cur, schema, table)
    return sql.SQL(", ").join(
        sql.Identifier(name) if name in have else sql.SQL("NULL::{} AS {}").format(sql.SQL(kind), sql.Identifier(name))
        for name, kind in columns.items()
    )


def data_docs_link(location: str | None, hours: int = 12) -> str | None:
    """A time-limited link to the run's Data Docs page where they are on an object store that
    makes one (S3); None otherwise, or when the store cannot sign (the page shows the location).
    The link opens the index page; the pages it links need read access to the bucket's prefix."""
    if not location or "://" not in location:
        return None
    from include.customer_performance.config import settings
    from include.customer_performance.export.csv_email import share_link

    try:
        return share_link(location.rstrip("/") + "/index.html", hours, settings().export_link_conn_id)
    except Exception:  # noqa: BLE001 - a missing connection or credentials: the location is shown instead
        log.warning("no link to the Data Docs at %s", location, exc_info=True)
        return None


def _month_closed(run: dict) -> bool:
    start, end = date.fromisoformat(str(run["period_start"])[:10]), date.fromisoformat(str(run["period_end"])[:10])
    return end == add_months(start.replace(day=1), 1)


def banners(d: dict) -> list[dict]:
    """What a reader must know before trusting the month: a source that delivered nothing, rules
    the gate failed, a month not yet complete, a later run that did not finish."""
    out = []
    empty = sorted({a["scope"] for a in d["alerts"] if a["alert"] == "source_empty"})
    if empty:
        out.append(
            {
                "level": "error",
                "text": f"Empty source(s) this period: {', '.join(empty)}. The figures that depend on them are"
                " missing (shown as n/a), not zero.",
            }
        )
    failed = sum(g["failed"] for g in d["gate"] if g["severity"] == "warning")
    if failed:
        out.append(
            {
                "level": "warning",
                "text": f"The quality gate passed with {failed} warning rule(s) failed: their rows were quarantined"
                " and are not in these figures (see Data quality).",
            }
        )
    if not d["run"]["month_closed"]:
        out.append(
            {
                "level": "info",
                "text": f"Month to date: {d['run']['period_start']} to {d['run']['period_end']} (end exclusive);"
                " the comparison with last month is against its whole month.",
            }
        )
    return out


def run_banners(airflow: dict, run: dict) -> list[dict]:
    """The newest Airflow run of the month, when it did not succeed: either its figures are not
    the ones shown (it stopped before publishing), or it published them and a later task failed."""
    runs = airflow.get("runs") or []
    if not runs or runs[0]["state"] == "success":
        return []
    latest = runs[0]
    failed = latest["failed_tasks"]
    named = f"The month's latest run ({latest['run_id']})"
    if latest["run_id"] == run["run_id"]:  # the figures shown are this run's load
        if not failed:
            return [{"level": "info", "text": f"{named} is {latest['state']}; it published the figures below."}]
        return [
            {
                "level": "warning",
                "text": f"{named} published the figures below, then task(s) {', '.join(failed)} failed: a"
                " destination (BI, email) may not have them yet; see the run in Airflow.",
            }
        ]
    if "validate" in failed:
        why = "the quality gate stopped it (a critical rule failed); nothing of it was published"
    elif "aggregate" in failed:
        why = "aggregate failed (the aggregates' reconciliation checks, or an error); nothing of it was published"
    elif failed:
        why = f"task(s) {', '.join(failed)} failed"
    else:
        why = f"it is {latest['state']}"
    return [
        {
            "level": "error" if failed else "info",
            "text": f"{named}: {why}. The figures below are from the load of {run['loaded_at']} (run {run['run_id']}).",
        }
    ]


class MonthNotLoadedError(LookupError):
    """The month has no load in the analytics database."""


def at_risk_page(
    conn, schema: str, month: date, offset: int, limit: int, period_end=None, high_risk: float | None = None
) -> dict:
    """One page of the save list (``AT_RISK``, in its rank order) and its total."""
    period_end, high_risk = _month_params(conn, schema, month, period_end, high_risk)
    if period_end is None:
        raise MonthNotLoadedError(f"{month:%Y-%m} has not been loaded into the analytics database")
    with conn.cursor(row_factory=dict_row) as cur:
        params = {"m": month, "end": period_end, "high_risk": high_risk, "offset": offset, "limit": limit}
        cur.execute(
            sql.SQL(
                "SELECT count(*) AS n FROM {} WHERE report_month = %(m)s AND period_end = %(end)s AND " + AT_RISK
            ).format(sql.Identifier(schema, "customer_performance")),
            params,
        )
        total = cur.fetchone()["n"]
        cur.execute(_at_risk_list(schema, " OFFSET %(offset)s LIMIT %(limit)s"), params)
        rows = _plain(cur.fetchall())
    return {"total": total, "offset": offset, "limit": limit, "rows": rows, "high_risk_churn": high_risk}


def _at_risk_list(schema: str, page: str = "") -> sql.Composed:
    """The save list of month %(m)s as loaded up to %(end)s, in its rank order, with ``page``."""
    return sql.SQL(
        "SELECT "
        + AT_RISK_COLUMNS
        + " FROM {} WHERE report_month = %(m)s AND period_end = %(end)s AND "
        + AT_RISK
        + " ORDER BY list_rank"
        + page
    ).format(sql.Identifier(schema, "customer_performance"))


def at_risk_csv(conn, schema: str, month: date):
    """The whole save list as CSV lines (a header first), streamed from a server-side cursor."""
    import csv
    import io

    period_end, high_risk = _month_params(conn, schema, month)
    if period_end is None:
        raise MonthNotLoadedError(f"{month:%Y-%m} has not been loaded into the analytics database")
    names = [c.strip().split(" AS ")[-1].strip(")") for c in AT_RISK_COLUMNS.split(", ") if c.strip()]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(names)
    yield buf.getvalue()
    with conn.cursor(name="cp_at_risk_csv") as cur:
        cur.execute(_at_risk_list(schema), {"m": month, "end": period_end, "high_risk": high_risk})
        while batch := cur.fetchmany(5000):
            buf.seek(0)
            buf.truncate()
            # a cell a spreadsheet would run as a formula is quoted as text (names come from the source)
            writer.writerows([[_cell(v) for v in row] for row in batch])
            yield buf.getvalue()


def _cell(value):
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _month_params(conn, schema: str, month: date, period_end=None, high_risk=None):
    """The month's loaded period end and high-risk threshold (from its run record)."""
    if period_end is not None and high_risk is not None:
        return period_end, high_risk
    from include.customer_performance import metrics

    with conn.cursor() as cur:
        cur.execute(
            sql.SQL(
                "SELECT period_end, churn_model -> 'scorecard' -> 'risk' ->> 'high_risk_churn' FROM {}"
                " WHERE report_month = %s ORDER BY period_end DESC LIMIT 1"
            ).format(sql.Identifier(schema, "pipeline_runs")),
            (month,),
        )
        found = cur.fetchone()
    if found is None:
        return None, metrics.DEFAULTS["risk"]["high_risk_churn"]
    return found[0], float(found[1]) if found[1] is not None else metrics.DEFAULTS["risk"]["high_risk_churn"]


CUSTOMER_COLUMNS = (
    "report_month, period_end, name, region, segment, status, transaction_count, revenue, login_count,"
    " features_used, interaction_count, avg_satisfaction, engagement_score, health_score, health_band,"
    " health_trend, churn_probability, clv_12m, expected_loss, churn_reason, revenue_at_risk, risk_driver,"
    " days_since_last_purchase, days_since_last_login"
)


def customer_history(conn, schema: str, customer_id: int) -> dict | None:
    """One customer's monthly metrics, oldest month first (each month's last load); None if unknown."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute("SELECT to_regclass(%s) AS t", (f"{schema}.customer_performance",))
        if cur.fetchone()["t"] is None:
            return None
        # one index probe per loaded month, (report_month, customer_id), rather than a scan of
        # every partition's index for the customer
        cur.execute(
            sql.SQL("SELECT array_agg(DISTINCT report_month) AS months FROM {}").format(
                sql.Identifier(schema, "pipeline_runs")
            )
        )
        loaded = cur.fetchone()["months"] or []
        columns = CUSTOMER_COLUMNS
        cur.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = %s"
            " AND table_name = 'customer_performance'",
            (schema,),
        )
        have = {r["column_name"] for r in cur.fetchall()}
        # a column a later migration adds (0006: risk_driver; 0014: expected_loss, churn_reason) is
        # shown empty until then
        for name, kind in (("expected_loss", "numeric"), ("churn_reason", "text"), ("risk_driver", "text")):
            if name not in have:
                columns = columns.replace(f"{name},", f"NULL::{kind} AS {name},")
        cur.execute(
            sql.SQL(
                "SELECT " + columns + " FROM {} WHERE report_month = ANY(%s) AND customer_id = %s ORDER BY report_month"
            ).format(sql.Identifier(schema, "customer_performance")),
            (loaded, customer_id),
        )
        months = _plain(cur.fetchall())
    if not months:
        return None
    latest = months[-1]
    return {
        "customer_id": customer_id,
        "name": latest["name"],
        "region": latest["region"],
        "segment": latest["segment"],
        "months": [{**m, "month": m["report_month"][:7]} for m in months],
    }
