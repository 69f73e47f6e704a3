"""Publishing never goes backwards (publishing.py): a partial month of a month published closed is
refused unless the run asks to replace it; a backfill's partial runs of past months are skipped.
The scheduler-level proof (every destination byte-identical, the UI's trigger and Backfill forms)
is in test_operations.py."""

from datetime import date, datetime

import psycopg
import pytest

from include.customer_performance import publishing
from include.customer_performance.run_notes import note_for
from include.customer_performance.runbook import advice
from include.customer_performance.staging import make_run

JULY_15 = datetime(2025, 7, 15, 2)
TODAY = date(2026, 12, 7)


def _record(dsn, rows):
    with psycopg.connect(dsn) as conn:
        conn.execute(
            "CREATE SCHEMA analytics; CREATE TABLE analytics.pipeline_runs (report_month date, period_start date,"
            " period_end date, run_id text, loaded_at timestamptz DEFAULT now(), delivered jsonb)"
        )
        for row in rows:  # loaded now: long after July 2025 ended
            conn.execute("INSERT INTO analytics.pipeline_runs VALUES (%s, %s, %s, %s, now(), %s)", row)


def _check(dsn, run):
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        publishing.check(cur, "analytics", run, run.replace_closed_month)


def test_a_partial_month_of_a_closed_month_is_refused_naming_the_way_out(pg_db):
    partial = make_run(JULY_15, "manual__2025-07-15", None, "cp_staging")
    _check(pg_db, partial)  # no record at all: nothing to protect
    _record(
        pg_db,
        [
            ("2025-07-01", "2025-07-01", "2025-07-10", "scheduled__2025-07-10", '{"bi_api": {}}'),
            ("2025-07-01", "2025-07-01", "2025-08-01", "backfill__2025-08-01", "{}"),  # recorded, nothing delivered
        ],
    )
    _check(pg_db, partial)  # July's close was never delivered: a partial July may be published
    with psycopg.connect(pg_db) as conn:
        conn.execute("UPDATE analytics.pipeline_runs SET delivered = '{\"analytics_db\": {}}'")
    with pytest.raises(publishing.ClosedMonthError) as err:
        _check(pg_db, partial)
    text = str(err.value)
    assert text.startswith("July 2025 was published closed (run backfill__2025-08-01, ")
    assert "this run reports 1-14 July 2025 (month to date)" in text and "nothing was delivered" in text
    assert "logical date 2025-08-01 02:00, or param report_month=2025-07" in text
    assert "replace_closed_month = true" in text
    assert advice(err.value, "extract_sales_db")[0] == "closed month"
    # a whole month published before it ended (a report_month run of the month under way) closes
    # nothing: the nightly runs of that month go on
    with psycopg.connect(pg_db) as conn:
        conn.execute(
            "INSERT INTO analytics.pipeline_runs VALUES ('2025-09-01', '2025-09-01', '2025-10-01', 'manual__early',"
            " '2025-09-15 08:00+00', '{\"analytics_db\": {}}')"
        )
    _check(pg_db, make_run(datetime(2025, 9, 20, 2), "scheduled__2025-09-20", None, "cp_staging"))
    # the month's close itself, a rerun of it, and a partial run asking to replace all go ahead
    _check(pg_db, make_run(datetime(2025, 8, 1, 2), "rerun", None, "cp_staging"))
    _check(pg_db, make_run(JULY_15, "manual", "2025-07", "cp_staging"))
    _check(pg_db, make_run(JULY_15, "manual", None, "cp_staging", replace_closed_month=True))


def test_a_backfill_skips_its_partial_runs_of_past_months_only():
    partial = make_run(JULY_15, "backfill__2025-07-15", None, "cp_staging")
    reason = publishing.skip_reason(partial, "backfill", TODAY)
    assert reason and reason.startswith("this backfill run reports 1-14 July 2025 (month to date)")
    assert publishing.skip_reason(partial, "manual", TODAY) is None  # the closed-month check judges those
    assert publishing.skip_reason(partial, "backfill", date(2025, 7, 20)) is None  # July not over yet
    close = make_run(datetime(2025, 8, 1, 2), "backfill__2025-08-01", None, "cp_staging")
    assert publishing.skip_reason(close, "backfill", TODAY) is None
    assert note_for(JULY_15, None, {}, "backfill").endswith(
        ": skipped, a backfill publishes whole months (their month-close runs)"
    )
    assert note_for(JULY_15, None, {}, "manual") == "1-14 July 2025 (month to date)"
