"""Read a loaded month back from the analytics database: the summary the demo (and, later, the
report CLI) prints."""

from __future__ import annotations

from datetime import date

from psycopg import sql
from psycopg.rows import dict_row


class MonthNotLoadedError(LookupError):
    pass


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
                "SELECT severity, expectation, table_name, column_name, failing_rows, rows_checked FROM {}"
                " WHERE report_month = %s AND run_id = %s AND NOT success ORDER BY severity, expectation"
            ).format(sql.Identifier(schema, "data_quality_results")),
            (report_month, run["run_id"]),
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
