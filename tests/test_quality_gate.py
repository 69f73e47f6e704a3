"""The validation gate with GX Core on a real staged table."""

from datetime import UTC, datetime

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
            " churn_probability numeric DEFAULT 0.2, lifetime_purchases bigint DEFAULT 1,"
            " expected_purchases_12m numeric DEFAULT 1, clv_12m numeric DEFAULT 30, health_score numeric DEFAULT 60)"
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


def test_a_derived_figure_missing_for_most_buyers_stops_the_month_naming_it(pg_db):
    """Churn NULL for 30 of 50 customers who bought (a model switched off): critical, named; for
    half of them (20 of 40), or for customers who never bought, it is not."""
    rows = [(i, f"c{i}@example.com", "Europe", 1, 7) for i in range(1, 51)]
    run = staged_metrics(pg_db, rows)
    table = f"cp_staging.{run.table_name('customer_metrics')}"
    with psycopg.connect(pg_db) as conn:
        conn.execute(f"UPDATE {table} SET churn_probability = NULL WHERE customer_id <= 20")
        conn.execute(f"UPDATE {table} SET clv_12m = NULL, lifetime_purchases = 0 WHERE customer_id > 40")
    result, _ = gate(pg_db, run)
    assert result["summary"]["success"], [r.rule for r in result["critical"]]
    with psycopg.connect(pg_db) as conn:
        conn.execute(f"UPDATE {table} SET churn_probability = NULL, lifetime_purchases = 1 WHERE customer_id <= 30")
    result, _ = gate(pg_db, run)
    failed = {r.rule: r for r in result["critical"]}
    assert set(failed) == {"customer_metrics.churn_probability.derived"}
    assert failed["customer_metrics.churn_probability.derived"].failing_rows == 30
    with pytest.raises(QualityGateError, match=r"customer_metrics\.churn_probability\.derived"):
        raise_on_critical(result["critical"], run)


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
        low, high, stop = volume_bounds(cur, run, cfg)
    per_day = (3000 / 30 + 3100 / 31 + 3000 / 30) / 3  # the last three periods; January is older
    assert (low, high, stop) == (int(per_day * 31 * 0.7), int(per_day * 31 * 2.0) + 1, int(per_day * 31 * 0.4))


def test_nan_or_infinity_in_a_metric_is_critical_naming_column_and_key(pg_db):
    rows = [(i, f"c{i}@example.com", "Europe", 1, 7) for i in range(1, 51)]
    run = staged_metrics(pg_db, rows)
    with psycopg.connect(pg_db) as conn:
        table = f"cp_staging.{run.table_name('customer_metrics')}"
        conn.execute(f"UPDATE {table} SET avg_satisfaction = 'NaN' WHERE customer_id = 17")
        conn.execute(f"UPDATE {table} SET churn_probability = 'Infinity' WHERE customer_id = 23")
    result, _ = gate(pg_db, run)
    assert not result["summary"]["success"]
    named = {r.rule: r.examples for r in result["critical"]}
    assert named["customer_metrics.avg_satisfaction.finite"] == ["17"]
    assert named["customer_metrics.churn_probability.finite"] == ["23"]


# -- the outcome checks (quality/outcome.py) on a staged table of their own ----------------------
def outcome_of(dsn, rows, history=(), allow_empty=False, logical=datetime(2025, 8, 1, 2), **cfg_overrides):
    """judge() on a staged transactions-like table holding ``rows`` (updated_at values), with
    ``history`` as (period_start, period_end, staged transactions) of loaded runs."""
    import dataclasses
    import json as _json

    from include.customer_performance.config import Settings
    from include.customer_performance.quality.outcome import judge
    from include.customer_performance.quality.suites import Suite

    run = make_run(logical, "outcome_test", None, "cp_staging", allow_empty_sources=allow_empty)
    cfg = dataclasses.replace(Settings(), analytics_schema="analytics", **cfg_overrides)
    suite = Suite(
        "transactions",
        "flt_transactions",
        "transaction_id",
        (),
        not_empty=True,
        volume=True,
        freshness_column="updated_at",
    )
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("CREATE SCHEMA IF NOT EXISTS cp_staging; CREATE SCHEMA IF NOT EXISTS analytics")
        table = f"cp_staging.{run.table_name('flt_transactions')}"
        cur.execute(f"CREATE TABLE {table} (transaction_id text, updated_at timestamptz)")
        cur.executemany(f"INSERT INTO {table} VALUES (%s, %s)", rows)
        cur.execute(
            "CREATE TABLE analytics.pipeline_runs (period_start date, period_end date, row_counts jsonb,"
            " loaded_at timestamptz DEFAULT now())"
        )
        for start, end, n in history:
            counts = {"filter_period": {"transactions": {"rows_in": n, "rows_out": n}}}
            cur.execute("INSERT INTO analytics.pipeline_runs VALUES (%s, %s, %s)", (start, end, _json.dumps(counts)))
        return {r.rule: r for r in judge(cur, run, suite, [], cfg, len(rows))}


