"""Staged tables: per-run names in the analytics database and the helpers that (re)create them.

Every stage writes its output table from scratch inside one transaction (DROP + CREATE + fill),
so a rerun replaces what the previous try wrote and readers never see half a table.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime

from psycopg import sql

from include.customer_performance.period import ReportPeriod, period_for
from include.customer_performance.schemas import Dataset
from include.customer_performance.stages import declared


@dataclass(frozen=True)
class Run:
    """What every task needs to know about its DAG run: the period and its staged-table names."""

    period: ReportPeriod
    key: str  # short, identifier-safe, unique per DAG run
    run_id: str
    schema: str
    # the run's param: a source with no rows in the period is published as empty, not refused
    allow_empty_sources: bool = False
    as_of: date | None = None  # the day of the run's logical date (or run_after): what it can know
    # the run's param: a partial month replaces the month published closed (publishing.py)
    replace_closed_month: bool = False

    @property
    def month_closed(self) -> bool:
        """The period is a whole month that has ended by the run's date: what the back-test scores
        (a manual run of the current month before its end is not)."""
        p = self.period
        whole = p.is_complete_month and p.start == p.month_start
        return whole and (self.as_of is None or p.end <= self.as_of)

    def table(self, stage: str) -> sql.Composed:
        return sql.Identifier(self.schema, self.table_name(stage))

    def table_name(self, stage: str) -> str:
        declared(stage)  # every staged table is declared once, in stages.py
        return f"{stage}_{self.key}"


def run_key(logical_date: datetime | None, run_id: str) -> str:
    """A run's table-name suffix, unique per DAG run: its logical date (readable in the staging
    schema) and a hash of the run id (two runs may share a logical date: they never share staged
    tables); a run without a logical date has the hash alone."""
    digest = hashlib.sha1(run_id.encode()).hexdigest()
    if logical_date is not None:
        return f"{logical_date:%Y%m%dt%H%M%S}_{digest[:6]}"
    return "r" + digest[:12]


def make_run(
    logical_date: datetime | None,
    run_id: str,
    report_month: str | None,
    schema: str,
    run_after: datetime | None = None,
    allow_empty_sources: bool = False,
    replace_closed_month: bool = False,
) -> Run:
    anchor = logical_date or run_after
    if anchor is None and not report_month:
        raise ValueError(f"run {run_id} has neither a logical date nor a report_month param")
    return Run(
        period_for(anchor, report_month),
        run_key(logical_date, run_id),
        run_id,
        schema,
        bool(allow_empty_sources),
        anchor.date() if anchor is not None else None,
        bool(replace_closed_month),
    )


class MissingStageError(RuntimeError):
    """A destination task's inputs are gone (the run's staged tables): nothing was delivered."""


def check_inputs(cur, run: Run, stages: tuple[str, ...]) -> None:
    """Refuse to deliver a run whose staged tables ``stages`` are gone (dropped after
    ``staging_retention_days``, or by hand) or, when they include ``kpis``, whose KPI table does not
    hold exactly one row: each destination task calls this before touching its destination."""
    cur.execute(
        "SELECT name FROM unnest(%s::text[]) AS name WHERE to_regclass(%s || '.' || quote_ident(name)) IS NULL",
        ([run.table_name(stage) for stage in stages], sql.Identifier(run.schema).as_string(cur)),
    )
    missing = [name for (name,) in cur.fetchall()]
    if missing:
        raise MissingStageError(
            f"the staged table(s) {', '.join(missing)} of run {run.run_id} ({run.period}) are gone (staged tables"
            " are kept for staging_retention_days); nothing was delivered. Clear the run from extract tasks"
            " (with downstream) to rebuild them, or trigger a new run for the month."
        )
    if "kpis" in stages:
        cur.execute(sql.SQL("SELECT count(*) FROM {}").format(run.table("kpis")))
        n = cur.fetchone()[0]
        if n != 1:
            raise MissingStageError(f"{run.table_name('kpis')} holds {n} rows, not 1; nothing was delivered")


def ensure_schema(cur, schema: str) -> None:
    """The staging schema and its run registry. The three extracts start at once: ``IF NOT EXISTS``
    alone races (both see no schema, one fails on the catalog's unique key), so they take turns."""
    cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"customer_performance:staging:{schema}",))
    cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
    cur.execute(
        sql.SQL("CREATE TABLE IF NOT EXISTS {} (run_key text PRIMARY KEY, run_id text, created_at timestamptz)").format(
            sql.Identifier(schema, "_runs")
        )
    )


