"""`make bench`: the whole DAG at scale, against the I/O floor of this machine and a naive baseline.

    python bench/run.py --customers 1000000        # about 10M transactions in the month

In one run it
1. generates N customers with about 8 transactions, 4.5 sessions and 2 CRM interactions each in
   July 2025, plus ``--history-months`` (24) of purchase history, reusing the sources when N, the
   seed and the history match;
2. for the sales database with the whole history and for a copy holding one month of it (June),
   builds the lifetime state at 1 July (`lifetime rebuild`: what the first run, or June's
   month-close run, leaves behind), then runs July as a nightly run: the full DAG (`airflow dags
   test`, tasks one after another), each task's wall time from Airflow's metadata, the worker's peak
   RSS from the kernel (getrusage), and the rows the sales database read meanwhile (its
   Handler_read_* counters);
3. runs July once more with the lifetime summary computed in full (``lifetime_mode=full``: one
   GROUP BY over the whole history, as before the state) and checks that both published the same customer rows,
   EXCEPT ALL both ways (``--skip-full``: not);
4. with ``--scheduler``, runs July under a scheduler with LocalExecutor, as production does;
5. measures the floor: the period's source rows moved into PostgreSQL by the plainest fast route
   (`mariadb --quick -B | psql COPY`, `psql COPY TO | psql COPY FROM`, `sqlite3 | psql COPY`),
   the rows changed since the state's watermark (none here: the history is not touched), and one
   GROUP BY of the period's sales per customer and currency at the source, plus a plain GROUP BY of
   the transactions per customer in PostgreSQL; and the old floor's lifetime GROUP BY over the
   whole history, for comparison;
6. measures the naive baseline: pandas `read_sql` + `to_sql` of the month's transactions;
7. prints every figure and the ratios pipeline/floor, 24 months/1 month and naive/pipeline;
   beside each task and each route of the floor, the machine's CPU seconds meanwhile (bench/cpu.py)
   and so the cores it kept busy, and what the DAG's CPU time alone allows on this machine's cores;
8. with ``--repeat N``, runs the DAG and the floor N times in turn and prints the median ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.cpu import CpuMeter  # noqa: E402
from dev.stack import MYSQL, PG, Stack, checkout_name, pg_dsn  # noqa: E402
from include.customer_performance.schemas import (  # noqa: E402
    ACTIVITY,
    CUSTOMER_HISTORY,
    CUSTOMERS,
    INTERACTIONS,
    TRANSACTIONS,
)

LOGICAL_DATE = "2025-08-01T02:00:00+00:00"
START, END = "2025-07-01", "2025-08-01"
RSS = [sys.executable, str(ROOT / "bench" / "peak_rss.py")]
FLOOR_SCHEMA = "bench_floor"


def sh(cmd: str, cpu: dict | None = None, name: str = "") -> float:
    """Run a shell pipeline, fail loudly, return its wall time; with a running ``METER``, put the
    machine's CPU seconds meanwhile in ``cpu[name]``."""
    t0, w0 = time.monotonic(), time.time()
    subprocess.run(["bash", "-o", "pipefail", "-c", cmd], check=True)
    if cpu is not None and METER is not None:
        cpu[name] = METER.busy(w0, time.time())
    return time.monotonic() - t0


METER: CpuMeter | None = None  # the machine's CPU time, sampled while the bench runs (bench/cpu.py)


def psql(db: str, sql: str) -> str:
    return f'psql -h {PG["host"]} -p {PG["port"]} -U {PG["user"]} -d {db} -v ON_ERROR_STOP=1 -q -c "{sql}"'


def floor_create(stack: Stack) -> None:
    ddl = [f"DROP SCHEMA IF EXISTS {FLOOR_SCHEMA} CASCADE", f"CREATE SCHEMA {FLOOR_SCHEMA}"]
    for ds in (CUSTOMERS, ACTIVITY, TRANSACTIONS, INTERACTIONS, CUSTOMER_HISTORY):
        cols = ", ".join(f"{c.name} {c.pg_type}" for c in ds.columns)
        ddl.append(f"CREATE UNLOGGED TABLE {FLOOR_SCHEMA}.{ds.name} ({cols})")
    import psycopg

    with psycopg.connect(pg_dsn(stack.analytics_db), autocommit=True) as conn:
        for stmt in ddl:
            conn.execute(stmt)