def test_an_empty_source_is_critical_and_its_freshness_fails(pg_db):
    out = outcome_of(pg_db, [], history=[("2025-06-01", "2025-07-01", 3100)])
    empty = out["transactions.not_empty"]
    assert (empty.severity, empty.success) == ("critical", False)
    assert "the previous loaded period had 3100 rows" in empty.detail and "allow_empty_sources" in empty.detail
    fresh = out["transactions.freshness"]
    assert (fresh.severity, fresh.success) == ("warning", False) and "no updated_at at all" in fresh.detail
    volume = out["transactions.volume"]
    assert (volume.severity, volume.success) == ("critical", False) and "0 rows in the period" in volume.detail


def test_an_empty_source_is_info_when_the_run_allows_it_or_the_last_period_was_empty(pg_db):
    allowed = outcome_of(pg_db, [], allow_empty=True)["transactions.not_empty"]
    assert (allowed.severity, allowed.success) == ("info", False) and "allow_empty_sources is set" in allowed.detail


def test_an_empty_source_after_an_empty_period_is_info(pg_db):
    out = outcome_of(pg_db, [], history=[("2025-05-01", "2025-06-01", 2900), ("2025-06-01", "2025-07-01", 0)])
    assert out["transactions.not_empty"].severity == "info"
    assert "(2025-06-01..2025-06-30) was empty too" in out["transactions.not_empty"].detail


def test_volume_and_freshness_pass_within_their_bounds_and_warn_outside(pg_db):
    rows = [(f"T{i}", datetime(2025, 7, 31, 12, tzinfo=UTC)) for i in range(100)]
    history = [("2025-06-01", "2025-07-01", 100)]  # about 3.3 a day: 31 days -> 51..207 expected
    out = outcome_of(pg_db, rows, history=history)
    assert out["transactions.not_empty"].success and out["transactions.volume"].success
    assert out["transactions.freshness"].success


def test_stale_source_warns(pg_db):
    rows = [(f"T{i}", datetime(2025, 7, 20, tzinfo=UTC)) for i in range(10)]
    out = outcome_of(pg_db, rows, history=[("2025-06-01", "2025-07-01", 3000)])
    assert not out["transactions.freshness"].success
    assert (
        "the latest updated_at is 2025-07-20 00:00; expected on or after 2025-07-30 00:00"
        in out["transactions.freshness"].detail
    )
    volume = out["transactions.volume"]  # 10 rows where 3100 came: a collapse stops the month
    assert not volume.success and volume.severity == "critical" and "2170 to 6201 expected" in volume.detail
    assert "fewer than 1240" in volume.detail


def test_a_third_of_the_month_lost_warns(pg_db):
    """2/3 of June's rows per day: a warning (the band starts at a fall of 30 %), not a stop."""
    rows = [(f"T{i}", datetime(2025, 7, 31, 12, tzinfo=UTC)) for i in range(2067)]
    volume = outcome_of(pg_db, rows, history=[("2025-06-01", "2025-07-01", 3000)])["transactions.volume"]
    assert (volume.severity, volume.success) == ("warning", False) and "2170 to" in volume.detail


def test_a_single_day_never_stops_on_volume(pg_db):
    """A tenth of the usual rows in a period of one day (the run of 2 July): a warning, as a single
    day's volume follows its weekday."""
    rows = [(f"T{i}", datetime(2025, 7, 1, 12, tzinfo=UTC)) for i in range(10)]
    out = outcome_of(pg_db, rows, history=[("2025-06-01", "2025-07-01", 3000)], logical=datetime(2025, 7, 2, 2))
    assert (out["transactions.volume"].severity, out["transactions.volume"].success) == ("warning", False)


def test_values_from_the_data_never_become_markup_in_the_data_docs(pg_db, tmp_path):
    """A source email that is HTML with a script: the gate's Data Docs, opened in headless
    Chromium, neither run it nor show it as markup; the report's examples are the rows' keys."""
    import json as _json
    import subprocess

    from tests.conftest import ROOT

    payload = '<img src="x" onerror="window.__xss=1">'
    rows = [(i, f"c{i}@example.com" if i != 3 else payload, "Europe", 1, 7) for i in range(1, 51)]
    run = staged_metrics(pg_db, rows)
    params = dict(p.split("=") for p in pg_db.split())
    url = f"postgresql+psycopg://{params['user']}@{params['host']}:{params['port']}/{params['dbname']}"
    docs = tmp_path / "docs"
    with psycopg.connect(pg_db) as conn, conn.cursor() as cur:
        results = run_suites(run, url, cur, (CUSTOMER_METRICS,), docs)
        conn.commit()
    fmt = next(r for r in results if r.rule == "customer_metrics.email.format")
    assert fmt.failing_rows == 1 and fmt.examples == ["3"]  # the key, not the address
    assert not any(payload in _json.dumps(r.examples) for r in results)
    out = tmp_path / "report.json"
    subprocess.run(
        ["node", "no_script.mjs", str(docs), str(out)], cwd=ROOT / "tests" / "browser", check=True, timeout=300
    )
    report = _json.loads(out.read_text())
    assert report["pages"] >= 2  # the index and the validation results
    assert report == {"pages": report["pages"], "ran": [], "markup": []}
    assert not any(payload in p.read_text() for p in docs.rglob("*.html"))
