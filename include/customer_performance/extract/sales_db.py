"""Extract the period's transactions from the MySQL sales database into staging.

Rows stream through an unbuffered (server-side) cursor and are written with COPY in chunks, so
memory stays bounded whatever the month's size.
"""

from __future__ import annotations

import logging

import MySQLdb.cursors
from psycopg import sql

from include.customer_performance.config import Settings
from include.customer_performance.db import mysql, pg
from include.customer_performance.extract.contract import check_columns
from include.customer_performance.schemas import TRANSACTIONS
from include.customer_performance.staging import Run, ensure_schema, recreate_table

log = logging.getLogger(__name__)


def _source_columns(conn, table: str) -> dict[str, str]:
    cur = conn.cursor()
    cur.execute(
        "SELECT column_name, data_type FROM information_schema.columns"
        " WHERE table_schema = DATABASE() AND table_name = %s",
        (table,),
    )
    rows = cur.fetchall()
    cur.close()
    return {name: dtype for name, dtype in rows}


def _window_sql() -> str:
    cols = ", ".join(f"`{c}`" for c in TRANSACTIONS.column_names)
    ev = f"`{TRANSACTIONS.event_column}`"
    return f"SELECT {cols} FROM `{TRANSACTIONS.source_table}` WHERE {ev} >= %s AND {ev} < %s"


def extract_sales_db(run: Run, settings: Settings) -> dict[str, dict]:
    """Stream the period's ``transactions`` into staging."""
    target = run.table(TRANSACTIONS.name)
    with mysql(settings.sales_db_conn_id) as src, pg(settings.analytics_db_conn_id) as dst:
        check_columns(
            _source_columns(src, TRANSACTIONS.source_table),
            TRANSACTIONS,
            f"{settings.sales_db_conn_id}: {TRANSACTIONS.source_table}",
        )
        with dst.cursor() as cur:
            ensure_schema(cur, run.schema)
            recreate_table(cur, target, TRANSACTIONS)
            copy_in = sql.SQL("COPY {} ({}) FROM STDIN").format(
                target, sql.SQL(", ").join(map(sql.Identifier, TRANSACTIONS.column_names))
            )
            scur = src.cursor(MySQLdb.cursors.SSCursor)
            try:
                scur.execute(_window_sql(), (run.period.start, run.period.end))
                rows = 0
                with cur.copy(copy_in) as copy:
                    while chunk := scur.fetchmany(settings.copy_chunk_rows):
                        for row in chunk:
                            copy.write_row(row)
                        rows += len(chunk)
            finally:
                scur.close()
        dst.commit()
    log.info("staged %s transactions into %s", rows, run.table_name(TRANSACTIONS.name))
    return {TRANSACTIONS.name: {"table": run.table_name(TRANSACTIONS.name), "rows": rows}}
