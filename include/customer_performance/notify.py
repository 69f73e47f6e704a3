"""Who hears about trouble: a failed task (after its retries) and a run past its deadline.

By default both are emails to ``alert_email_to`` through the SMTP connection, using the SMTP
provider's notifier. ``failure_notifier`` swaps in any other Airflow notifier for failed tasks.
"""

from __future__ import annotations

import html
from datetime import timedelta

from include.customer_performance.runbook import TASKS

DEADLINE_SUBJECT = "[Customer Performance] run {{ dag_run.dag_run_id }} missed its deadline"
DEADLINE_HTML = (
    "<p>Run {{ dag_run.dag_run_id }} of {{ dag_run.dag_id }} had not finished by {{ deadline.deadline_time }}"
    " (%s minutes after its logical date). See which task is running or waiting in the Airflow UI; the"
    " DAG's runbook says how to rerun.</p>"
)


def _import(path: str):
    import importlib

    module, _, name = path.partition(":")
    if not module or not name:
        raise ValueError(f"failure_notifier must look like 'package.module:factory', got {path!r}")
    return getattr(importlib.import_module(module), name)


def failure_notifiers(cfg, task_id: str) -> list:
    """The ``on_failure_callback`` of a task: the failure email (:class:`FailureEmail`), or the
    deployment's notifier (``failure_notifier``), given the task's own advice."""
    if cfg.failure_notifier:
        return [_import(cfg.failure_notifier)(task_id=task_id, advice=TASKS[task_id].on_failure)]
    if not cfg.alert_email_to:
        return []
    return [FailureEmail(task_id, list(cfg.alert_email_to), cfg.email_from, cfg.smtp_conn_id)]


MAX_ERROR_CHARS = 4000  # of the exception's text in the email (it may quote upstream responses)


class FailureEmail:
    """Emails on-call when a task has failed for good: which month and task, the exception (class and
    message, escaped), what reached which destination, what to do about this kind of error
    (runbook.advice), and links to the log and to the task's page. Sent through the SMTP hook with
    no templating: nothing from the error is ever evaluated."""

    def __init__(self, task_id: str, to: list[str], sender: str, smtp_conn_id: str) -> None:
        self.task_id, self.to, self.sender, self.smtp_conn_id = task_id, to, sender, smtp_conn_id

    def __call__(self, context) -> None:
        from include.customer_performance.export.csv_email import send

        subject, body = self.message(context)
        send(self.smtp_conn_id, self.to, self.sender, subject, body, [])

    def message(self, context) -> tuple[str, str]:
        from include.customer_performance.config import settings
        from include.customer_performance.pipeline import retry_of
        from include.customer_performance.runbook import advice
        from include.customer_performance.staging import make_run

        cfg = settings()
        exc = context.get("exception") or RuntimeError("unknown error")
        ti, dag_run = context.get("ti"), context.get("dag_run")
        params = context.get("params") or {}
        run = make_run(
            context.get("logical_date"),
            dag_run.run_id,
            params.get("report_month"),
            cfg.staging_schema,
            run_after=getattr(dag_run, "run_after", None),
        )
        kind, what_to_do = advice(exc, self.task_id, retry_of(exc, context))
        month = f"{run.period.report_month:%B %Y}"
        subject = f"[Customer Performance] {month} run failed at {self.task_id}"
        error = f"{type(exc).__name__}: {exc}"
        if len(error) > MAX_ERROR_CHARS:
            error = error[:MAX_ERROR_CHARS] + f" ... ({len(error) - MAX_ERROR_CHARS} more characters in the log)"
        base = cfg_base_url()
        # the task's page has the Documentation (book) button; the task instance's page opens on its log
        task_page = f"{base}/dags/{run_dag_id(context)}/tasks/{self.task_id}"
        log_url = (
            getattr(ti, "log_url", None)
            or f"{base}/dags/{run_dag_id(context)}/runs/{dag_run.run_id}/tasks/{self.task_id}"
        )
        e = html.escape
        status = delivery_status(run, self.task_id)
        body = (
            f"<p><b>{e(run.period.describe())}</b>: run {e(dag_run.run_id)}, task <b>{e(self.task_id)}</b>"
            f" failed on try {e(str(getattr(ti, 'try_number', '?')))}.</p>"
            f"<p><b>Error</b> ({e(kind)}):</p><pre>{e(error)}</pre>"
            f"<p><b>Destinations</b>:</p><ul>{''.join(f'<li>{e(x)}</li>' for x in status)}</ul>"
            f"<p><b>What to do</b>: {e(what_to_do)}</p>"
            f'<p>Log: <a href="{e(log_url)}">{e(log_url)}</a><br>Task documentation (the Documentation button on'
            f' the task\'s page): <a href="{e(task_page)}">{e(task_page)}</a></p>'
        )
        return subject, body


