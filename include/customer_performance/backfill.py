"""Backfill a range of months: one Airflow backfill per month-close run, one month after another.

The run that closes month M has logical date 02:00 UTC on the 1st of M + 1 (period.py), so each
month is an ``airflow backfill create`` of exactly that one logical date (with
``--reprocess-behavior completed``: a month already run is computed again). Airflow keeps one
active backfill per DAG, so each is created after the previous one has finished; the scheduler
runs them, and this waits for each and stops at the first month that fails.

    python -m include.customer_performance backfill --from 2025-01 --to 2025-06
"""

from __future__ import annotations

import json
import logging
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from datetime import time as dtime

from include.customer_performance.period import month_close_dates

log = logging.getLogger(__name__)

DAG_ID = "customer_performance"
RUN_HOUR = dtime(2, 0, tzinfo=UTC)  # the schedule, 0 2 * * *


class BackfillError(RuntimeError):
    pass


def month_close_logical_dates(first_month: str, last_month: str) -> list[datetime]:
    return [datetime.combine(d, RUN_HOUR) for d in month_close_dates(first_month, last_month)]


def _airflow(airflow: str, *args: str) -> str:
    out = subprocess.run([airflow, *args], capture_output=True, text=True)
    if out.returncode != 0:
        raise BackfillError(f"airflow {' '.join(args)} failed ({out.returncode}): {out.stderr.strip()[-2000:]}")
    return out.stdout


def _json_list(out: str) -> list[dict] | None:
    """The JSON list a CLI command printed with ``-o json`` (it may print log lines around it)."""
    for line in reversed(out.splitlines()):
        if line.startswith("[") and line.rstrip().endswith("]"):
            try:
                return json.loads(line)
            except ValueError:
                continue
    return None


def run_state(airflow: str, logical_date: datetime) -> str | None:
    """The state of the newest run of the DAG at ``logical_date``, or None when there is none."""
    runs = _json_list(_airflow(airflow, "dags", "list-runs", DAG_ID, "-o", "json")) or []
    mine = [r for r in runs if r.get("logical_date") and _same_instant(r["logical_date"], logical_date)]
    return mine[-1]["state"] if mine else None


def _same_instant(text: str, when: datetime) -> bool:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) == when


def is_paused(airflow: str) -> bool:
    out = _airflow(airflow, "dags", "list", "-o", "json", "--columns", "dag_id,is_paused")
    dags = _json_list(out)
    if dags is None:
        raise BackfillError(f"could not read the DAG list from airflow: {out[-500:]}")
    paused = {d.get("dag_id"): d.get("is_paused") for d in dags}
    if DAG_ID not in paused:
        raise BackfillError(f"{DAG_ID} is not in this Airflow; is the package in its dags folder?")
    return str(paused[DAG_ID]).lower() == "true"


def start_date() -> datetime:
    """The DAG's start date: the setting ``dag_start_date`` (the DAG file reads the same one; set
    ``CUSTOMER_PERFORMANCE_DAG_START_DATE`` alike where the DAG is parsed and where this runs)."""
    from include.customer_performance.config import settings

    return datetime.fromisoformat(settings().dag_start_date).replace(tzinfo=UTC)


def refuse_before_start(dates: list[datetime], start: datetime) -> None:
    """Airflow marks a run before the DAG's start date successful without running a task: say so
    instead of reporting a month that was never computed."""
    early = [d for d in dates if d < start]
    if early:
        months = ", ".join((d.date() - timedelta(days=1)).strftime("%Y-%m") for d in early)
        raise BackfillError(
            f"{months}: the month-close run would be before the DAG's start date {start.date()}, and Airflow runs"
            " no task before it. Set CUSTOMER_PERFORMANCE_DAG_START_DATE (YYYY-MM-DD) on the scheduler and the"
            " dag-processor to a date on or before the first month's close, then backfill again"
        )


def backfill(
    first_month: str,
    last_month: str,
    airflow: str = "airflow",
    poll_seconds: float = 10,
    timeout_per_month: float = 6 * 3600,
    on_done: Callable[[str, str], None] | None = None,
) -> dict[str, str]:
    """Backfill the months ``first_month`` .. ``last_month`` (``YYYY-MM``), oldest first; returns
    ``{month: state}``. Raises BackfillError at the first month that does not succeed."""
    dates = month_close_logical_dates(first_month, last_month)
    refuse_before_start(dates, start_date())
    if is_paused(airflow):
        raise BackfillError(
            f"{DAG_ID} is paused: the scheduler starts no run of a paused DAG, backfills included."
            f" Unpause it (airflow dags unpause {DAG_ID}), then run the backfill again"
        )
    states = {}
    for logical_date in dates:
        month = (logical_date.date() - timedelta(days=1)).strftime("%Y-%m")
        stamp = logical_date.isoformat()
        log.info("backfilling %s: airflow backfill create for logical date %s", month, stamp)
        create = ["backfill", "create", "--dag-id", DAG_ID, "--from-date", stamp, "--to-date", stamp]
        create += ["--reprocess-behavior", "completed", "--max-active-runs", "1"]
        deadline = time.monotonic() + timeout_per_month
        while True:
            try:
                _airflow(airflow, *create)
                break
            except BackfillError as exc:
                # the previous month's backfill is marked complete a scheduler loop after its run
                if "AlreadyRunningBackfill" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(poll_seconds)
        deadline = time.monotonic() + timeout_per_month
        state = None
        while time.monotonic() < deadline:
            state = run_state(airflow, logical_date)
            if state in ("success", "failed"):
                break
            time.sleep(poll_seconds)
        states[month] = state or "not started"
        if on_done:
            on_done(month, states[month])
        if state != "success":
            raise BackfillError(
                f"{month} (logical date {stamp}) ended {states[month]}; fix it (the run's failed task says how),"
                f" then backfill from {month} again"
            )
    return states
