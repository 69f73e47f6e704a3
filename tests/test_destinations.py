"""The three destinations on the real PostgreSQL, BI stand-in and SMTP sink: migrations,
partitions, retention, the advisory lock, the BI push under faults, the export location and the
report CLI. The July run of the session (conftest.july_run) is what they read."""

from __future__ import annotations

import csv
import email
import io
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from datetime import UTC, date, datetime

import psycopg
import pytest
import requests

from dev.stack import pg_dsn
from include.customer_performance.config import settings
from include.customer_performance.export.csv_email import (
    COMPARISON_ORDER,
    DQ_ORDER,
    FORMULA_PREFIXES,
    INTERACTION_ORDER,
    attachments,
    file_names,
    should_email,
    storage_path,
    write_csvs,
)
from include.customer_performance.http_client import ApiClient, ApiError
from include.customer_performance.load import analytics_db
from include.customer_performance.load.bi_api import push
from include.customer_performance.migrations import MigrationError, migrate, migrations
from include.customer_performance.period import ReportPeriod
from include.customer_performance.staging import Run, make_run
from tests.conftest import LOGICAL_DATE, ROOT, TABLES, snapshot


@pytest.fixture(scope="module")
def run(july_run) -> Run:
    return make_run(LOGICAL_DATE, july_run["run_id"], None, settings().staging_schema)


def control(port: int, method: str, path: str, body=None):
    resp = requests.request(method, f"http://127.0.0.1:{port}/_control/{path}", json=body, timeout=5)
    resp.raise_for_status()
    return resp.json()


def analytics_rows(stack) -> dict:
    return {k: v for k, v in snapshot(stack).items() if not k.startswith("bi.")}


# -- analytics database ----------------------------------------------------------------------


def test_migrations_apply_once_in_order_and_refuse_an_edited_file(pg_db, tmp_path):
    names = [f"{m.version:04d}_{m.name}" for m in migrations()]
    assert names == sorted(names) and len(names) >= 3
    with psycopg.connect(pg_db) as conn, conn.cursor() as cur:
        assert migrate(cur, "analytics") == names
        assert migrate(cur, "analytics") == []  # idempotent
        cur.execute("SELECT version FROM analytics.schema_migrations ORDER BY 1")
        assert [r[0] for r in cur.fetchall()] == [m.version for m in migrations()]
        conn.commit()
    edited = tmp_path / "migrations"
    shutil.copytree(ROOT / "include" / "customer_performance" / "migrations", edited)
    first = sorted(edited.glob("0001_*.sql"))[0]
    first.write_text(first.read_text() + "\n-- edited\n")
    (edited / "0099_more.sql").write_text("CREATE TABLE {schema}.extra (x int);")
    with psycopg.connect(pg_db) as conn, conn.cursor() as cur:
        with pytest.raises(MigrationError, match="0001_partitioned_tables was changed after it was applied"):
            migrate(cur, "analytics", edited)
        conn.rollback()
        first.write_text(first.read_text().replace("\n-- edited\n", ""))
        assert migrate(cur, "analytics", edited) == ["0099_more"]


def test_each_month_is_a_partition_with_the_indexes(stack, run):
    with psycopg.connect(pg_dsn(stack.analytics_db)) as conn:
        for table in TABLES:
            parts = [
                r[0]
                for r in conn.execute(
                    "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                    " WHERE i.inhparent = %s::regclass",
                    (f"analytics.{table}",),
                )
            ]
            assert f"{table}_2025_07" in parts, table
            n = conn.execute(f"SELECT count(*) FROM analytics.{table}_2025_07").fetchone()[0]
            assert (
                n
                == conn.execute(f"SELECT count(*) FROM analytics.{table} WHERE report_month = '2025-07-01'").fetchone()[
                    0
                ]
            )
        plan = "\n".join(
            r[0]
            for r in conn.execute(
                "EXPLAIN SELECT * FROM analytics.customer_performance WHERE report_month = '2025-07-01'"
                " AND customer_id = 42"
            )
        )
        assert "customer_performance_2025_07" in plan and "Index" in plan