def cfg_base_url() -> str:
    from airflow.configuration import conf

    return (conf.get("api", "base_url", fallback="") or "http://localhost:8080").rstrip("/")


def run_dag_id(context) -> str:
    dag = context.get("dag")
    return getattr(dag, "dag_id", None) or "customer_performance"


DESTINATIONS = {"load_analytics_db": "analytics_db", "push_bi_api": "bi_api", "email_csv_export": "csv_export"}


def delivery_status(run, task_id: str) -> list[str]:
    """What this run delivered and what each destination holds for the period, from the run
    record (``pipeline_runs.delivered``); a task before the destinations published nothing."""
    from psycopg import sql

    from include.customer_performance.config import settings
    from include.customer_performance.db import analytics

    out = []
    if task_id not in DESTINATIONS:
        out.append(f"Nothing of this run was published: it stopped at {task_id}, before every destination.")
    cfg = settings()
    try:
        with analytics(cfg) as conn:
            row = conn.execute(
                "SELECT to_regclass(%s) IS NOT NULL", (f"{cfg.analytics_schema}.pipeline_runs",)
            ).fetchone()
            found = None
            if row[0]:
                found = conn.execute(
                    sql.SQL("SELECT delivered FROM {} WHERE report_month = %s AND period_end = %s").format(
                        sql.Identifier(cfg.analytics_schema, "pipeline_runs")
                    ),
                    (run.period.report_month, run.period.end),
                ).fetchone()
    except Exception as exc:  # noqa: BLE001 - the email must go out even when the database is the problem
        return [*out, f"What the destinations hold could not be read ({type(exc).__name__})."]
    delivered = (found or [{}])[0] or {}
    for name, label in (
        ("analytics_db", "analytics database"),
        ("bi_api", "BI API"),
        ("csv_export", "CSV export"),
        ("email", "stakeholder email"),
    ):
        entry = delivered.get(name)
        if not entry:
            out.append(f"{label}: nothing for {run.period}.")
        elif entry.get("run_id") == run.run_id:
            out.append(f"{label}: delivered by this run.")
        else:
            out.append(f"{label}: still the results of run {entry.get('run_id')} (this run did not replace them).")
    return out


def deadline_alert(cfg):
    """A Deadline Alert for a run unfinished ``deadline_minutes`` after its logical date (02:00 ->
    06:00 for the nightly run), emailed by the triggerer through :func:`late_run_alert`; None when
    disabled (``deadline_minutes`` 0 or no ``alert_email_to``).

    The reference is the logical date, not ``DAGRUN_QUEUED_AT``: Airflow 3.3 cannot clear a run with
    a pending queued-at deadline (HTTP 500, apache/airflow#70368), and on-call must be able to clear.
    A run queued after its deadline (a backfill of a past month, a late manual run) is not late:
    :func:`late_run_alert` says nothing for it."""
    if cfg.deadline_minutes <= 0 or not cfg.alert_email_to:
        return None
    from airflow.sdk.definitions.callback import AsyncCallback
    from airflow.sdk.definitions.deadline import DeadlineAlert, DeadlineReference

    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_LOGICAL_DATE,
        interval=timedelta(minutes=cfg.deadline_minutes),
        callback=AsyncCallback(
            late_run_alert,
            kwargs={
                "to": list(cfg.alert_email_to),
                "from_email": cfg.email_from,
                "smtp_conn_id": cfg.smtp_conn_id,
                "subject": DEADLINE_SUBJECT,
                "html_content": DEADLINE_HTML % cfg.deadline_minutes,
            },
        ),
        name="customer_performance_deadline",
    )


def is_late(context: dict | None) -> bool:
    """Whether a missed deadline means a late run: not when the run was queued after its deadline."""
    from datetime import datetime

    run = (context or {}).get("dag_run") or {}
    deadline = ((context or {}).get("deadline") or {}).get("deadline_time")
    queued = run.get("queued_at")
    if not deadline or not queued:
        return True

    def when(value):
        return value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))

    return when(queued) < when(deadline)


async def late_run_alert(context: dict | None = None, **kwargs) -> str:
    """The Deadline Alert's callback, run by the triggerer: the email of ``kwargs`` (an
    SmtpNotifier's arguments) for a late run, nothing for a run queued after its deadline."""
    import logging

    if not is_late(context):
        run = (context or {}).get("dag_run") or {}
        run = run.get("dag_run_id") or run.get("run_id")  # the API's DAGRunResponse names it dag_run_id
        logging.getLogger(__name__).info("run %s was queued after its deadline: not a late run, no alert", run)
        return "not late: queued after its deadline"
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier

    await SmtpNotifier(**kwargs, context=context)
    return "alerted"
