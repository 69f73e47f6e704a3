"""Extract the period's transactions, and the lifetime purchase summary, from the MySQL sales DB.

The rows travel as ready-made PostgreSQL COPY text: MariaDB/MySQL formats each row as one
tab-separated line (``CONCAT_WS``, NULL as ``\\N``, text escaped), mysqlclient hands those lines
over as raw bytes from an unbuffered result (``use_result``), and they are written to the staging
table with COPY in chunks. No Python object per value, and memory bounded by one chunk.
"""

from __future__ import annotations

import logging

from psycopg import sql

from include.customer_performance.config import Settings
from include.customer_performance.db import mysql, pg
from include.customer_performance.extract.contract import check_columns
from include.customer_performance.schemas import CUSTOMER_HISTORY, TRANSACTIONS, Dataset
from include.customer_performance.staging import Run, ensure_schema, recreate_table

log = logging.getLogger(__name__)

# Character codes rather than backslash literals, so the SQL means the same under any sql_mode
# (NO_BACKSLASH_ESCAPES included).
_BS, _TAB, _LF, _CR = (f"CHAR({n} USING utf8mb4)" for n in (92, 9, 10, 13))
_NULL = f"CONCAT({_BS}, 'N')"


def copy_text(expr: str, family: str) -> str:
    """A SQL expression giving ``expr`` as one PostgreSQL COPY text field."""
    if family == "text":
        for char, escaped in (
            (_BS, f"CONCAT({_BS}, {_BS})"),
            (_TAB, f"CONCAT({_BS}, 't')"),
            (_LF, f"CONCAT({_BS}, 'n')"),
            (_CR, f"CONCAT({_BS}, 'r')"),
        ):
            expr = f"REPLACE({expr}, {char}, {escaped})"
    return f"IFNULL({expr}, {_NULL})"


def copy_line(exprs: list[tuple[str, str]]) -> str:
    return f"CONCAT_WS({_TAB}, " + ", ".join(copy_text(e, f) for e, f in exprs) + ")"


def window_sql(conn) -> str:
    """The period's transactions; the ``order_date`` range uses the source's index."""
    line = copy_line([(f"`{c.name}`", c.family) for c in TRANSACTIONS.columns])
    ev = f"`{TRANSACTIONS.event_column}`"
    return f"SELECT {line} FROM `{TRANSACTIONS.source_table}` WHERE {ev} >= %s AND {ev} < %s"


def history_sql() -> str:
    """Lifetime purchase summary up to the period end, one aggregate inside the sales database.

    ``WITH ROLLUP`` adds, per customer, the all-currency row (currency NULL); a NULL currency at
    the source groups as '' so it cannot be mistaken for that row. The grand total is dropped.
    """
    cur = "COALESCE(`currency`, '')"
    line = copy_line(
        [
            ("`customer_id`", "integer"),
            ("grp_currency", "text"),
            ("first_purchase", "timestamp"),
            ("last_purchase", "timestamp"),
            ("purchases", "integer"),
            ("purchase_days", "integer"),
            ("monetary", "numeric"),
        ]
    )
    return (
        f"SELECT {line} FROM ("
        f" SELECT `customer_id`, {cur} AS grp_currency, MIN(`order_date`) AS first_purchase,"
        " MAX(`order_date`) AS last_purchase, COUNT(DISTINCT `transaction_id`) AS purchases,"
        " COUNT(DISTINCT DATE(`order_date`)) AS purchase_days, SUM(`amount`) AS monetary"
        f" FROM `{TRANSACTIONS.source_table}` WHERE `order_date` < %s AND `status` = 'completed'"
        f" GROUP BY `customer_id`, {cur} WITH ROLLUP"
        ") AS h WHERE `customer_id` IS NOT NULL"
    )


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


def stream_lines(src, query: str, params: tuple, dst_cur, target: sql.Composable, dataset: Dataset, chunk: int) -> int:
    """Run ``query`` unbuffered on MySQL and COPY its one-column line results into ``target``."""
    bound = query % tuple(src.literal(p).decode() for p in params)  # mysqlclient's own quoting
    copy_in = sql.SQL("COPY {} ({}) FROM STDIN").format(
        target, sql.SQL(", ").join(map(sql.Identifier, dataset.column_names))
    )
    src.query(bound)
    result = src.use_result()
    rows = 0
    with dst_cur.copy(copy_in) as copy:
        while batch := result.fetch_row(maxrows=chunk):
            copy.write(b"\n".join(r[0] for r in batch) + b"\n")
            rows += len(batch)
    return rows


def extract_sales_db(run: Run, settings: Settings) -> dict[str, dict]:
    """Stream the period's ``transactions`` and the lifetime summary into staging."""
    out = {}
    with mysql(settings.sales_db_conn_id) as src, pg(settings.analytics_db_conn_id) as dst:
        check_columns(
            _source_columns(src, TRANSACTIONS.source_table),
            TRANSACTIONS,
            f"{settings.sales_db_conn_id}: {TRANSACTIONS.source_table}",
        )
        src.set_character_set("utf8mb4")
        src.converter = {}  # raw bytes: the lines are already COPY text
        # The lifetime GROUP BY needs a large in-memory temporary table to stay fast.
        src.query("SET SESSION tmp_table_size = 536870912, max_heap_table_size = 536870912")
        with dst.cursor() as cur:
            ensure_schema(cur, run.schema)
            jobs = (
                (TRANSACTIONS, window_sql(src), (run.period.start, run.period.end)),
                (CUSTOMER_HISTORY, history_sql(), (run.period.end,)),
            )
            for dataset, query, params in jobs:
                target = run.table(dataset.name)
                recreate_table(cur, target, dataset)
                rows = stream_lines(src, query, params, cur, target, dataset, settings.copy_chunk_rows)
                log.info("staged %s rows of %s into %s", rows, dataset.name, run.table_name(dataset.name))
                out[dataset.name] = {"table": run.table_name(dataset.name), "rows": rows}
        dst.commit()
    return out
