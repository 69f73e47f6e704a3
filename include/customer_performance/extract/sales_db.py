"""Extract the period's transactions, and the lifetime purchase summary, from the MySQL sales DB.

Rows come from an unbuffered result (mysqlclient ``use_result``) as raw bytes, are joined into
PostgreSQL COPY text a chunk at a time, and written to staging with COPY: no Python object per
value beyond the driver's bytes, memory bounded by one chunk. The lifetime summary is staged
concurrently with the period's rows on a second connection pair, from the lifetime state kept in
the analytics database and the source's changes (``lifetime.py``).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

from psycopg import sql

from include.customer_performance.config import Settings
from include.customer_performance.db import mysql, pg
from include.customer_performance.extract import lifetime
from include.customer_performance.extract.contract import check_columns
from include.customer_performance.schemas import CUSTOMER_HISTORY, TRANSACTIONS, Dataset
from include.customer_performance.staging import Run, analyze, ensure_schema, recreate_table

log = logging.getLogger(__name__)

NULL = b"\\N"
# NULLs travel as a NUL byte (IFNULL(column, CHAR(0)) in the query): PostgreSQL text can never
# hold one, so unlike a literal "\\N" it cannot be confused with data.
NUL = b"\x00"
# A text value that itself holds a NUL byte travels as two (the query's CASE): PostgreSQL cannot
# store it, and a silent replacement would change the source's bytes, so the extract fails naming
# the column and the row (``copy_chunk``), whatever the rows around it hold.
HAS_NUL = b"\x00\x00"


class NulByteError(ValueError):
    """A source text value holds a NUL byte, which PostgreSQL text cannot store."""


def _escape(value: bytes) -> bytes:
    return value.replace(b"\\", b"\\\\").replace(b"\t", b"\\t").replace(b"\n", b"\\n").replace(b"\r", b"\\r")


def copy_chunk(rows: tuple[tuple[bytes, ...], ...], width: int, names: list[str] | None = None) -> bytes:
    """Rows of raw bytes (NULL as a NUL byte) as PostgreSQL COPY text.

    The fast path is C all the way: join, then prove nothing needed escaping (every tab and
    newline is ours, no backslash or carriage return anywhere) and turn NUL bytes into ``\\N``.
    Otherwise the chunk is rebuilt escaping each value, so a value holding a tab, a newline, a
    backslash or a literal ``\\N`` arrives unchanged.
    """
    chunk = b"\n".join(map(b"\t".join, rows)) + b"\n"
    if HAS_NUL in chunk:
        _raise_nul(rows, names)
    if (
        chunk.count(b"\t") == len(rows) * (width - 1)
        and chunk.count(b"\n") == len(rows)
        and b"\\" not in chunk
        and b"\r" not in chunk
    ):
        return chunk.replace(NUL, NULL)
    return b"".join(b"\t".join([NULL if v == NUL else _escape(v) for v in row]) + b"\n" for row in rows)


def _raise_nul(rows, names: list[str] | None) -> None:
    for row in rows:
        for i, value in enumerate(row):
            if value == HAS_NUL:
                column = names[i] if names else f"column {i + 1}"
                raise NulByteError(
                    f"a {column} value of the row with key {row[0][:64]!r} holds a NUL byte (0x00), which PostgreSQL"
                    " text cannot store; fix the row at the source (nothing is replaced silently), then clear this"
                    " task with downstream"
                )


def _select_list(columns: list[str], text: frozenset[str] = frozenset()) -> str:
    """Each column, NULL as a NUL byte; a text column's value holding a NUL byte as two."""
    return ", ".join(
        f"CASE WHEN {c} IS NULL THEN CHAR(0) WHEN LOCATE(CHAR(0), {c}) > 0 THEN CHAR(0, 0) ELSE {c} END"
        if c.strip("`") in text
        else f"IFNULL({c}, CHAR(0))"
        for c in columns
    )


def _text_columns(dataset: Dataset) -> frozenset[str]:
    return frozenset(c.name for c in dataset.columns if c.family == "text")


def window_sql() -> str:
    """The period's transactions; the ``order_date`` range uses the source's index."""
    cols = _select_list([f"`{c}`" for c in TRANSACTIONS.column_names], _text_columns(TRANSACTIONS))
    ev = f"`{TRANSACTIONS.event_column}`"
    return f"SELECT {cols} FROM `{TRANSACTIONS.source_table}` WHERE {ev} >= %s AND {ev} < %s"


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


