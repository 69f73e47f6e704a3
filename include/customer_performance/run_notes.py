"""A note on every run of the DAG saying which period it reports ("July 2025 (month close)",
"1-14 August 2025 (month to date)"), shown in the UI's grid and runs list: a backfill run's id names
its logical date (the 1st of the next month), not the month it reports.

An Airflow listener (registered by the plugin in ``plugins/``), called by the scheduler when a run
starts; a note someone already wrote is left alone.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from airflow.listeners import hookimpl

from include.customer_performance.period import add_months, period_for

DAG_ID = "customer_performance"
log = logging.getLogger(__name__)


def note_for(logical_date, run_after, conf: dict | None, run_type: str | None = None) -> str | None:
    """The note of a run: its period in words, or None when it cannot be told (no date); a
    backfill's partial run of a past month says it is skipped (publishing.skip_reason)."""
    anchor = logical_date or run_after
    month = (conf or {}).get("report_month")
    if anchor is None and not month:
        return None
    try:
        period = period_for(anchor, month)
    except ValueError:  # an invalid report_month: the run's params validation says so
        return None
    note = period.describe()
    whole = period.is_complete_month and period.start == period.month_start
    if run_type == "backfill" and not whole and add_months(period.month_start, 1) <= datetime.now(UTC).date():
        note += ": skipped, a backfill publishes whole months (their month-close runs)"
    return note


@hookimpl
def on_dag_run_running(dag_run, msg):
    if getattr(dag_run, "dag_id", None) != DAG_ID or getattr(dag_run, "note", None):
        return
    try:
        note = note_for(
            dag_run.logical_date, getattr(dag_run, "run_after", None), dag_run.conf, getattr(dag_run, "run_type", None)
        )
        if note:
            dag_run.note = note
    except Exception:  # a note is never worth failing the scheduler's loop for
        log.exception("could not set the period note of run %s", getattr(dag_run, "run_id", "?"))
