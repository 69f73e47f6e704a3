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
RUN_TABLES = {"data_quality_results": "dq_results"}


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


def _columns(cur, schema: str, table: str) -> list[str]:
    cur.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s"
        " ORDER BY ordinal_position",
        (schema, table),
    )
    return [r[0] for r in cur.fetchall()]


def _insert_from_stage(cur, schema: str, table: str, run: Run, stage: str) -> int:
    cols = _columns(cur, run.schema, run.table_name(stage))
    dest = set(_columns(cur, schema, table))
    missing = [c for c in cols if c not in dest]
    if missing:
        raise RuntimeError(f"{schema}.{table} lacks column(s) {missing} produced by stage {stage}")
    ident = sql.SQL(", ").join(map(sql.Identifier, cols))
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
