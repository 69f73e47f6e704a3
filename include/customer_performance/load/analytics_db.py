"""Publish the period's staged results into the partitioned tables of the analytics schema.

The schema is migrated first (versioned DDL, ``migrations/``). The period's data then replaces the
month's partition (a freshly built partition swapped in) in one transaction, under an advisory lock
per month, so readers see the old month or the new one, never a mix, and two runs for the same
month are serialised. Quality results and the run record replace only the rows of the same period
(the same month-to-date window), which keeps the history of the month's daily runs while a rerun
or a second run of the same period never adds rows. Partitions older than the retention are
dropped in the same transaction.
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass
from datetime import date

from psycopg import sql

from include.customer_performance.migrations import migrate
from include.customer_performance.period import add_months
from include.customer_performance.staging import Run

log = logging.getLogger(__name__)

# destination table -> staged stage it comes from
PARTITION_TABLES = {
    "customer_performance": "customer_metrics",
    "regional_summary": "regional_summary",
    "performance_trends": "performance_trends",
}
# destination table -> the staged tables it comes from (the quality report: validate's and aggregate's)
RUN_TABLES = {
    "data_quality_results": ("dq_results", "dq_aggregates"),
    "alerts": ("alerts",),
    "model_backtest": ("backtest",),
    "period_comparison": ("period_comparison",),
    "engagement_heatmap": ("engagement_heatmap",),
    "interaction_summary": ("interaction_summary",),
    "engagement_correlations": ("engagement_correlations",),
}
# every staged table the load reads (checked before anything is replaced; lineage's inputs)
STAGED_INPUTS = ("kpis", "scorecard", *PARTITION_TABLES.values(), *(t for ts in RUN_TABLES.values() for t in ts))


def ensure_partition(cur, schema: str, table: str, run: Run) -> sql.Composed:
    """The month's partition of ``table``, created when missing. An existing one is not created
    again: CREATE TABLE IF NOT EXISTS ... PARTITION OF takes the parent's ACCESS EXCLUSIVE lock
    even when the partition exists, which would queue every reader of the parent behind it."""
    month = run.period.report_month
    part = sql.Identifier(schema, f"{table}_{month:%Y_%m}")
    cur.execute("SELECT to_regclass(%s)", (part.as_string(cur),))
    if cur.fetchone()[0] is not None:
        return part
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


def _insert_from_stage(cur, schema: str, table: str, run: Run, stage: str, into: sql.Composable | None = None) -> int:
    """Insert the staged rows (into ``table``, or ``into``: a table of the same shape). A column
    the model produces that the destination lacks is an error naming it: destination columns
    change only through a migration."""
    staged = _columns(cur, run.schema, run.table_name(stage))
    missing = [name for name in staged if name not in _columns(cur, schema, table)]
    if missing:
        raise RuntimeError(
            f"{run.schema}.{run.table_name(stage)} has column(s) {', '.join(missing)} that {schema}.{table} lacks:"
            " add them in a new migration under include/customer_performance/migrations/"
        )
    ident = sql.SQL(", ").join(map(sql.Identifier, staged))
    cur.execute(
        sql.SQL(
            "INSERT INTO {dest} (report_month, period_start, period_end, run_id, {cols})"
            " SELECT %(report_month)s, %(period_start)s, %(period_end)s, %(run_id)s, {cols} FROM {src}"
        ).format(dest=into or sql.Identifier(schema, table), cols=ident, src=run.table(stage)),
        {**run.period.as_params(), "run_id": run.run_id},
    )
    return cur.rowcount


def _build_partition(cur, schema: str, table: str, run: Run, stage: str) -> tuple[int, list[str]]:
    """The month's fresh partition of ``table``, ``<table>_<YYYY_MM>_next``: filled without
    indexes, then indexed in one pass per index (as the parent's partitioned indexes define them).
    Readers of the parent are not blocked. Returns its rows and its index names (without ``_next``)."""
    month = run.period.report_month
    name = f"{table}_{month:%Y_%m}"
    fresh = sql.Identifier(schema, f"{name}_next")
    parent = sql.Identifier(schema, table)
    cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(fresh))
    cur.execute(sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)").format(fresh, parent))
    # the partition bound as a constraint: ATTACH then need not scan the rows to prove it
    cur.execute(
        sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} CHECK (report_month IS NOT NULL AND report_month = {})").format(
            fresh, sql.Identifier(f"{name}_bound"), sql.Literal(month)
        )
    )
    rows = _insert_from_stage(cur, schema, table, run, stage, into=fresh)
    cur.execute(
        "SELECT pg_get_indexdef(i.indexrelid) FROM pg_index AS i WHERE i.indrelid = %s::regclass ORDER BY 1",
        (parent.as_string(cur),),
    )
    indexes = []
    for (definition,) in cur.fetchall():
        # CREATE [UNIQUE] INDEX name ON ONLY schema.table USING btree (...) -> the same on the new
        # partition, named after the parent's index and the month
        m = re.fullmatch(r"CREATE (UNIQUE )?INDEX (\S+) ON ONLY \S+ (USING .+)", definition)
        if m is None:
            raise RuntimeError(f"{schema}.{table}: cannot read the index definition {definition!r}")
        index = f"{m[2]}_{month:%Y_%m}"
        indexes.append(index)
        cur.execute(
            sql.SQL("CREATE " + (m[1] or "") + "INDEX {} ON {} " + m[3]).format(sql.Identifier(f"{index}_next"), fresh)
        )
    # statistics before it is read: the next run's back-test and churn model join published months,
    # and a partition never analysed (autovacuum comes later) is taken for a few hundred rows, which
    # at 100,000 customers turns those joins into nested loops of minutes
    cur.execute(sql.SQL("ANALYZE {}").format(fresh))
    return rows, indexes


def _swap_partition(cur, schema: str, table: str, run: Run, indexes: list[str]) -> None:
    """The fresh partition attached in place of the month's old one, which is dropped with its rows
    (no DELETE, no dead rows left behind). Takes the parent's ACCESS EXCLUSIVE lock: readers of the
    parent wait for the commit from here on, and see the old month until then."""
    month = run.period.report_month
    name = f"{table}_{month:%Y_%m}"
    fresh = sql.Identifier(schema, f"{name}_next")
    parent = sql.Identifier(schema, table)
    cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(schema, name)))
    cur.execute(
        sql.SQL("ALTER TABLE {} ATTACH PARTITION {} FOR VALUES IN ({})").format(parent, fresh, sql.Literal(month))
    )
    cur.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(fresh, sql.Identifier(f"{name}_bound")))
    cur.execute(sql.SQL("ALTER TABLE {} RENAME TO {}").format(fresh, sql.Identifier(name)))
    for index in indexes:
        cur.execute(
            sql.SQL("ALTER INDEX {} RENAME TO {}").format(
                sql.Identifier(schema, f"{index}_next"), sql.Identifier(index)
            )
        )


class LockBusyError(RuntimeError):
    """The load could not take the locks it needs without making readers wait too long."""


@dataclass(frozen=True)
class LockPolicy:
    """How the load takes the table locks readers would queue behind: each statement waits at most
    ``timeout`` seconds (PostgreSQL ``lock_timeout``); then its step is rolled back to a savepoint,
    the readers go on, and the step is tried again after a pause, ``attempts`` times in all."""

    timeout: float = 2.0
    attempts: int = 30
    pause: float = 1.0
    max_pause: float = 10.0


def _with_lock_retry(cur, policy: LockPolicy, what: str, step, *args):
    """Run ``step(*args)`` in a savepoint under ``policy``: a lock wait past the timeout rolls the
    step back (releasing what it locked) and retries it, so readers are never blocked longer than
    the timeout by a load waiting for its turn."""
    from psycopg import errors

    for attempt in range(1, policy.attempts + 1):
        cur.execute("SAVEPOINT cp_lock_step")
        try:
            result = step(*args)
        except errors.LockNotAvailable:
            cur.execute("ROLLBACK TO SAVEPOINT cp_lock_step")
            if attempt == policy.attempts:
                raise LockBusyError(
                    f"{what}: the tables stayed locked by other sessions (long readers, another load) through"
                    f" {policy.attempts} waits of {policy.timeout:g} s; the old month is still published."
                    " Airflow retries the task; a reader holding a lock for minutes shows in pg_stat_activity."
                ) from None
            pause = min(policy.pause * 2 ** (attempt - 1), policy.max_pause)
            log.warning(
                "%s: a lock was busy past %s s (attempt %s/%s); again in %.1f s",
                what,
                policy.timeout,
                attempt,
                policy.attempts,
                pause,
            )
            time.sleep(pause)
            continue
        cur.execute("RELEASE SAVEPOINT cp_lock_step")
        return result
    raise AssertionError("unreachable")


def drop_expired_partitions(cur, schema: str, run: Run, keep_months: int) -> list[str]:
    """Drop the monthly partitions more than ``keep_months`` before the newest month loaded (this
    run's month included); the run's own month is never dropped, even when a backfill loads one
    that old. Returns the partitions dropped."""
    cur.execute(
        sql.SQL("SELECT greatest(max(report_month), %s) FROM {}").format(sql.Identifier(schema, "pipeline_runs")),
        (run.period.report_month,),
    )
    cutoff = add_months(cur.fetchone()[0], -keep_months)
    dropped = []
    for table in (*PARTITION_TABLES, *RUN_TABLES, "pipeline_runs"):
        cur.execute(
            "SELECT c.relname FROM pg_inherits AS i JOIN pg_class AS c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = %s::regclass ORDER BY 1",
            (sql.Identifier(schema, table).as_string(cur),),
        )
        for (name,) in cur.fetchall():
            month = _partition_month(name, table)
            if month is not None and month < cutoff and month != run.period.report_month:
                cur.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(schema, name)))
                dropped.append(name)
    if dropped:
        log.info("retention (%s months before %s): dropped %s", keep_months, cutoff, ", ".join(dropped))
    return dropped


def _partition_month(name: str, table: str) -> date | None:
    """The month of a partition named ``<table>_YYYY_MM``; None for any other name."""
    m = re.fullmatch(re.escape(table) + r"_(\d{4})_(\d{2})", name)
    return date(int(m[1]), int(m[2]), 1) if m else None


def publish(cur, run: Run, schema: str, retention_months: int = 24, locks: LockPolicy = LockPolicy()) -> dict[str, int]:
    """Replace the period's rows in every analytics table and drop the partitions past the
    retention; the caller records the run (``record_run``) and commits, once. The fresh partitions
    are built first (readers unaffected), then swapped in together at the end under ``locks``."""
    migrate(cur, schema)
    cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"customer_performance:{run.period.report_month}",))
    # from here on no lock is waited for longer than the timeout (the month's lock above may wait)
    cur.execute("SELECT set_config('lock_timeout', %s, true)", (f"{max(1, round(locks.timeout * 1000))}ms",))
    loaded, built = {}, {}
    for table, stage in PARTITION_TABLES.items():
        loaded[table], built[table] = _with_lock_retry(
            cur, locks, f"building {table} for {run.period}", _build_partition, cur, schema, table, run, stage
        )

    def swap() -> None:
        # every lock of the swap first, in one statement: nothing below waits, so readers queue
        # behind the swap only while it takes them (at most the timeout per table) and runs
        parents = sql.SQL(", ").join(
            sql.Identifier(schema, t) for t in (*PARTITION_TABLES, *RUN_TABLES, "pipeline_runs")
        )
        cur.execute(sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(parents))
        for table, stages in RUN_TABLES.items():
            part = ensure_partition(cur, schema, table, run)
            cur.execute(sql.SQL("DELETE FROM {} WHERE period_end = %s").format(part), (run.period.end,))
            loaded[table] = sum(_insert_from_stage(cur, schema, table, run, stage) for stage in stages)
        for table, indexes in built.items():
            _swap_partition(cur, schema, table, run, indexes)
        drop_expired_partitions(cur, schema, run, retention_months)
        ensure_partition(cur, schema, "pipeline_runs", run)

    _with_lock_retry(cur, locks, f"swapping {run.period} in", swap)
    log.info("published %s for %s: %s", schema, run.period, loaded)
    return loaded


def record_run(cur, schema: str, run: Run, fields: dict, delivered: dict) -> None:
    """Add to the period's record in ``pipeline_runs`` (one row per period): ``fields`` replace
    their columns, ``tasks`` and ``delivered`` are merged by key, so the load and each destination
    task (running in parallel, each retried alone) add their own part, stamped with the run."""
    ensure_partition(cur, schema, "pipeline_runs", run)
    stamp = {"run_id": run.run_id}
    delivered = {k: {**v, **stamp} for k, v in delivered.items()}
    columns = ["row_counts", "quality", "kpis", "churn_model"]
    values = {c: json.dumps(fields[c], default=str) for c in columns if c in fields}
    cur.execute(
        sql.SQL(
            "INSERT INTO {t} AS r (report_month, period_start, period_end, run_id, {cols} tasks, delivered)"
            " VALUES (%(report_month)s, %(period_start)s, %(period_end)s, %(run_id)s, {vals} %(tasks)s, %(delivered)s)"
            " ON CONFLICT (report_month, period_end) DO UPDATE SET {sets}"
            " tasks = r.tasks || EXCLUDED.tasks, delivered = r.delivered || EXCLUDED.delivered"
        ).format(
            t=sql.Identifier(schema, "pipeline_runs"),
            cols=sql.SQL("").join(sql.SQL("{}, ").format(sql.Identifier(c)) for c in values),
            vals=sql.SQL("").join(sql.SQL("{}, ").format(sql.Placeholder(c)) for c in values),
            sets=sql.SQL("").join(
                sql.SQL("{c} = EXCLUDED.{c}, ").format(c=sql.Identifier(c))
                # the load owns the record's identity; a destination only adds its part
                for c in ((*values, "run_id", "period_start", "loaded_at") if values else ())
            ),
        ),
        {
            **run.period.as_params(),
            **values,
            "run_id": run.run_id,
            "tasks": json.dumps(fields.get("tasks", {}), default=str),
            "delivered": json.dumps(delivered, default=str),
        },
    )


def record_delivery(conn, schema: str, run: Run, task_id: str, task: dict, delivered: dict) -> None:
    """A destination task's part of the run record, in its own short transaction (under the
    month's lock, so it never interleaves with a load)."""
    with conn.cursor() as cur:
        migrate(cur, schema)
        cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"customer_performance:{run.period.report_month}",))
        record_run(cur, schema, run, {"tasks": {task_id: task}}, delivered)
    conn.commit()