def test_latest_views_show_the_closed_month(stack, run):
    with psycopg.connect(pg_dsn(stack.analytics_db)) as conn:
        assert conn.execute("SELECT report_month FROM analytics.latest_complete_month").fetchone()[0] == date(
            2025, 7, 1
        )
        for view, table in (
            ("customer_performance_latest", "customer_performance"),
            ("regional_summary_latest", "regional_summary"),
        ):
            got = conn.execute(f"SELECT count(*) FROM analytics.{view}").fetchone()[0]
            want = conn.execute(f"SELECT count(*) FROM analytics.{table} WHERE report_month = '2025-07-01'").fetchone()[
                0
            ]
            assert got == want > 0


def test_retention_drops_old_partitions_only(pg_db):
    schema = "analytics"
    current = Run(ReportPeriod(date(2025, 7, 1), date(2025, 8, 1)), "k", "run", "cp_staging")
    with psycopg.connect(pg_db) as conn, conn.cursor() as cur:
        migrate(cur, schema)
        for month in (date(2023, 6, 1), date(2023, 7, 1), date(2023, 8, 1), date(2025, 7, 1)):
            r = Run(ReportPeriod(month, month), "k", "run", "cp_staging")
            for table in TABLES:
                analytics_db.ensure_partition(cur, schema, table, r)
        cur.execute(
            "INSERT INTO analytics.pipeline_runs (report_month, period_start, period_end, run_id, row_counts,"
            " quality, kpis) VALUES ('2025-07-01', '2025-07-01', '2025-08-01', 'r', '{}', '{}', '{}')"
        )
        dropped = analytics_db.drop_expired_partitions(cur, schema, current, 24)
        assert sorted(dropped) == sorted(f"{t}_2023_06" for t in TABLES)
        # a backfill of a month older than the retention keeps the month it loads
        old = Run(ReportPeriod(date(2023, 7, 1), date(2023, 8, 1)), "k", "run", "cp_staging")
        dropped = analytics_db.drop_expired_partitions(cur, schema, old, 12)
        assert sorted(dropped) == sorted(f"{t}_2023_08" for t in TABLES)
        cur.execute("SELECT to_regclass('analytics.customer_performance_2023_07')")
        assert cur.fetchone()[0] is not None


def test_two_loads_of_one_month_are_serialised(stack, run):
    """The second load waits on the month's advisory lock until the first commits; the month
    then holds one copy of the rows, not two."""
    cfg = settings()
    before = analytics_rows(stack)
    first = psycopg.connect(pg_dsn(stack.analytics_db))
    with first.cursor() as cur:
        analytics_db.publish(cur, run, cfg.analytics_schema)
    done = threading.Event()

    def second():
        with psycopg.connect(pg_dsn(stack.analytics_db)) as conn, conn.cursor() as cur:
            analytics_db.publish(cur, run, cfg.analytics_schema)
            conn.commit()
        done.set()

    t = threading.Thread(target=second)
    t.start()
    try:
        time.sleep(1.5)
        assert not done.is_set(), "the second load did not wait for the first"
        with psycopg.connect(pg_dsn(stack.analytics_db)) as probe:
            waiting = probe.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            ).fetchone()[0]
        assert waiting == 1
    finally:
        first.commit()
        first.close()
    t.join(30)
    assert done.is_set()
    after = analytics_rows(stack)
    assert after == before


# -- BI push ------------------------------------------------------------------------------------


def inject(stack, *faults: dict) -> None:
    """Replace the BI stand-in's queued faults with ``faults``."""
    control(stack.bi_port, "DELETE", "faults")
    if faults:
        control(stack.bi_port, "POST", "faults", list(faults))


def bi_client(stack, **kwargs) -> ApiClient:
    return ApiClient(f"http://127.0.0.1:{stack.bi_port}", stack.bi_token, "bi_api", **kwargs)


