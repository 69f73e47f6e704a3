"""Publish the period's staged results into the partitioned tables of the analytics schema.

The period's data replaces the month's partition in one transaction, under an advisory lock per
month, so readers see the old month or the new one, never a mix, and two runs for the same month
are serialised. Quality results and the run record replace only the rows of the same period
(the same month-to-date window), which keeps the history of the month's daily runs while a rerun
or a second run of the same period never adds rows.
"""

from __future__ import annotations

import json
import logging

from psycopg import sql

from include.customer_performance.sql import _text
from include.customer_performance.staging import Run

log = logging.getLogger(__name__)

# destination table -> staged stage it comes from
PARTITION_TABLES = {
    "customer_performance": "customer_metrics",
    "regional_summary": "regional_summary",
    "performance_trends": "performance_trends",
}
RUN_TABLES = {"data_quality_results": "dq_results", "alerts": "alerts"}


def ensure_schema(cur, schema: str) -> None:
    cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
    cur.execute(sql.SQL(_text("analytics_schema")).format(schema=sql.Identifier(schema)))


def ensure_partition(cur, schema: str, table: str, run: Run) -> sql.Composed:
    month = run.period.report_month
    part = sql.Identifier(schema, f"{table}_{month:%Y_%m}")
    cur.execute(
        sql.SQL("CREATE TABLE IF NOT EXISTS {} PARTITION OF {} FOR VALUES IN ({})").format(
            part, sql.Identifier(schema, table), sql.Literal(month)
        )
    )
    return part


def _columns(cur, schema: str, table: str) -> dict[str, str]:
    """``{column: SQL type}`` of a table, in column order."""
    cur.execute(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute AS a"
        " JOIN pg_class AS c ON c.oid = a.attrelid JOIN pg_namespace AS n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
        (schema, table),
    )
    return dict(cur.fetchall())


def _insert_from_stage(cur, schema: str, table: str, run: Run, stage: str) -> int:
    """Insert the staged rows; a column the model produces that the table lacks is added first
    (additive evolution: the SQL model is the one place a destination column is declared)."""
    staged = _columns(cur, run.schema, run.table_name(stage))
    dest = _columns(cur, schema, table)
    for name, sql_type in staged.items():
        if name not in dest:
            log.info("adding column %s %s to %s.%s", name, sql_type, schema, table)
            cur.execute(
                sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} {}").format(
                    sql.Identifier(schema, table), sql.Identifier(name), sql.SQL(sql_type)
                )
            )
    ident = sql.SQL(", ").join(map(sql.Identifier, staged))
    cur.execute(
        sql.SQL(
            "INSERT INTO {dest} (report_month, period_start, period_end, run_id, {cols})"
            " SELECT %(report_month)s, %(period_start)s, %(period_end)s, %(run_id)s, {cols} FROM {src}"
        ).format(dest=sql.Identifier(schema, table), cols=ident, src=run.table(stage)),
        {**run.period.as_params(), "run_id": run.run_id},
    )
    return cur.rowcount


def publish(cur, run: Run, schema: str, row_counts: dict, quality: dict, kpis: dict) -> dict[str, int]:
    """Replace the period's rows in every analytics table; the caller commits once."""
    ensure_schema(cur, schema)
    cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"customer_performance:{run.period.report_month}",))
    loaded = {}
    for table, stage in PARTITION_TABLES.items():
        part = ensure_partition(cur, schema, table, run)
        cur.execute(sql.SQL("DELETE FROM {}").format(part))
        loaded[table] = _insert_from_stage(cur, schema, table, run, stage)
    for table, stage in RUN_TABLES.items():
        part = ensure_partition(cur, schema, table, run)
        cur.execute(sql.SQL("DELETE FROM {} WHERE period_end = %s").format(part), (run.period.end,))
        loaded[table] = _insert_from_stage(cur, schema, table, run, stage)
    part = ensure_partition(cur, schema, "pipeline_runs", run)
    cur.execute(sql.SQL("DELETE FROM {} WHERE period_end = %s").format(part), (run.period.end,))
    cur.execute(
        sql.SQL(
            "INSERT INTO {} (report_month, period_start, period_end, run_id, row_counts, quality, kpis)"
            " VALUES (%(report_month)s, %(period_start)s, %(period_end)s, %(run_id)s,"
            " %(counts)s, %(quality)s, %(kpis)s)"
        ).format(sql.Identifier(schema, "pipeline_runs")),
        {
            **run.period.as_params(),
            "run_id": run.run_id,
            "counts": json.dumps(row_counts),
            "quality": json.dumps(quality),
            "kpis": json.dumps(kpis, default=str),
        },
    )
    loaded["pipeline_runs"] = 1
    log.info("published %s for %s: %s", schema, run.period, loaded)
    return loaded