def measure_floor(stack: Stack, old: bool = True) -> tuple[dict[str, float], float | None, dict[str, float]]:
    """The plain routes, one after another (as the DAG test runs its tasks); and, apart (``old``),
    the old floor's lifetime GROUP BY over the whole history. Also the machine's CPU seconds per
    route (with the METER running)."""
    floor_create(stack)
    out: dict[str, float] = {}  # each route's wall time
    cpu: dict[str, float] = {}  # and the machine's CPU time meanwhile

    def route(name: str, cmd: str) -> None:
        out[name] = sh(cmd, cpu, name)

    mysql = f"mariadb --quick -B -N -h {MYSQL['host']} -P {MYSQL['port']} -u {MYSQL['user']} {stack.sales_db}"

    def window(col: str) -> str:
        return f"{col} >= '{START}' AND {col} < '{END}'"

    def into(table: str, null: str = r"\N") -> str:
        # mariadb -B prints NULL as the word NULL and escapes tab, newline and backslash like COPY
        return psql(stack.analytics_db, f"COPY {FLOOR_SCHEMA}.{table} FROM STDIN (NULL '{null}')")

    def from_pg(ds, where: str) -> str:
        query = f"SELECT {', '.join(ds.column_names)} FROM {ds.source_table} WHERE {where}"
        return psql(stack.customer_db, f"COPY ({query}) TO STDOUT")

    transactions = f"SELECT {', '.join(TRANSACTIONS.column_names)} FROM transactions WHERE {window('order_date')}"

    def summary(where: str) -> str:
        return (
            "SELECT customer_id, NULLIF(c, ''), first_purchase, last_purchase, purchases, purchase_days, monetary"
            " FROM (SELECT customer_id, CAST(COALESCE(currency, '') AS BINARY) AS c,"
            " MIN(order_date) AS first_purchase,"
            " MAX(order_date) AS last_purchase, COUNT(DISTINCT transaction_id) AS purchases,"
            " COUNT(DISTINCT DATE(order_date)) AS purchase_days, SUM(amount) AS monetary FROM transactions"
            f" WHERE {where} AND status = 'completed' GROUP BY customer_id, c"
            " WITH ROLLUP) h WHERE customer_id IS NOT NULL"
        )

    big_tmp = "SET SESSION tmp_table_size = 536870912, max_heap_table_size = 536870912"
    interactions = f"SELECT {', '.join(INTERACTIONS.column_names)} FROM interactions WHERE {window('interaction_date')}"
    route("customers", f"{from_pg(CUSTOMERS, f'registration_date < {END!r}')} | {into('customers')}")
    route(
        "customer_activity",
        f"{from_pg(ACTIVITY, window('session_start'))} | {into('customer_activity')}",
    )
    route("transactions", f'{mysql} -e "{transactions}" | {into("transactions", "NULL")}')
    # the period's sales per customer and currency, summarised at the source (with the same
    # large in-memory temporary table the pipeline's session asks for)
    route(
        "period_summary",
        f'{mysql} -e "{big_tmp}; {summary(window("order_date"))}" | {into("customer_history", "NULL")}',
    )
    # the rows changed since the lifetime state's watermark (the newest updated_at when 1 July's
    # snapshot was built) less the look-back, before July: read through the updated_at index
    route(
        "changed_rows",
        f'{mysql} -e "SELECT customer_id FROM transactions WHERE updated_at >= (SELECT MAX(updated_at)'
        f" FROM transactions) - INTERVAL 24 HOUR AND order_date < '{START}'\" > /dev/null",
    )
    route(
        "interactions",
        f"sqlite3 -separator $'\\t' -nullvalue '\\N' {stack.crm_store} \"{interactions}\" | {into('interactions')}",
    )
    # not part of the floor any more: the old floor's lifetime GROUP BY over the whole history
    old_group_by = None
    if old:
        sh(
            psql(
                stack.analytics_db,
                f"CREATE UNLOGGED TABLE {FLOOR_SCHEMA}.old_history (LIKE {FLOOR_SCHEMA}.customer_history)",
            )
        )
        history = summary(f"order_date < '{END}'")
        old_group_by = sh(f'{mysql} -e "{big_tmp}; {history}" | {into("old_history", "NULL")}')
    route(
        "group_by",
        psql(
            stack.analytics_db,
            f"CREATE UNLOGGED TABLE {FLOOR_SCHEMA}.per_customer AS SELECT customer_id, count(*) AS n,"
            f" sum(amount) AS amount FROM {FLOOR_SCHEMA}.transactions GROUP BY customer_id",
        ),
    )
    return out, old_group_by, cpu