def test_bi_429_then_success_delivers_every_row_once(stack, run, caplog):
    expected = snapshot(stack)
    inject(stack, {"status": 429, "retry_after": 1, "method": "PUT", "path": "/tables/performance_trends/batches"})
    caplog.set_level(logging.DEBUG)
    with psycopg.connect(pg_dsn(stack.analytics_db)) as conn:
        sent = push(conn, run, bi_client(stack), "customer_performance", 10_000)
    log = control(stack.bi_port, "GET", "requests")
    posts = [e for e in log if e["method"] == "PUT" and "performance_trends" in e["path"]]
    assert [e["status"] for e in posts][-2:] == [429, 200]
    assert "429 Too Many Requests; retrying in 1.0s" in caplog.text
    assert stack.bi_token not in caplog.text
    got = snapshot(stack)
    assert got["bi.performance_trends"] == expected["bi.performance_trends"]
    assert sent["performance_trends"] == len(expected["performance_trends"])
    assert len(set(got["bi.performance_trends"])) == len(got["bi.performance_trends"])  # no row twice


def test_bi_batches_stay_under_the_limit(stack, run):
    inject(stack)
    before = len(control(stack.bi_port, "GET", "requests"))
    with psycopg.connect(pg_dsn(stack.analytics_db)) as conn:
        sent = push(conn, run, bi_client(stack), "customer_performance", 40, ("performance_trends",))
    posts = [e for e in control(stack.bi_port, "GET", "requests")[before:] if e["method"] == "PUT"]
    assert len(posts) == -(-sent["performance_trends"] // 40) > 1
    assert snapshot(stack)["bi.performance_trends"]


def test_a_failed_push_leaves_the_analytics_db_alone_and_a_retry_completes(stack, run):
    expected = snapshot(stack)
    inject(stack, {"status": 503, "times": 3, "method": "PUT", "path": "/regional_summary/batches"})
    with psycopg.connect(pg_dsn(stack.analytics_db)) as conn:
        with pytest.raises(ApiError, match="still failing after 3 attempts"):
            push(conn, run, bi_client(stack, max_attempts=3, backoff=0.01), "customer_performance", 10_000)
    assert analytics_rows(stack) == {k: v for k, v in expected.items() if not k.startswith("bi.")}
    with psycopg.connect(pg_dsn(stack.analytics_db)) as conn:  # the task retried alone
        push(conn, run, bi_client(stack), "customer_performance", 10_000)
    assert snapshot(stack) == expected


def test_bi_tables_are_configurable_and_checked(stack, run):
    with psycopg.connect(pg_dsn(stack.analytics_db)) as conn:
        with pytest.raises(ValueError, match="unknown table\\(s\\) nope; the BI tables are kpis"):
            push(conn, run, bi_client(stack), "customer_performance", 10_000, ("kpis", "nope"))
        sent = push(conn, run, bi_client(stack), "other_dataset", 10_000, ("kpis",))
    assert sent == {"kpis": 1}
    assert stack.bi_rows("other_dataset") == {"kpis": 1}


# -- CSV export ---------------------------------------------------------------------------------


def test_attachments_parse_back_to_the_analytics_rows(stack, july_run):
    """Every cell of the attached files equals the analytics table's as a spreadsheet should take
    it, worked out here: money to cents and other fractions to 4 decimals (half away from zero),
    an empty label of a column the row groups by written unknown, the formula guard; each
    regional file one grouping level."""
    from decimal import ROUND_HALF_UP, Decimal

    from include.customer_performance.export.csv_email import REGIONAL_LEVELS, regional_columns, regional_file
    from include.customer_performance.glossary import decimals

    msg = email.message_from_bytes(july_run["mails"][0].read_bytes())
    files = {p.get_filename(): p.get_payload(decode=True).decode("utf-8") for p in msg.walk() if p.get_filename()}
    checks = {
        "customer_performance_july2025.csv": ("customer_performance", "customer_id", "TRUE", None),
        "data_quality_report_july2025.csv": ("data_quality_results", DQ_ORDER, "score IS NULL", None),
        "period_comparison_july2025.csv": ("period_comparison", COMPARISON_ORDER, "TRUE", None),
        "interaction_summary_july2025.csv": ("interaction_summary", INTERACTION_ORDER, "TRUE", None),
    }
    for level, keys in REGIONAL_LEVELS.items():
        checks[f"{regional_file(level)}_july2025.csv"] = (
            "regional_summary",
            ", ".join(keys) or "grouping_level",
            f"grouping_level = '{level}'",
            keys,
        )

    def expected(column: str, value, row: dict, level_keys) -> str:
        if value is None:
            if column in ("region", "country", "state", "segment", "product_category", "crm_segment"):
                grouped = (
                    level_keys is not None
                    or "grouping_level" not in row
                    or (column in (row["grouping_level"] or "").split("+"))
                )
                return "unknown" if grouped else ""
            if column == "label":
                return "unknown" if row["grouping_level"] != "total" else ""
            if column in ("interaction_type", "department", "priority", "resolution_status"):
                return "unknown" if column in row["grouping_level"].split("+") else ""
            return ""
        if isinstance(value, bool):
            return "t" if value else "f"
        if isinstance(value, datetime):  # as PostgreSQL writes a timestamptz in UTC
            return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") + "+00"
        if isinstance(value, Decimal | float):
            places = decimals(column)
            if places is None:
                return str(value)
            return str(Decimal(value).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP))
        if isinstance(value, dict | list):
            import json

            return json.dumps(value)
        text = str(value)
        return "'" + text if text.startswith(FORMULA_PREFIXES) else text

    with psycopg.connect(pg_dsn(stack.analytics_db)) as conn:
        for name, (table, order, where, level_keys) in checks.items():
            attached = list(csv.DictReader(io.StringIO(files[name])))
            cols = list(attached[0]) if attached else []
            assert "email" not in cols and "phone" not in cols
            if level_keys is not None:
                level = name.removeprefix("regional_summary_").removesuffix("_july2025.csv")
                assert cols == list(
                    regional_columns(next(lv for lv in REGIONAL_LEVELS if lv.replace("+", "_") == level))
                )
            cur = conn.execute(
                f"SELECT * FROM analytics.{table} WHERE report_month = '2025-07-01' AND {where} ORDER BY {order}"
            )
            names = [d.name for d in cur.description]
            stored = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
            assert len(attached) == len(stored) > 0, name
            for got, row in zip(attached, stored, strict=True):
                want = {c: expected(c, row[c], row, level_keys) for c in cols}
                if "examples" in want:  # jsonb as PostgreSQL writes it
                    want["examples"] = got["examples"] if json_equal(got["examples"], row["examples"]) else "?"
                assert got == want, name


