"""The analytics database behind a transaction-pooling PgBouncer (a real one, started here).

In transaction pooling, consecutive transactions of one client run on whichever server session is
free: a session ``SET`` lands on a session other clients get next, a prepared statement or TEMP
table may be gone, and a session advisory lock stays with a session nobody holds. July runs
through PgBouncer (pool of 3 server sessions for every client of the run), and must publish exactly
what the direct run published; then no server session carries a setting of the run, and two more
BI pushes (whose lock spans the push) each complete."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
import pytest

from dev.stack import PG, free_port, pg_dsn, wait_for_port
from include.customer_performance.config import settings
from include.customer_performance.http_client import ApiClient
from include.customer_performance.load.bi_api import push
from include.customer_performance.staging import make_run
from tests.conftest import LOGICAL_DATE, dags_test, own_destinations, snapshot

POOL = 3


@pytest.fixture(scope="module")
def bouncer():
    """PgBouncer on a loopback port in front of the machine's PostgreSQL, transaction pooling."""
    exe = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    if not os.path.exists(exe):
        raise RuntimeError("pgbouncer is not installed: make setup installs it (apt pgbouncer)")
    folder = Path(tempfile.mkdtemp(prefix="cp-pgbouncer-"))
    folder.chmod(0o777)  # PgBouncer will not run as root: it drops to the postgres user
    port = free_port()
    (folder / "userlist.txt").write_text(f'"{PG["user"]}" ""\n')
    (folder / "pgbouncer.ini").write_text(
        f"""[databases]
* = host={PG["host"]} port={PG["port"]}
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {folder}/userlist.txt
admin_users = {PG["user"]}
pool_mode = transaction
default_pool_size = {POOL}
max_client_conn = 200
ignore_startup_parameters = extra_float_digits
logfile = {folder}/pgbouncer.log
pidfile = {folder}/pgbouncer.pid
"""
    )
    for f in folder.iterdir():
        f.chmod(0o644)
    proc = subprocess.Popen([exe, "-u", "postgres", str(folder / "pgbouncer.ini")], stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, proc, "pgbouncer", timeout=30)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


def _via(bouncer: int, stack) -> str:
    """The analytics database's DSN through PgBouncer."""
    return pg_dsn(stack.analytics_db).replace(f"port={PG['port']}", f"port={bouncer}")


def _admin(port: int, command: str) -> str:
    """PgBouncer's admin console (simple query protocol: psql)."""
    out = subprocess.run(
        ["psql", "-h", "127.0.0.1", "-p", str(port), "-U", PG["user"], "-At", "-F", "|", "pgbouncer", "-c", command],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout


def test_a_run_through_a_transaction_pooling_pgbouncer_publishes_what_the_direct_run_did(
    stack, july_run, bouncer, tmp_path
):
    conn = dict(stack.connections()["analytics_db"], port=bouncer)
    # schemas, BI dataset and export folder of its own: the session's July stays the direct run's
    with own_destinations(stack, "cp_pgb", tmp_path / "exports") as (own, schema, _, dataset):
        env = {
            **stack.prepare_airflow(tmp_path / "airflow"),
            **own,
            "AIRFLOW_CONN_ANALYTICS_DB": json.dumps(conn),
        }
        dags_test(env, LOGICAL_DATE.isoformat())
        _published_like_the_direct_run(stack, july_run, bouncer, schema, dataset)


def _published_like_the_direct_run(stack, july_run, bouncer, schema, dataset):
    # the run went through PgBouncer, in transactions spread over its few server sessions
    stats = {line.split("|")[0]: line.split("|") for line in _admin(bouncer, "SHOW STATS").splitlines()}
    assert int(stats[stack.analytics_db][2]) > 100, stats[stack.analytics_db]  # total_xact_count
    # every analytics table and BI row as the direct run's (the run record names its own schema,
    # dataset and folder: its rows are compared apart)
    ours, direct_run = snapshot(stack, schema, dataset), july_run["snapshot"]
    assert {k: v for k, v in ours.items() if k != "pipeline_runs"} == {
        k: v for k, v in direct_run.items() if k != "pipeline_runs"
    }
    with psycopg.connect(pg_dsn(stack.analytics_db)) as c:
        tasks, quality, kpis = c.execute(f"SELECT tasks, quality, kpis FROM {schema}.pipeline_runs").fetchone()
        ref = c.execute("SELECT tasks, quality, kpis FROM analytics.pipeline_runs WHERE report_month = '2025-07-01'")
        ref_tasks, ref_quality, ref_kpis = ref.fetchone()
    assert kpis == ref_kpis and quality["quarantined_rows"] == ref_quality["quarantined_rows"]
    assert {t: v["rows_out"] for t, v in tasks.items()} == {t: v["rows_out"] for t, v in ref_tasks.items()}

    # no server session carries a setting of the run (a session SET would stay on it): hold every
    # session of the pool at once, each in a transaction, and ask
    direct = psycopg.connect(pg_dsn(stack.analytics_db))
    default = direct.execute("SHOW work_mem").fetchone()[0]
    direct.close()
    held = [psycopg.connect(_via(bouncer, stack), prepare_threshold=None) for _ in range(POOL)]
    try:
        seen = [c.execute("SHOW work_mem").fetchone()[0] for c in held]
    finally:
        for c in held:
            c.close()
    assert seen == [default] * POOL, (seen, settings().transform_work_mem)

    # the BI push's lock spans the push (many transactions): two pushes through the pool, each
    # completes (a session lock taken on one server session would stay there and stop the next)
    run = make_run(LOGICAL_DATE, july_run["run_id"], None, settings().staging_schema)
    client = ApiClient(f"http://127.0.0.1:{stack.bi_port}", stack.bi_token, "bi_api")
    for _ in range(2):
        t0 = time.monotonic()
        with psycopg.connect(_via(bouncer, stack), prepare_threshold=None) as c:
            sent = push(c, run, client, dataset, 10_000)
        assert sent["kpis"] == 1 and time.monotonic() - t0 < 60
    assert snapshot(stack, schema, dataset) == ours


def test_every_transaction_of_a_transform_connection_has_its_work_mem(stack, bouncer, monkeypatch):
    """work_mem is SET LOCAL at the start of each transaction (db.LocalSettingsCursor), so each
    of a task's transactions has it, whichever server session PgBouncer gives it."""
    from include.customer_performance.db import analytics

    conn = dict(stack.connections()["analytics_db"], port=bouncer)
    monkeypatch.setenv("AIRFLOW_CONN_ANALYTICS_DB", json.dumps(conn))
    cfg = settings()
    others = [psycopg.connect(_via(bouncer, stack)) for _ in range(2)]
    try:
        with analytics(cfg) as c:
            for i in range(6):
                assert c.execute("SHOW work_mem").fetchone()[0] == cfg.transform_work_mem, i
                with c.cursor() as cur, cur.copy("COPY (SELECT current_setting('work_mem')) TO STDOUT") as copy:
                    assert b"".join(bytes(b) for b in copy).strip() == cfg.transform_work_mem.encode()
                # another client's transaction in between takes a server session too
                others[i % 2].execute("SELECT 1").fetchone()
                others[i % 2].commit()
                c.commit()
            c.autocommit = True  # a statement alone: no transaction to set it in, nothing set
            assert c.execute("SHOW work_mem").fetchone()[0] != cfg.transform_work_mem
    finally:
        for o in others:
            o.close()