def _json_ready(row: dict) -> dict:
    """A row with its numerics as floats."""
    from decimal import Decimal

    return {k: float(v) if isinstance(v, Decimal) else v for k, v in row.items()}


def read_kpis(conn, run: Run) -> dict:
    """The run's KPI row, JSON-ready (numerics as floats)."""
    from psycopg.rows import dict_row

    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(sql.SQL("SELECT * FROM {}").format(run.table("kpis")))
        return _json_ready(cur.fetchone() or {})


def read_backtest(conn, run: Run) -> list[dict]:
    """The run's back-test summary (one row per horizon scored), JSON-ready."""
    from psycopg.rows import dict_row

    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            sql.SQL(
                "SELECT o.predicted_month, o.horizon_months, o.customers, o.churned, o.observed_churn_rate, o.auc,"
                " o.expected_purchases, o.actual_purchases, o.expected_revenue, o.actual_revenue, o.churn_method,"
                " r.lift_over_green AS red_over_green"
                " FROM {t} AS o LEFT JOIN {t} AS r ON r.horizon_months = o.horizon_months"
                " AND r.measure = 'health_band' AND r.bucket = 'red'"
                " WHERE o.measure = 'overall' ORDER BY o.horizon_months"
            ).format(t=run.table("backtest"))
        )
        return [_json_ready(row) for row in cur.fetchall()]


