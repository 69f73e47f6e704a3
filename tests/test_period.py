from datetime import UTC, date, datetime

import pytest

from include.customer_performance.period import ReportPeriod, month_close_dates, month_period, period_for


def at(y, m, d):
    return datetime(y, m, d, 2, tzinfo=UTC)


def test_run_on_first_of_month_closes_previous_month():
    p = period_for(at(2025, 8, 1))
    assert (p.start, p.end) == (date(2025, 7, 1), date(2025, 8, 1))
    assert p.is_complete_month
    assert p.label == "july2025"
    assert p.report_month == date(2025, 7, 1)


def test_mid_month_run_covers_month_to_date_through_yesterday():
    p = period_for(at(2025, 8, 15))
    assert (p.start, p.end) == (date(2025, 8, 1), date(2025, 8, 15))
    assert not p.is_complete_month
    assert str(p) == "2025-08-01..2025-08-14"


def test_second_of_month_covers_only_the_first():
    p = period_for(at(2025, 8, 2))
    assert (p.start, p.end) == (date(2025, 8, 1), date(2025, 8, 2))


def test_new_year_run_closes_december():
    p = period_for(at(2026, 1, 1))
    assert (p.start, p.end) == (date(2025, 12, 1), date(2026, 1, 1))
    assert p.previous_month == ReportPeriod(date(2025, 11, 1), date(2025, 12, 1))


def test_report_month_param_forces_whole_month():
    assert period_for(at(2025, 8, 15), "2025-02") == ReportPeriod(date(2025, 2, 1), date(2025, 3, 1))


@pytest.mark.parametrize("bad", ["2025-13", "2025-7", "July", "2025-00", ""])
def test_bad_report_month_is_rejected_with_the_value(bad):
    with pytest.raises(ValueError, match="YYYY-MM"):
        month_period(bad)


def test_month_close_dates_cover_the_range():
    assert month_close_dates("2024-11", "2025-02") == [
        date(2024, 12, 1),
        date(2025, 1, 1),
        date(2025, 2, 1),
        date(2025, 3, 1),
    ]
    with pytest.raises(ValueError):
        month_close_dates("2025-03", "2025-01")


def test_backfill_runs_each_month_close_at_the_scheduled_hour():
    from datetime import UTC, datetime

    from include.customer_performance.backfill import _json_list, month_close_logical_dates

    assert month_close_logical_dates("2025-11", "2026-01") == [
        datetime(2025, 12, 1, 2, tzinfo=UTC),
        datetime(2026, 1, 1, 2, tzinfo=UTC),
        datetime(2026, 2, 1, 2, tzinfo=UTC),
    ]
    out = '[2026-11-21T10:00:00] {dagbag.py} INFO - Filling up the DagBag\n[{"dag_id": "x", "state": "success"}]\n'
    assert _json_list(out) == [{"dag_id": "x", "state": "success"}]
    assert _json_list("No data found") is None


def test_backfill_refuses_months_before_the_dags_start_date(monkeypatch):
    """Airflow would mark such a run successful without running a task; the helper says so first
    (before it even asks Airflow anything: the airflow binary here does not exist)."""
    from include.customer_performance.backfill import BackfillError, backfill
    from include.customer_performance.config import settings

    monkeypatch.setenv("CUSTOMER_PERFORMANCE_DAG_START_DATE", "2025-01-01")
    settings.cache_clear()
    try:
        with pytest.raises(BackfillError) as err:
            backfill("2024-11", "2025-01", airflow="/nonexistent/airflow")
        msg = str(err.value)
        assert msg.startswith("2024-11: the month-close run would be before the DAG's start date 2025-01-01")
        assert "2024-12" not in msg  # closed on 2025-01-01, on the start date: allowed
        assert "CUSTOMER_PERFORMANCE_DAG_START_DATE" in msg
    finally:
        monkeypatch.delenv("CUSTOMER_PERFORMANCE_DAG_START_DATE")
        settings.cache_clear()


def test_the_default_start_date_reaches_decades_back():
    from include.customer_performance.backfill import refuse_before_start, start_date

    refuse_before_start([datetime(1970, 2, 1, 2, tzinfo=UTC)], start_date())  # no error: January 1970 can run


def test_each_period_says_what_it_is():
    assert period_for(at(2025, 8, 1)).describe() == "July 2025 (month close)"
    assert period_for(at(2025, 8, 15)).describe() == "1-14 August 2025 (month to date)"
    assert period_for(at(2025, 8, 2)).describe() == "1 August 2025 (month to date)"
    assert month_period("2025-02").describe() == "February 2025 (month close)"


def test_a_runs_note_says_which_period_it_reports():
    from include.customer_performance.run_notes import note_for

    assert note_for(at(2025, 8, 1), None, None) == "July 2025 (month close)"  # e.g. backfill__2025-08-01...
    assert note_for(at(2025, 8, 15), None, {}) == "1-14 August 2025 (month to date)"
    assert note_for(None, at(2026, 12, 1), {"report_month": "2025-02"}) == "February 2025 (month close)"
    assert note_for(None, None, {"report_month": "bad"}) is None
