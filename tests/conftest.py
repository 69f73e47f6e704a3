"""Test harness: a private Airflow home (SQLite metadata), and one real local stack per session.

The stack is uniquely named databases on the machine's PostgreSQL and MariaDB plus the CRM, BI
and SMTP stand-ins as real processes on free loopback ports; all of it is dropped at the end.
Nothing is skipped when a service is missing: the fixtures fail with the connection error.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="cp-test-airflow-"))
# Airflow reads its configuration at import: set it before anything imports airflow.
os.environ.update(
    {
        "AIRFLOW_HOME": str(AIRFLOW_HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{AIRFLOW_HOME / 'airflow.db'}",
        # a failing task fails the test at once instead of waiting out production retries
        "CUSTOMER_PERFORMANCE_EXTRACT_RETRIES": "0",
        "CUSTOMER_PERFORMANCE_DEADLINE_MINUTES": "0",  # see dev/stack.py airflow_env
        "CUSTOMER_PERFORMANCE_TRANSFORM_RETRIES": "0",
        "CUSTOMER_PERFORMANCE_DELIVER_RETRIES": "0",
    }
)
sys.path.insert(0, str(ROOT))

from dev.stack import Stack, pg_dsn  # noqa: E402
from include.customer_performance.config import Settings  # noqa: E402

TEST_MONTH = "2025-07"
TEST_CUSTOMERS = 1500


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(AIRFLOW_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """Airflow's metadata DB (SQLite), migrated once per session."""
    airflow = str(Path(sys.executable).parent / "airflow")
    for args in (["db", "migrate"], ["pools", "import", str(ROOT / "pools.json")]):
        subprocess.run([airflow, *args], check=True, capture_output=True, env=os.environ.copy())
    return AIRFLOW_HOME


@contextlib.contextmanager
def running_stack(
    name: str, workdir: Path, customers: int, seed: int, prepare=None, month: str = TEST_MONTH, history_months: int = 2
):
    """A stack with ``month`` (July 2025) generated (``prepare(stack)`` may then damage the
    sources), its stand-ins running and the Airflow connections pointing at it; all undone on exit."""
    from include.customer_performance.config import settings

    s = Stack(f"{name}{uuid.uuid4().hex[:8]}", workdir)
    s.create_databases()
    env = s.airflow_env(AIRFLOW_HOME)
    saved = {k: os.environ.get(k) for k in env}
    try:
        # the month sized as the suite was written for (about 10 sales per customer, most customers
        # still buying): the gate's ceilings are shares of rows, and small months make them noisy.
        # tests/test_churn.py generates the default lives instead.
        s.planted = s.generate(
            customers, month, seed=seed, history_months=history_months, tx_per_customer=12.0, lifetime_months=36.0
        )
        if prepare:
            prepare(s)
        s.start_services()
        os.environ.update({k: v for k, v in env.items() if k != "PYTHONPATH"})
        settings.cache_clear()
        yield s
    finally:
        s.stop_services()
        s.drop_databases()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        settings.cache_clear()


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    """Sources seeded for July 2025, an empty analytics DB, stand-ins running, connections set."""
    with running_stack("cp_t", tmp_path_factory.mktemp("stack"), TEST_CUSTOMERS, seed=7) as s:
        yield s