def json_equal(text: str, value) -> bool:
    import json

    return json.loads(text) == value


def _is_number(v: str) -> bool:
    try:
        float(v)
    except ValueError:
        return False
    return True


def test_exports_go_to_any_object_storage_path(stack, run, tmp_path):
    from airflow.sdk.io import attach
    from fsspec.implementations.memory import MemoryFileSystem

    attach("memory", fs=MemoryFileSystem())
    folder = storage_path("memory://exports/customer_performance") / "2025-07"
    with psycopg.connect(pg_dsn(stack.analytics_db)) as conn:
        files = write_csvs(conn, run, folder)
    assert sorted(p.name for p in folder.iterdir()) == sorted(file_names(run).values())
    assert len(file_names(run)) == 15 and "regional_summary_region_july2025.csv" in file_names(run).values()
    with storage_path(files["customer_performance"]["path"]).open("rb") as fh:
        assert sum(1 for _ in fh) == files["customer_performance"]["rows"] + 1
    attached, linked = attachments(files, 10 * 2**20, tmp_path)
    assert linked == [] and all(os.path.exists(p) for p in attached)  # copied out for the SMTP hook
    attached, linked = attachments(files, 1000, tmp_path)  # too large even compressed: linked
    assert attached == [] and all(link.startswith("memory://") and link.endswith(".csv.gz") for link in linked)


