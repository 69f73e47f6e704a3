"""Extract customers and their sessions from the PostgreSQL customer database, COPY to COPY."""

from __future__ import annotations

import logging

from psycopg import sql

from include.customer_performance.config import Settings
from include.customer_performance.db import pg, relay
from include.customer_performance.extract.contract import check_columns
from include.customer_performance.schemas import ACTIVITY, CUSTOMERS, Dataset
from include.customer_performance.staging import Run, analyze, ensure_schema, recreate_table

log = logging.getLogger(__name__)


def _source_columns(src, table: str) -> dict[str, str]:
    rows = src.execute(
        "SELECT column_name, data_type FROM information_schema.columns"
        " WHERE table_schema = current_schema() AND table_name = %s",
        (table,),
    ).fetchall()
    return dict(rows)


def _window_query(dataset: Dataset) -> sql.Composed:
    cols = sql.SQL(", ").join(map(sql.Identifier, dataset.column_names))
    ev = sql.Identifier(dataset.event_column)
    if dataset is CUSTOMERS:
        # Every customer known by the end of the period (new ones included); NULL dates are kept
        # for the filter and the quality gate to judge.
        where = sql.SQL("{ev} < %(period_end)s OR {ev} IS NULL").format(ev=ev)
    else:
        where = sql.SQL("{ev} >= %(period_start)s AND {ev} < %(period_end)s").format(ev=ev)
    return sql.SQL("COPY (SELECT {cols} FROM {tbl} WHERE {where}) TO STDOUT").format(
        cols=cols, tbl=sql.Identifier(dataset.source_table), where=where
    )


def extract_customer_db(run: Run, settings: Settings) -> dict[str, dict]:
    """Stream ``customers`` and ``customer_activity`` for the period into staging."""
    params = {"period_start": run.period.start, "period_end": run.period.end}
    out = {}
    with pg(settings.customer_db_conn_id) as src, pg(settings.analytics_db_conn_id) as dst:
        for dataset in (CUSTOMERS, ACTIVITY):
            check_columns(
                _source_columns(src, dataset.source_table),
                dataset,
                f"{settings.customer_db_conn_id}: {dataset.source_table}",
            )
        with dst.cursor() as cur:
            ensure_schema(cur, run.schema)
            dst.commit()  # releases the schema lock at once (see ensure_schema)
            for dataset in (CUSTOMERS, ACTIVITY):
                target = run.table(dataset.name)
                recreate_table(cur, target, dataset)
                copy_in = sql.SQL("COPY {} ({}) FROM STDIN").format(
                    target, sql.SQL(", ").join(map(sql.Identifier, dataset.column_names))
                )
                with src.cursor() as scur, scur.copy(_window_query(dataset), params) as out_copy:
                    with cur.copy(copy_in) as in_copy:
                        relay(out_copy, in_copy.write)
                rows = cur.rowcount  # the COPY command tag: rows written
                analyze(cur, target)
                log.info("staged %s rows of %s into %s", rows, dataset.source_table, run.table_name(dataset.name))
                out[dataset.name] = {"table": run.table_name(dataset.name), "rows": rows}
        dst.commit()
    return out
