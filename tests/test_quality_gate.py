"""The validation gate with GX Core on a real staged table."""

from datetime import datetime

import psycopg
import pytest

from include.customer_performance.quality.gate import (
    CRITICAL,
    QualityGateError,
    raise_on_critical,
    run_suites,
    store_results,
)
from include.customer_performance.quality.suites import CUSTOMER_METRICS
from include.customer_performance.staging import make_run


def staged_metrics(dsn, rows):
    run = make_run(datetime(2025, 8, 1, 2), "gate_test", None, "cp_staging")
    with psycopg.connect(dsn) as conn:
        conn.execute("CREATE SCHEMA cp_staging")
        conn.execute(
            f"CREATE TABLE cp_staging.{run.table_name('customer_metrics')} (customer_id bigint, email text,"
            " region text, transaction_count bigint, avg_satisfaction numeric, engagement_score numeric DEFAULT 50,"
            " churn_probability numeric DEFAULT 0.2)"
        )
        with conn.cursor() as cur:
            cur.executemany(
                f"INSERT INTO cp_staging.{run.table_name('customer_metrics')}"
                " (customer_id, email, region, transaction_count, avg_satisfaction) VALUES (%s, %s, %s, %s, %s)",
                rows,
            )
    return run


def gate(dsn, run):
    params = dict(p.split("=") for p in dsn.split())
    url = f"postgresql+psycopg://{params['user']}@{params['host']}:{params['port']}/{params['dbname']}"
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        results = run_suites(run, url, cur, (CUSTOMER_METRICS,))
        summary = store_results(cur, run, results, {})
        result = {"summary": summary, "critical": [r for r in results if r.severity == CRITICAL and not r.success]}
        conn.commit()
        rows = conn.execute(
            f"SELECT expectation, column_name, success FROM cp_staging.dq_results_{run.key}"
            " WHERE expectation NOT LIKE '%%_score'"  # the per-table scores are rows of the report too
        )
        return result, rows.fetchall()


def test_clean_data_passes_and_the_report_is_stored(pg_db):
    run = staged_metrics(pg_db, [(i, f"c{i}@example.com", "Europe", i % 3, 7) for i in range(1, 51)])
    result, report = gate(pg_db, run)
    assert result["summary"]["success"] and not result["critical"]
    assert len(report) == result["summary"]["checks"] > 5
    assert all(ok for _, _, ok in report)
    raise_on_critical(result["critical"], run)  # nothing to raise


def test_critical_failures_stop_the_run_naming_what_failed(pg_db):
    rows = [(i, f"c{i}@example.com" if i % 10 else None, "Europe", 1, 7) for i in range(1, 51)]
    rows.append((7, "dup@example.com", "Europe", 1, 7))  # customer 7 twice
    run = staged_metrics(pg_db, rows)
    result, report = gate(pg_db, run)
    assert not result["summary"]["success"]
    failed = {(e, c) for e, c, ok in report if not ok}
    assert ("expect_column_values_to_be_unique", "customer_id") in failed
    assert ("expect_column_values_to_not_be_null", "email") in failed  # 10 % null < 95 % complete
    with pytest.raises(QualityGateError) as err:
        raise_on_critical(result["critical"], run)
    msg = str(err.value)
    assert "no destination was touched" in msg
    assert (
        "expect_column_values_to_be_unique (customer_metrics.customer_id.unique) on customer_metrics,"
        " column customer_id: 2 of 51 rows fail" in msg
    )
    assert "examples: ['7', '7']" in msg
    assert "column email: 5 of 51 rows fail" in msg


def test_warnings_are_reported_without_stopping(pg_db):
    rows = [
        (i, "not-an-email" if i == 3 else f"c{i}@example.com", "Europe", 1, 12 if i == 4 else 7) for i in range(1, 51)
    ]
    result, report = gate(pg_db, staged_metrics(pg_db, rows))
    assert result["summary"]["success"]
    assert result["summary"]["failed"] == 2
    assert {c for _, c, ok in report if not ok} == {"email", "avg_satisfaction"}


def test_volume_bounds_come_from_recent_periods(pg_db):
    import dataclasses
    import json as _json

    from include.customer_performance.config import Settings
    from include.customer_performance.quality.outcome import volume_bounds

    run = make_run(datetime(2025, 8, 1, 2), "volume_test", None, "cp_staging")
    cfg = dataclasses.replace(Settings(), analytics_schema="analytics")
    with psycopg.connect(pg_db) as conn, conn.cursor() as cur:
        assert volume_bounds(cur, run, cfg) is None  # no history yet
        cur.execute(
            "CREATE SCHEMA analytics; CREATE TABLE analytics.pipeline_runs"
            " (period_start date, period_end date, row_counts jsonb, loaded_at timestamptz DEFAULT now())"
        )
        for start, end, rows in (
            ("2025-04-01", "2025-05-01", 3000),
            ("2025-05-01", "2025-06-01", 3100),
            ("2025-06-01", "2025-07-01", 3000),
            ("2025-01-01", "2025-02-01", 99999),
        ):
            counts = {"extract_sales_db": {"transactions": {"rows": rows}}}
            cur.execute("INSERT INTO analytics.pipeline_runs VALUES (%s, %s, %s)", (start, end, _json.dumps(counts)))
        low, high = volume_bounds(cur, run, cfg)
    per_day = (3000 / 30 + 3100 / 31 + 3000 / 30) / 3  # the last three periods; January is older
    assert (low, high) == (int(per_day * 31 * 0.5), int(per_day * 31 * 2.0) + 1)