@contextlib.contextmanager
def fresh_pg_db():
    """A fresh, uniquely named PostgreSQL database (a libpq DSN), dropped afterwards."""
    import psycopg

    name = f"cp_u{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_dsn("postgres"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield pg_dsn(name)
    finally:
        with psycopg.connect(pg_dsn("postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_db():
    """A fresh, uniquely named PostgreSQL database (a libpq DSN), dropped afterwards."""
    with fresh_pg_db() as dsn:
        yield dsn


# -- the July run every end-to-end test looks at ------------------------------------------------
LOGICAL_DATE = datetime(2025, 8, 1, 2, tzinfo=UTC)  # closes July 2025
TABLES = ("customer_performance", "regional_summary", "performance_trends", "data_quality_results", "pipeline_runs")
BI_TABLES = Settings().bi_tables  # the tables a run pushes by default


def concurrently(call, times: int = 2, timeout: float = 120) -> tuple[list, list[BaseException]]:
    """Run ``call()`` ``times`` times at once, each in a thread; returns (results, errors)."""
    import threading

    results, errors = [], []

    def one() -> None:
        try:
            results.append(call())
        except Exception as exc:  # noqa: BLE001 - returned to the test
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(times)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    return results, errors


def _unrun(value: dict) -> dict:
    """A run record's JSON without what names the run (its staged tables' key, its Message-ID) or
    says how it computed (the lifetime state it read)."""
    text = json.dumps(value, sort_keys=True, default=str)
    text = re.sub(r"(?<![0-9A-Za-z])\d{8}t\d{6}_[0-9a-f]{6}(?![0-9a-f])", "<run>", text)
    text = re.sub(r"<customer-performance\.[0-9a-f]+@", "<customer-performance.<run>@", text)
    out = json.loads(text)
    # how the run reached the lifetime summary (built the snapshot, or read it and recomputed the
    # changed customers) differs between two runs by nature, like their durations; the summary's
    # rows count, and everything computed from them, are compared
    ((out.get("extract_sales_db") or {}).get("customer_history") or {}).pop("state", None)
    return out


def snapshot(stack, schema: str = "analytics", dataset: str = "customer_performance") -> dict:
    """Every destination's rows for July 2025 (the analytics tables of ``schema``, the BI rows of
    ``dataset``), in a comparable form."""
    import psycopg
    import requests

    out = {}
    with psycopg.connect(pg_dsn(stack.analytics_db)) as conn:
        for t in TABLES:
            rows = conn.execute(f"SELECT * FROM {schema}.{t} WHERE report_month = '2025-07-01'").fetchall()
            cols = [d.name for d in conn.execute(f"SELECT * FROM {schema}.{t} LIMIT 0").description]
            # what differs between two runs by nature: the run, when it loaded, how long tasks took
            drop = {cols.index(c) for c in ("run_id", "loaded_at", "tasks") if c in cols}
            if "delivered" in cols:
                i = cols.index("delivered")
                rows = [(*r[:i], {k: {**v, "run_id": None} for k, v in r[i].items()}, *r[i + 1 :]) for r in rows]
                rows = [tuple(_unrun(v) if isinstance(v, dict) else v for v in r) for r in rows]
            out[t] = sorted((tuple(v for i, v in enumerate(r) if i not in drop) for r in rows), key=repr)
    headers = {"Authorization": f"Bearer {stack.bi_token}"}
    for t in BI_TABLES:
        resp = requests.get(
            f"http://127.0.0.1:{stack.bi_port}/datasets/{dataset}/tables/{t}/rows",
            params={"report_month": "2025-07"},
            headers=headers,
            timeout=10,
        )
        out[f"bi.{t}"] = sorted(map(repr, resp.json()["rows"]))
    return out


def dags_test(env: dict, logical_date: str) -> None:
    """``airflow dags test`` of the DAG for ``logical_date`` in a process of its own with ``env``;
    fails with the end of its output."""
    done = subprocess.run(
        [str(Path(sys.executable).parent / "airflow"), "dags", "test", "customer_performance", logical_date],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


@contextlib.contextmanager
def own_destinations(stack, prefix: str, exports: Path):
    """Settings giving a run analytics and staging schemas, a BI dataset and an export folder of
    its own (the session's July stays as the suite's run left it); the schemas dropped after.
    Yields ``(env, analytics schema, staging schema, BI dataset)``."""
    import psycopg

    tag = f"{prefix}_{uuid.uuid4().hex[:6]}"
    schema, staging, dataset = tag, f"{tag}_stg", tag
    env = {
        "CUSTOMER_PERFORMANCE_ANALYTICS_SCHEMA": schema,
        "CUSTOMER_PERFORMANCE_STAGING_SCHEMA": staging,
        "CUSTOMER_PERFORMANCE_BI_DATASET": dataset,
        "CUSTOMER_PERFORMANCE_EXPORT_LOCATION": str(exports),
        "CUSTOMER_PERFORMANCE_EXPORT_CREATE_LOCATION": "true",
    }
    try:
        yield env, schema, staging, dataset
    finally:
        with psycopg.connect(pg_dsn(stack.analytics_db), autocommit=True) as conn:
            for name in (schema, staging):
                conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")


@pytest.fixture(scope="session")
def july_dag(airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(ROOT / "dags")).dags["customer_performance"]


@pytest.fixture(scope="session")
def july_run(stack, july_dag):
    """The run that closes July 2025, once per session, and what it delivered right after."""
    mails_before = len(stack.mails())
    dr = july_dag.test(logical_date=LOGICAL_DATE)
    assert dr.state == "success"
    return {"snapshot": snapshot(stack), "mails": stack.mails()[mails_before:], "run_id": dr.run_id}