def stream(
    src,
    query: str,
    params: tuple,
    dst,
    target: sql.Composable,
    dataset: Dataset,
    chunk: int,
    replace: bool = True,
    analyse: bool = True,
) -> int:
    """Replace ``target`` with the rows of ``query`` (run unbuffered on MySQL), or append them to
    it (``replace`` false: the table exists), then analyse it (unless ``analyse`` is false: other
    connections are still filling it); commits ``dst``."""
    src.set_character_set("utf8mb4")
    src.converter = {}  # raw bytes, formatted by MySQL itself; nothing decoded in Python
    # The lifetime GROUP BY needs a large in-memory temporary table to stay fast, and room for a
    # customer's list of purchase days (lifetime.summary_query; checked after: check_sale_days).
    src.query(
        "SET SESSION tmp_table_size = 536870912, max_heap_table_size = 536870912, group_concat_max_len = 16777216"
    )
    src.query(query % tuple(src.literal(p).decode() for p in params))  # mysqlclient's own quoting
    result = src.use_result()
    copy_in = sql.SQL("COPY {} ({}) FROM STDIN").format(
        target, sql.SQL(", ").join(map(sql.Identifier, dataset.column_names))
    )
    rows, width = 0, len(dataset.columns)
    with dst.cursor() as cur:
        if replace:
            recreate_table(cur, target, dataset)
        with cur.copy(copy_in) as copy:
            while batch := result.fetch_row(maxrows=chunk):
                try:
                    copy.write(copy_chunk(batch, width, dataset.column_names))
                except NulByteError as exc:
                    raise NulByteError(f"{dataset.source_table}: {exc}") from None
                rows += len(batch)
        if analyse:
            analyze(cur, target)
    dst.commit()
    return rows


@contextlib.contextmanager
def helper_pairs(settings: Settings) -> Iterator[list[tuple]]:
    """The (source, analytics) connection pairs the lifetime summary's other queries run on,
    beside the first (``lifetime_source_queries`` - 1 of them)."""
    with contextlib.ExitStack() as stack:
        yield [
            (
                stack.enter_context(mysql(settings.sales_db_conn_id)),
                stack.enter_context(pg(settings.analytics_db_conn_id)),
            )
            for _ in range(settings.lifetime_source_queries - 1)
        ]


def extract_sales_db(run: Run, settings: Settings) -> dict[str, dict]:
    """Stream the period's ``transactions`` into staging and, beside it on a second connection
    pair, stage the lifetime summary (``lifetime.stage``: from the state and the changes)."""
    # Connections are opened here, in the task's thread; the worker threads only use them.
    with (
        mysql(settings.sales_db_conn_id) as src1,
        mysql(settings.sales_db_conn_id) as src2,
        pg(settings.analytics_db_conn_id) as dst1,
        pg(settings.analytics_db_conn_id) as dst2,
        helper_pairs(settings) as helpers,
    ):
        check_columns(
            _source_columns(src1, TRANSACTIONS.source_table),
            TRANSACTIONS,
            f"{settings.sales_db_conn_id}: {TRANSACTIONS.source_table}",
        )
        with dst1.cursor() as cur:
            ensure_schema(cur, run.schema)
        dst1.commit()
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="sales_db") as pool:
            window = pool.submit(
                stream,
                src1,
                window_sql(),
                (run.period.start, run.period.end),
                dst1,
                run.table(TRANSACTIONS.name),
                TRANSACTIONS,
                settings.copy_chunk_rows,
            )
            history = pool.submit(lifetime.stage, src2, dst2, run, settings, helpers)
            rows, state = window.result(), history.result()
    log.info("staged %s rows of %s into %s", rows, TRANSACTIONS.name, run.table_name(TRANSACTIONS.name))
    log.info(
        "staged %s rows of %s into %s (%s)",
        state["rows"],
        CUSTOMER_HISTORY.name,
        run.table_name(CUSTOMER_HISTORY.name),
        state["method"],
    )
    return {
        TRANSACTIONS.name: {"table": run.table_name(TRANSACTIONS.name), "rows": rows},
        CUSTOMER_HISTORY.name: {"table": run.table_name(CUSTOMER_HISTORY.name), "rows": state["rows"], "state": state},
    }