def register_run(cur, run: Run) -> None:
    """Record when a run first staged something, for :func:`drop_expired`."""
    ensure_schema(cur, run.schema)
    cur.execute(
        sql.SQL("INSERT INTO {} VALUES (%s, %s, now()) ON CONFLICT (run_key) DO NOTHING").format(
            sql.Identifier(run.schema, "_runs")
        ),
        (run.key, run.run_id),
    )


def drop_expired(cur, run: Run, retention_days: int) -> list[str]:
    """Drop the staged tables of other runs first registered more than ``retention_days`` ago.

    Staged tables outlive their run so that any task of a recent run can be cleared and rerun;
    past the retention they are only clutter.
    """
    cur.execute(
        sql.SQL("SELECT run_key FROM {} WHERE created_at < now() - make_interval(days => %s) AND run_key <> %s").format(
            sql.Identifier(run.schema, "_runs")
        ),
        (retention_days, run.key),
    )
    dropped = []
    for (key,) in cur.fetchall():
        cur.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = %s AND right(tablename, %s) = %s",
            (run.schema, len(key) + 1, f"_{key}"),
        )
        for (table,) in cur.fetchall():
            cur.execute(sql.SQL("DROP TABLE IF EXISTS {} CASCADE").format(sql.Identifier(run.schema, table)))
            dropped.append(table)
        cur.execute(sql.SQL("DELETE FROM {} WHERE run_key = %s").format(sql.Identifier(run.schema, "_runs")), (key,))
    return dropped


def recreate_table(cur, table: sql.Composable, dataset: Dataset) -> None:
    """An empty UNLOGGED staged table with the dataset's columns: the existing one truncated when
    it has exactly those columns (so the views of later stages on it stay valid: an extract
    cleared alone leaves its run consistent), else created afresh."""
    cur.execute(
        "SELECT array_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod) ORDER BY a.attnum)"
        " FROM pg_attribute AS a WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped",
        (table.as_string(cur),),
    )
    existing = cur.fetchone()[0]
    cur.execute(
        "SELECT array_agg(name || ' ' || format_type(to_regtype(type), NULL) ORDER BY i)"
        " FROM unnest(%s::text[], %s::text[]) WITH ORDINALITY AS c(name, type, i)",
        ([c.name for c in dataset.columns], [c.pg_type for c in dataset.columns]),
    )
    if existing is not None and existing == cur.fetchone()[0]:
        cur.execute(sql.SQL("TRUNCATE {}").format(table))
        return
    cols = sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(c.name), sql.SQL(c.pg_type)) for c in dataset.columns
    )
    # CASCADE: views of later stages on an older shape go too; their tasks recreate them
    cur.execute(sql.SQL("DROP TABLE IF EXISTS {} CASCADE").format(table))
    cur.execute(sql.SQL("CREATE UNLOGGED TABLE {} ({})").format(table, cols))


def replace_table_as(cur, table: sql.Composable, select: sql.Composable, params: dict | None = None) -> int:
    """``DROP`` + ``CREATE UNLOGGED TABLE ... AS <select>`` + ``ANALYZE``; returns the row count."""
    cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(table))
    cur.execute(sql.SQL("CREATE UNLOGGED TABLE {} AS ").format(table) + select, params)
    rows = cur.rowcount
    analyze(cur, table)
    return rows


def analyze(cur, table: sql.Composable) -> None:
    """Fresh statistics for a just-written staged table: without them the planner assumes a
    tiny table and picks plans that spill to disk at a million rows."""
    cur.execute(sql.SQL("ANALYZE {}").format(table))


def drop_relation(cur, name: sql.Composable) -> None:
    """Drop a staged table or view, whichever ``name`` is (``DROP VIEW`` refuses tables), with the
    views of later stages on it (each stage recreates the views it reads: calculate and validate
    the ``vld_`` views)."""
    cur.execute(
        sql.SQL("SELECT relkind FROM pg_class WHERE oid = to_regclass({})").format(sql.Literal(name.as_string(cur)))
    )
    row = cur.fetchone()
    if row:
        kind = "VIEW" if row[0] == "v" else "TABLE"
        cur.execute(sql.SQL("DROP {} {} CASCADE").format(sql.SQL(kind), name))