@pytest.mark.parametrize(
    ("policy", "complete", "manual", "expected"),
    [
        ("month_close", True, False, True),
        ("month_close", False, False, False),
        ("month_close", False, True, True),
        ("daily", False, False, True),
        ("manual", True, False, False),
        ("manual", False, True, True),
    ],
)
def test_email_policy(policy, complete, manual, expected):
    assert should_email(policy, complete, manual)[0] is expected


# -- report CLI ---------------------------------------------------------------------------------


def cli(stack, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "AIRFLOW_CONN_ANALYTICS_DB": f"postgresql://postgres@127.0.0.1:5432/{stack.analytics_db}"}
    return subprocess.run(
        [sys.executable, "-m", "include.customer_performance", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_report_cli_prints_the_executive_dashboard(stack, july_run):
    out = cli(stack, "report", "--month", "2025-07")
    assert out.returncode == 0, out.stderr
    with psycopg.connect(pg_dsn(stack.analytics_db)) as conn:
        customers, revenue = conn.execute(
            "SELECT count(*), sum(revenue) FROM analytics.customer_performance WHERE report_month = '2025-07-01'"
        ).fetchone()
        tickets = conn.execute(
            "SELECT kpis->>'tickets' FROM analytics.pipeline_runs WHERE report_month = '2025-07-01'"
        ).fetchone()[0]
    text = out.stdout
    for section in ("CUSTOMER OVERVIEW", "SUPPORT PERFORMANCE", "CUSTOMER SATISFACTION", "SEGMENTS", "HEALTH BANDS"):
        assert section in text
    assert f"Customers: {customers:,}" in text
    assert f"Revenue: {revenue:,.2f} USD" in text
    assert f"Tickets: {int(tickets):,}" in text
    assert cli(stack, "report").stdout == text  # the latest complete month by default


def test_report_cli_says_when_a_month_is_not_loaded(stack, july_run):
    out = cli(stack, "report", "--month", "2024-02")
    assert out.returncode == 2 and "2024-02 has not been loaded into analytics" in out.stderr
    out = cli(stack, "report", "--month", "July")
    assert out.returncode == 2 and "report_month must look like YYYY-MM" in out.stderr


def test_the_run_record_has_every_task_and_destination(stack, july_run):
    with psycopg.connect(pg_dsn(stack.analytics_db)) as conn:
        tasks, delivered, quality = conn.execute(
            "SELECT tasks, delivered, quality FROM analytics.pipeline_runs WHERE report_month = '2025-07-01'"
        ).fetchone()
        customers = conn.execute(
            "SELECT count(*) FROM analytics.customer_performance WHERE report_month = '2025-07-01'"
        ).fetchone()[0]
    from include.customer_performance.runbook import TASKS

    assert set(tasks) == set(TASKS)
    for task, t in tasks.items():
        assert t["seconds"] is not None and t["seconds"] >= 0, task
        assert t["rows_out"] > 0, task
    assert tasks["calculate"]["rows_out"] == customers == tasks["aggregate"]["rows_in"]
    assert tasks["filter_period"]["rows_out"] == tasks["calculate"]["rows_in"]
    assert tasks["validate"]["rows_out"] == tasks["validate"]["rows_in"] - quality["quarantined_rows"]
    assert delivered["analytics_db"]["rows"]["customer_performance"] == customers
    assert delivered["bi_api"]["rows"]["kpis"] == 1 and delivered["bi_api"]["dataset"] == "customer_performance"
    assert sorted(delivered["csv_export"]["files"]) == sorted(file_names(make_run(LOGICAL_DATE, "x", None, "x")))
    assert delivered["email"]["to"] == ["stakeholders@example.com"]
    assert {d["run_id"] for d in delivered.values()} == {july_run["run_id"]}