def _rows(result: dict, key: str = "rows") -> int | None:
    """The rows of a task result: its own ``key`` or the sum over its datasets'; None without one."""
    if not result:
        return None
    if isinstance(result.get(key), int):
        return result[key]
    return sum(v.get(key, 0) for v in result.values() if isinstance(v, dict))


def task_summary(results: dict[str, dict | None]) -> dict[str, dict]:
    """Rows in, rows out and seconds of each task up to ``aggregate``, from their XCom results (a
    task marked successful without running has none: its figures are null)."""
    r = {t: results.get(t) or {} for t in results}
    filtered = _rows(r["filter_period"], "rows_out")
    customers = r["calculate"].get("rows")
    quarantined = r["validate"].get("quarantined_rows")
    out = {
        t: {"rows_in": _rows(r[t]), "rows_out": _rows(r[t])}
        for t in ("extract_customer_db", "extract_crm_api", "extract_sales_db")
    }
    out["filter_period"] = {"rows_in": _rows(r["filter_period"], "rows_in"), "rows_out": filtered}
    out["calculate"] = {"rows_in": filtered, "rows_out": customers}
    out["validate"] = {
        "rows_in": filtered,
        "rows_out": filtered - quarantined if filtered is not None and quarantined is not None else None,
    }
    out["aggregate"] = {"rows_in": customers, "rows_out": _rows(r["aggregate"])}
    for task, summary in out.items():
        summary["seconds"] = r[task].get("seconds")
    return out