def measure_naive(stack: Stack, limit: int | None) -> dict:
    """pandas read_sql + to_sql of the month's transactions, in its own process (for its RSS)."""
    code = f"""
import time, pandas as pd, sqlalchemy as sa
src = sa.create_engine("mysql+mysqldb://{MYSQL["user"]}:@{MYSQL["host"]}:{MYSQL["port"]}/{stack.sales_db}")
dst = sa.create_engine("postgresql+psycopg://{PG["user"]}@{PG["host"]}:{PG["port"]}/{stack.analytics_db}")
t0 = time.monotonic()
df = pd.read_sql("SELECT * FROM transactions WHERE order_date >= '{START}' AND order_date < '{END}'"
                 + ("" if {limit!r} is None else " LIMIT {limit}"), src)
t1 = time.monotonic()
df.to_sql("naive_transactions", dst, schema="{FLOOR_SCHEMA}", if_exists="replace", index=False, chunksize=50000)
print("NAIVE", len(df), t1 - t0, time.monotonic() - t1)
"""
    out = subprocess.run([*RSS, sys.executable, "-c", code], check=True, capture_output=True, text=True)
    line = next(x for x in out.stdout.splitlines() if x.startswith("NAIVE"))
    _, rows, read, write = line.split()
    return {
        "rows": int(rows),
        "read_sql": float(read),
        "to_sql": float(write),
        "seconds": float(read) + float(write),
        "peak_rss_mb": _rss(out.stdout),
    }


def _rss(stdout: str) -> float:
    return float(next(x for x in stdout.splitlines() if x.startswith("PEAK_RSS_MB")).split()[1])


HANDLER_READS = (
    "Handler_read_first",
    "Handler_read_key",
    "Handler_read_next",
    "Handler_read_prev",
    "Handler_read_rnd",
    "Handler_read_rnd_next",
)


def source_rows_read() -> int:
    """The rows MariaDB's storage engines have read since the server started (the Handler_read_*
    counters, server-wide): the difference around a run is the source-side work of the run, as
    long as nothing else reads from this server meanwhile."""
    import MySQLdb

    conn = MySQLdb.connect(host=MYSQL["host"], port=MYSQL["port"], user=MYSQL["user"], passwd="")
    try:
        cur = conn.cursor()
        cur.execute(
            "SHOW GLOBAL STATUS WHERE Variable_name IN (" + ", ".join(["%s"] * len(HANDLER_READS)) + ")", HANDLER_READS
        )
        return sum(int(v) for _, v in cur.fetchall())
    finally:
        conn.close()


