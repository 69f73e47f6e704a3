"""Publishing never goes backwards: a month published closed is not replaced by a part of it.

A run reports month-to-date of the month before its logical date's day (period.py), so a run for a
past day of a month (a UI backfill of daily runs, a manual trigger with an old logical date, a
cleared old run) reports a partial month. Two rules, checked by every task before it works:

- **A partial month of a month already published closed** (``pipeline_runs`` holds the month's
  close, loaded after the month ended, with a destination delivered) fails at once with
  ``ClosedMonthError``: nothing reaches a destination, and the error says how to report the month
  instead. The run's param ``replace_closed_month`` replaces the closed month anyway.
- **A backfill reports whole months.** A backfill run whose period is a partial month that has
  already ended (the UI's Backfill form creates one run a day) is skipped with the reason in its
  log, so a backfill over past months publishes only their month closes (the 1st's runs).
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from psycopg import sql

from include.customer_performance.staging import Run


class ClosedMonthError(RuntimeError):
    """The run's period is a part of a month already published closed."""


def is_partial(run: Run) -> bool:
    p = run.period
    return not (p.is_complete_month and p.start == p.month_start)


def month_over(run: Run, today: date | None = None) -> bool:
    """The period's month has ended by ``today`` (default: today, UTC, by the clock: a backfill runs
    long after its logical date; this decides what to publish, never a figure)."""
    from include.customer_performance.period import add_months

    return add_months(run.period.month_start, 1) <= (today or datetime.now(UTC).date())


def closed_publication(cur, schema: str, run: Run) -> tuple[str, object] | None:
    """``(run_id, loaded_at)`` of the month close of the run's month published to a destination
    after the month ended, or None (a ``report_month`` run of the month still under way published
    the whole month early: it closes nothing, and the nightly runs go on replacing it)."""
    from include.customer_performance.period import add_months

    cur.execute("SELECT to_regclass(%s)", (f"{schema}.pipeline_runs",))
    if cur.fetchone()[0] is None:
        return None
    month = run.period.month_start
    cur.execute(
        sql.SQL(
            "SELECT run_id, loaded_at FROM {} WHERE report_month = %s AND period_start = %s AND period_end = %s"
            " AND delivered <> '{{}}'::jsonb AND loaded_at >= period_end::timestamp AT TIME ZONE 'UTC'"
            " ORDER BY loaded_at DESC LIMIT 1"
        ).format(sql.Identifier(schema, "pipeline_runs")),
        (month, month, add_months(month, 1)),
    )
    return cur.fetchone()


def skip_reason(run: Run, run_type: str | None, today: date | None = None) -> str | None:
    """Why this run publishes nothing (a backfill's partial run of a past month), or None."""
    if run_type == "backfill" and is_partial(run) and month_over(run, today):
        month = run.period.describe()
        return (
            f"this backfill run reports {month}, a part of a month that has ended: a backfill publishes whole"
            " months only, through their month-close runs (logical date 02:00 on the 1st of the next month)."
            " Skipped; to backfill months, use `python -m include.customer_performance backfill --from YYYY-MM"
            " --to YYYY-MM` (or the UI's Backfill form over the 1st-of-month dates)"
        )
    return None


def check(cur, schema: str, run: Run, replace: bool) -> None:
    """Raise ClosedMonthError when the run would replace a closed month with a part of it."""
    if not is_partial(run) or replace:
        return
    closed = closed_publication(cur, schema, run)
    if closed is None:
        return
    run_id, loaded_at = closed
    month = run.period.month_start
    raise ClosedMonthError(
        f"{month:%B %Y} was published closed (run {run_id}, {loaded_at:%Y-%m-%d %H:%M} UTC); this run reports"
        f" {run.period.describe()} and would replace it with a part of the month, so nothing was delivered."
        f" To report {month:%B %Y}, run its month close (logical date {_close_date(run)} 02:00, or param"
        f" report_month={month:%Y-%m}); to replace the closed month with this part anyway, trigger the run"
        " with param replace_closed_month = true"
    )


def _close_date(run: Run) -> str:
    from include.customer_performance.period import add_months

    return add_months(run.period.month_start, 1).isoformat()