def run_dag(stack: Stack, env: dict, log: str = "dag_test.log") -> dict:
    airflow = str(Path(sys.executable).parent / "airflow")
    read_before = source_rows_read()
    t0, w0 = time.monotonic(), time.time()
    out = subprocess.run(
        [*RSS, airflow, "dags", "test", "customer_performance", LOGICAL_DATE],
        env=env,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    wall = time.monotonic() - t0
    source_read = source_rows_read() - read_before
    (stack.workdir / log).write_text(out.stdout + out.stderr)
    db = sqlite3.connect(Path(env["AIRFLOW_HOME"]) / "airflow.db")
    run_id, state = db.execute(
        "SELECT run_id, state FROM dag_run WHERE dag_id = 'customer_performance' ORDER BY id DESC LIMIT 1"
    ).fetchone()
    spans = db.execute(
        "SELECT task_id, (julianday(start_date) - 2440587.5) * 86400, (julianday(end_date) - 2440587.5) * 86400"
        " FROM task_instance WHERE dag_id = 'customer_performance' AND run_id = ?",
        (run_id,),
    ).fetchall()
    tasks = {task: end - start for task, start, end in spans}
    if state != "success":
        raise SystemExit(f"the DAG run ended {state}; see {stack.workdir / log}")
    cpu = {}
    if METER is not None:  # the machine's CPU seconds in each task, and in the whole run
        cpu = {task: METER.busy(start, end) for task, start, end in spans}
        cpu["whole run"] = METER.busy(w0, w0 + wall)
    return {
        "wall": wall,
        "tasks": tasks,
        "cpu": cpu,
        "peak_rss_mb": _rss(out.stdout),
        "source_rows_read": source_read,
        "churn_model": churn_record(stack),
    }


def churn_record(stack: Stack) -> dict:
    """What July's run kept of its churn model (pipeline_runs.churn_model): the method, and the
    gradient-boosted model's training, scoring and reason seconds, or why it fell back."""
    import psycopg

    with psycopg.connect(pg_dsn(stack.analytics_db)) as conn:
        row = conn.execute(
            "SELECT churn_model FROM analytics.pipeline_runs WHERE report_month = %s"
            " ORDER BY period_end DESC, loaded_at DESC LIMIT 1",
            (START,),
        ).fetchone()
    record = (row[0] or {}) if row else {}
    return {"method": record.get("method"), **(record.get("model") or {})}


def run_scheduled(stack: Stack, home: Path) -> dict:
    """The same run as production runs it: a scheduler with LocalExecutor on a PostgreSQL metadata
    DB (the `make airflow` machinery), the three extracts and the three destinations in parallel.
    The DAG is unpaused first and the run of today's schedule tick (which finds no data) is left to
    end; then July's run is triggered and timed from Airflow's own start and end dates."""
    from dev.airflow_local import DAG_ID, LocalAirflow

    af = LocalAirflow(stack, home, parallelism=4)
    af.start(fresh=True)
    try:
        # today's tick builds the lifetime state at today's month over the whole history first:
        # over ten minutes at 1M customers
        af.unpause(timeout=3600)
        read_before = source_rows_read()
        af.cli("dags", "trigger", DAG_ID, "--logical-date", LOGICAL_DATE)
        runs = af.wait_for_runs(
            lambda runs: any(str(r["logical_date"]).startswith("2025-08-01") for r in runs), 3600, "July's run"
        )
        source_read = source_rows_read() - read_before
        (run,) = [r for r in runs if str(r["logical_date"]).startswith("2025-08-01")]
        if run["state"] != "success":
            raise SystemExit(f"the scheduled run ended {run['state']}; see {home}/logs")
        ((wall, started, ended),) = af.query(
            "SELECT extract(epoch FROM end_date - start_date)::float, extract(epoch FROM start_date)::float,"
            " extract(epoch FROM end_date)::float FROM dag_run WHERE dag_id = %s AND run_id = %s",
            (DAG_ID, run["run_id"]),
        )
        tasks = dict(
            af.query(
                "SELECT task_id, extract(epoch FROM end_date - start_date)::float FROM task_instance"
                " WHERE dag_id = %s AND run_id = %s",
                (DAG_ID, run["run_id"]),
            )
        )
    finally:
        af.stop()
        af.drop_db()
    cpu = METER.busy(started, ended) if METER is not None else None
    return {"wall": float(wall), "tasks": tasks, "source_rows_read": source_read, "cpu": cpu}


def drop_staged(stack: Stack) -> None:
    """Drop the earlier runs' staged tables (the pipeline creates its staging schema again): a
    repeat then starts with the page cache and the disk as the first run found them."""
    import psycopg

    from include.customer_performance.config import settings

    with psycopg.connect(pg_dsn(stack.analytics_db), autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{settings().staging_schema}" CASCADE')


def staged_rows(stack: Stack) -> dict[str, int]:
    import psycopg

    with psycopg.connect(pg_dsn(stack.analytics_db)) as conn:
        tables = [r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s", (FLOOR_SCHEMA,))]
        return {t: conn.execute(f"SELECT count(*) FROM {FLOOR_SCHEMA}.{t}").fetchone()[0] for t in tables}


def _mysql(db: str | None = None):
    import MySQLdb

    return MySQLdb.connect(**MYSQL, **({"db": db} if db else {}), autocommit=True)


def one_month_copy(stack: Stack) -> str:
    """A copy of the sales database holding only June and later: July's nightly run with one month
    of history. Made once per generated source (the copy's rows are checked against the source's)."""
    name = f"{stack.sales_db}_h1"
    conn = _mysql()
    try:
        cur = conn.cursor()
        cur.execute(f"SELECT count(*) FROM `{stack.sales_db}`.transactions WHERE order_date >= '2025-06-01'")
        wanted = cur.fetchone()[0]
        cur.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = %s", (name,))
        if cur.fetchone()[0]:
            cur.execute(f"SELECT count(*) FROM `{name}`.transactions")
            if cur.fetchone()[0] == wanted:
                return name
        print(f"[bench] copying June and later into {name} (one month of history)...", flush=True)
        cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
        cur.execute(f"CREATE TABLE `{name}`.transactions LIKE `{stack.sales_db}`.transactions")
        # the rows first, the secondary indexes after, each built sorted (as the generator does):
        # kept up row by row, their random inserts through the 128 MB buffer pool took over half an
        # hour at 1M customers
        cur.execute(f"SHOW INDEX FROM `{name}`.transactions")  # in the table's order of keys
        keys: dict[str, list[str]] = {}
        for row in cur.fetchall():
            key, column, part = row[2], row[4], row[7]
            if key != "PRIMARY":
                keys.setdefault(key, []).append(f"`{column}`" + (f"({part})" if part else ""))
        if keys:
            cur.execute(f"ALTER TABLE `{name}`.transactions " + ", ".join(f"DROP KEY `{k}`" for k in keys))
        cur.execute(
            f"INSERT INTO `{name}`.transactions SELECT * FROM `{stack.sales_db}`.transactions"
            " WHERE order_date >= '2025-06-01'"
        )
        if keys:
            add = ", ".join(f"ADD KEY `{k}` ({', '.join(c)})" for k, c in keys.items())
            cur.execute(f"ALTER TABLE `{name}`.transactions {add}")
        return name
    finally:
        conn.close()


def ensure_indexes(db: str) -> None:
    """The indexes the lifetime state probes by (dev/generate.py), on sources generated before it."""
    from include.customer_performance.extract.lifetime import missing_indexes

    conn = _mysql(db)
    try:
        cur = conn.cursor()
        missing = missing_indexes(conn)
        if missing:
            print(f"[bench] {db}: adding the index(es) on {', '.join(missing)}...", flush=True)
            cur.execute("ALTER TABLE transactions " + ", ".join(f"ADD KEY ix_{c} ({c})" for c in missing))
    finally:
        conn.close()


def bootstrap(env: dict) -> dict:
    """`lifetime rebuild --month 2025-07`: the state a first run (or June's month close) leaves."""
    read_before = source_rows_read()
    t0 = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-m", "include.customer_performance", "lifetime", "rebuild", "--month", "2025-07"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if out.returncode:
        raise SystemExit(
            f"lifetime rebuild failed after {time.monotonic() - t0:.0f} s (exit {out.returncode}):\n"
            + (out.stdout + out.stderr)[-4000:]
        )
    return {"seconds": time.monotonic() - t0, "source_rows_read": source_rows_read() - read_before}


PUBLISHED = "bench_floor_published"


def _published_columns(conn) -> str:
    rows = conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'analytics'"
        " AND table_name = 'customer_performance' AND column_name NOT IN ('run_id', 'loaded_at')"
        " ORDER BY ordinal_position"
    ).fetchall()
    return ", ".join(r[0] for r in rows)


def keep_published(stack: Stack) -> None:
    """July's published customer rows of the incremental run, kept for ``compare_published``."""
    import psycopg

    with psycopg.connect(pg_dsn(stack.analytics_db), autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS public.{PUBLISHED}")
        conn.execute(
            f"CREATE UNLOGGED TABLE public.{PUBLISHED} AS SELECT {_published_columns(conn)}"
            f" FROM analytics.customer_performance WHERE report_month = '{START}'"
        )


def compare_published(stack: Stack) -> tuple[int, int]:
    """(rows only the incremental run published, rows only the full run published), EXCEPT ALL."""
    import psycopg

    with psycopg.connect(pg_dsn(stack.analytics_db), autocommit=True) as conn:
        cols = _published_columns(conn)
        now = f"SELECT {cols} FROM analytics.customer_performance WHERE report_month = '{START}'"
        kept = f"SELECT {cols} FROM public.{PUBLISHED}"
        a = conn.execute(f"SELECT count(*) FROM ({kept} EXCEPT ALL {now}) d").fetchone()[0]
        b = conn.execute(f"SELECT count(*) FROM ({now} EXCEPT ALL {kept}) d").fetchone()[0]
        conn.execute(f"DROP TABLE public.{PUBLISHED}")
        return a, b


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--customers", type=int, default=1_000_000)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--naive-limit", type=int, default=None, help="cap the naive baseline's rows (default: all)")
    p.add_argument("--skip-naive", action="store_true")
    p.add_argument("--skip-full", action="store_true", help="skip the run with the lifetime summary in full")
    p.add_argument(
        "--skip-old-floor",
        action="store_true",
        help="skip timing the old floor's lifetime GROUP BY over the whole history (minutes at 1M customers)",
    )
    p.add_argument(
        "--skip-one-month",
        action="store_true",
        help="skip the run on the one-month copy of the sales database (only the full history's run)",
    )
    p.add_argument("--generate-only", action="store_true", help="generate (or keep) the sources, then stop")
    p.add_argument(
        "--stack",
        default="cp_bench",
        help="the databases' name prefix (bench/scaling.py keeps one set of sources per size)",
    )
    p.add_argument(
        "--scheduler",
        action="store_true",
        help="also run the DAG under a scheduler (LocalExecutor, PostgreSQL metadata), as production does",
    )
    p.add_argument(
        "--history-months",
        type=int,
        default=24,
        help="months of purchase history before July in the sales database (default 24, as teams keep years)",
    )
    p.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="run the DAG and the floor this many times in turn on the full history (the earlier runs'"
        " staged tables dropped first) and judge the ratio on the median: this VM's speed moves by"
        " up to 2x between minutes",
    )
    a = p.parse_args()
    if a.repeat < 1:
        p.error("--repeat must be at least 1")
    work = ROOT / ".bench" if a.stack == "cp_bench" else ROOT / ".bench" / a.stack
    stack = Stack(checkout_name(a.stack), work)
    work.mkdir(parents=True, exist_ok=True)
    marker = work / "generated.json"
    wanted = {"customers": a.customers, "seed": a.seed, "generator": "lives-6", "history_months": a.history_months}
    previous = json.loads(marker.read_text()) if marker.exists() else {}
    if previous.get("params") != wanted or not stack.crm_store.exists():
        print(
            f"[bench] generating {a.customers:,} customers (July 2025 + {a.history_months} months of history)...",
            flush=True,
        )
        stack.create_databases()
        # about 10 transactions, 5 sessions and 2 CRM interactions per customer in the month, as
        # before the generator gave customers lives (about half of them have stopped buying by July)
        planted = stack.generate(
            a.customers,
            "2025-07",
            seed=a.seed,
            history_months=a.history_months,
            tx_per_customer=18.0,
            sessions_per_customer=9.0,
            interactions_per_customer=3.0,
            truth_days=0,
        )
        marker.write_text(json.dumps({"params": wanted, "planted": planted}))
        print(f"[bench] generated in {planted['seconds']:.0f}s", flush=True)
    else:
        planted = previous["planted"]
        stack.create_databases(keep_analytics=True, keep_sources=True)
        stack.reset_unversioned_analytics()
    rows = planted["rows_in_month"]
    if a.generate_only:
        print(f"[bench] sources ready: {json.dumps(rows)}", flush=True)
        return 0
    print(
        f"[bench] sources: {rows['customers']:,} customers, {rows['transactions']:,} transactions, "
        f"{rows['activity']:,} sessions, {rows['interactions']:,} interactions in July 2025",
        flush=True,
    )

    env = stack.prepare_airflow(work / "airflow")
    variants = [(a.history_months, stack.sales_db)]
    if a.history_months > 1 and not a.skip_one_month:
        variants.insert(0, (1, one_month_copy(stack)))
    for _, db in variants:
        ensure_indexes(db)

    def partial(**phases) -> None:
        """What was measured so far, kept as each phase ends: a run that dies at 1M customers
        an hour in still leaves its figures (result.json is written at the end)."""
        (work / "partial.json").write_text(json.dumps(phases, indent=2, default=str))

    global METER
    METER = CpuMeter().start()
    stack.start_services()
    runs: dict[int, dict] = {}
    envs: dict[int, dict] = {}
    full = same = scheduled = None
    try:
        for months, db in variants:
            venv = envs[months] = {
                **env,
                "AIRFLOW_CONN_SALES_DB": json.dumps({**stack.connections()["sales_db"], "schema": db}),
            }
            print(f"[bench] {months} month(s) of history: building the lifetime state at 1 July...", flush=True)
            boot = bootstrap(venv)
            print(f"[bench] {months} month(s) of history: running July's DAG...", flush=True)
            runs[months] = {"bootstrap": boot, **run_dag(stack, venv, f"dag_test_{months}mo.log")}
            partial(runs=runs)
        if not a.skip_full:
            keep_published(stack)
            print("[bench] July again with the lifetime summary computed in full, every run...", flush=True)
            full = run_dag(stack, {**env, "CUSTOMER_PERFORMANCE_LIFETIME_MODE": "full"}, "dag_test_full.log")
            same = compare_published(stack)
            partial(runs=runs, full_lifetime=full, same=same)
            if same != (0, 0):
                raise SystemExit(f"the incremental and the full lifetime summary published different rows: {same}")
        if a.scheduler:
            print("[bench] running the DAG under a scheduler (LocalExecutor)...", flush=True)
            scheduled = run_scheduled(stack, work / "airflow-scheduler")
            partial(runs=runs, full_lifetime=full, scheduled=scheduled)
    finally:
        stack.stop_services()
    dag = runs[a.history_months]
    print("[bench] measuring the floor...", flush=True)
    floor, old_group_by, floor_cpu = measure_floor(stack, old=not a.skip_old_floor)
    # the DAG and the floor in turn, again: (DAG wall, floor total, DAG CPU s, floor CPU s) per pair
    pairs = [(dag["wall"], sum(floor.values()), dag["cpu"]["whole run"], sum(floor_cpu.values()))]
    repeats: list[dict] = []  # each repeat's DAG (its tasks, their CPU) and floor, kept in result.json
    for i in range(1, a.repeat):
        drop_staged(stack)
        print(f"[bench] repeat {i + 1} of {a.repeat}: July's DAG, then the floor...", flush=True)
        stack.start_services()
        try:
            again = run_dag(stack, envs[a.history_months], f"dag_test_repeat{i + 1}.log")
        finally:
            stack.stop_services()
        f, _, fc = measure_floor(stack, old=False)
        pairs.append((again["wall"], sum(f.values()), again["cpu"]["whole run"], sum(fc.values())))
        repeats.append({"dag": again, "floor": f, "floor_cpu": fc})
        partial(runs=runs, full_lifetime=full, scheduled=scheduled, pairs=pairs, repeats=repeats)
    METER.stop()
    moved = {k: v for k, v in staged_rows(stack).items() if k != "old_history"}
    naive = None
    if not a.skip_naive:
        print("[bench] measuring the naive baseline (pandas read_sql + to_sql)...", flush=True)
        naive = measure_naive(stack, a.naive_limit)

    extract_tasks = ("extract_customer_db", "extract_crm_api", "extract_sales_db")
    extract = sum(dag["tasks"][t] for t in extract_tasks)
    floor_move = sum(v for k, v in floor.items() if k != "group_by")
    floor_total = floor_move + floor["group_by"]
    source_rows = sum(moved.get(t, 0) for t in ("customers", "customer_activity", "transactions", "interactions"))

    print()
    print(f"Customer Performance benchmark: {a.customers:,} customers, July 2025, {a.history_months} months of history")
    print(f"machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}")
    print("rows moved: " + ", ".join(f"{k} {v:,}" for k, v in sorted(moved.items()) if k != "per_customer"))
    print(f"\nDAG (airflow dags test, tasks in sequence), July as a nightly run, {a.history_months} months of history")
    cores = os.cpu_count() or 1
    print(f"  {'task':<22} {'wall':>8}   {'CPU':>8}   busy cores (of {cores}: the machine's CPU time / wall)")
    for task, seconds in sorted(dag["tasks"].items(), key=lambda kv: -kv[1]):
        cpu = dag["cpu"][task]
        print(f"  {task:<22} {seconds:8.1f} s {cpu:8.1f} s   {cpu / max(seconds, 1e-9):4.2f}")
    print(f"  {'sum of tasks':<22} {sum(dag['tasks'].values()):8.1f} s")
    whole_cpu = dag["cpu"]["whole run"]
    print(
        f"  {'wall (incl. startup)':<22} {dag['wall']:8.1f} s {whole_cpu:8.1f} s   {whole_cpu / dag['wall']:4.2f}"
        f"   {source_rows / dag['wall']:,.0f} source rows/s"
    )
    print(f"  worker peak RSS         {dag['peak_rss_mb']:8.0f} MB")
    churn = dag.get("churn_model") or {}
    print(
        f"  churn model             {churn.get('method')}: "
        + (
            f"training {churn.get('training_seconds')} s on {churn.get('training_rows') or 0:,} rows, scoring"
            f" {churn.get('scoring_seconds')} s, reasons {churn.get('reasons_seconds')} s"
            if churn.get("training_seconds") is not None
            else f"the BTYD probability published ({churn.get('fallback_reason')})"
        )
    )
    print(
        f"  sales DB rows read      {dag['source_rows_read']:>12,}   (MariaDB Handler_read_*, server-wide;"
        f" {dag['source_rows_read'] / max(moved.get('transactions', 1), 1):.1f} per transaction of the month)"
    )
    print("\nHistory: the nightly run at 1 month and at the full history (the state built beforehand, once)")
    print(f"  {'history':<10}{'whole DAG':>12}{'extract_sales_db':>18}{'rows read':>14}{'state bootstrap':>17}")
    for months, r in runs.items():
        print(
            f"  {str(months) + ' mo':<10}{r['wall']:>10.1f} s{r['tasks']['extract_sales_db']:>16.1f} s"
            f"{r['source_rows_read']:>14,}{r['bootstrap']['seconds']:>15.1f} s"
        )
    if full:
        print(
            f"  {'full':<10}{full['wall']:>10.1f} s{full['tasks']['extract_sales_db']:>16.1f} s"
            f"{full['source_rows_read']:>14,}   (lifetime_mode=full, {a.history_months} months;"
            f" published customer rows equal: EXCEPT ALL both ways {same})"
        )
    if scheduled:
        print("\nDAG under a scheduler (LocalExecutor, parallelism 4: extracts and destinations in parallel)")
        for task, seconds in sorted(scheduled["tasks"].items(), key=lambda kv: -kv[1]):
            print(f"  {task:<22} {seconds:8.1f} s")
        print(f"  {'run, start to end':<22} {scheduled['wall']:8.1f} s {scheduled['cpu']:8.1f} s CPU")
        print(f"  sales DB rows read      {scheduled['source_rows_read']:>12,}")
    print("\nFloor (plain routes: the period's rows, the changed rows, one GROUP BY of them)")
    for k, v in floor.items():
        print(f"  {k:<22} {v:8.1f} s {floor_cpu[k]:8.1f} s   {floor_cpu[k] / max(v, 1e-9):4.2f}")
    print(f"  {'move total':<22} {floor_move:8.1f} s")
    floor_cpu_total = sum(floor_cpu.values())
    print(f"  {'floor total':<22} {floor_total:8.1f} s {floor_cpu_total:8.1f} s   {floor_cpu_total / floor_total:4.2f}")
    if old_group_by is not None:
        print(f"  (the old floor's lifetime GROUP BY over {a.history_months} months: {old_group_by:.1f} s)")
    if naive:
        print(f"\nNaive (pandas read_sql + to_sql, {naive['rows']:,} transactions)")
        print(
            f"  read_sql {naive['read_sql']:.1f} s + to_sql {naive['to_sql']:.1f} s = {naive['seconds']:.1f} s,"
            f" peak RSS {naive['peak_rss_mb']:.0f} MB"
        )
    print("\nRatios (target)")
    ratio = "  {:<32}{:5.2f}x  (target {})  {:.1f} s vs {:.1f} s"
    print(ratio.format("extract stage / floor move", extract / floor_move, "<= 1.5", extract, floor_move))
    print(ratio.format("whole DAG / floor (move+group)", dag["wall"] / floor_total, "<= 2", dag["wall"], floor_total))
    print(
        f"  {'CPU: whole DAG / floor':<32}{whole_cpu / floor_cpu_total:5.2f}x  (the work, whatever the cores)"
        f"  {whole_cpu:.1f} s vs {floor_cpu_total:.1f} s"
    )
    print(
        f"  {'DAG wall if every task kept':<32}{(whole_cpu / cores) / floor_total:5.2f}x  ({cores} cores busy"
        f" throughout: the DAG's CPU time / {cores} = {whole_cpu / cores:.1f} s; no arrangement of this work beats it)"
    )
    if len(pairs) > 1:
        ratios = sorted(w / f for w, f, _, _ in pairs)
        print(f"  the DAG and the floor in turn, {len(pairs)} times (DAG / floor, CPU DAG / floor):")
        for w, f, wc, fc in pairs:
            print(f"    {w:7.1f} s / {f:6.1f} s = {w / f:4.2f}x    CPU {wc:7.1f} s / {fc:6.1f} s = {wc / fc:4.2f}x")
        print(f"  {'median whole DAG / floor':<32}{ratios[len(ratios) // 2]:5.2f}x  (target <= 2)")
    print(f"  sum of tasks / floor            {sum(dag['tasks'].values()) / floor_total:5.2f}x")
    if 1 in runs and a.history_months > 1:
        one = runs[1]
        print(
            ratio.format(
                f"DAG {a.history_months} mo / 1 mo of history",
                dag["wall"] / one["wall"],
                "<= 1.3",
                dag["wall"],
                one["wall"],
            )
        )
        rows_ratio = dag["source_rows_read"] / one["source_rows_read"]
        print(
            f"  rows read {a.history_months} mo / 1 mo          {rows_ratio:5.2f}x"
            f"  (target: not growing)  {dag['source_rows_read']:,} vs {one['source_rows_read']:,}"
        )
    if full:
        print(f"  full lifetime / incremental     {full['wall'] / dag['wall']:5.2f}x  {full['wall']:.1f} s")
    if scheduled:
        print(f"  scheduled run / floor           {scheduled['wall'] / floor_total:5.2f}x  {scheduled['wall']:.1f} s")
    print(f"  worker peak RSS                 {dag['peak_rss_mb'] / 1024:5.2f} GiB (<= 1)")
    if naive:
        per_row = naive["seconds"] / naive["rows"] * moved.get("transactions", naive["rows"])
        print(
            f"  naive / pipeline (transactions) {per_row / dag['tasks']['extract_sales_db']:5.2f}x"
            f"  naive {per_row:.1f} s vs extract_sales_db {dag['tasks']['extract_sales_db']:.1f} s"
        )
        print(f"  naive / whole DAG               {per_row / dag['wall']:5.2f}x")
    (work / "result.json").write_text(
        json.dumps(
            {
                "customers": a.customers,
                "history_months": a.history_months,
                "dag": dag,
                "by_history": runs,
                "full_lifetime": full,
                "scheduled": scheduled,
                "floor": floor,
                "floor_cpu": floor_cpu,
                "pairs": pairs,
                "repeats": repeats,
                "old_lifetime_group_by": old_group_by,
                "naive": naive,
                "moved": moved,
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
