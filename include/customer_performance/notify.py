"""Who hears about trouble: a failed task (after its retries) and a run past its deadline.

By default both are emails to ``alert_email_to`` through the SMTP connection, using the SMTP
provider's notifier. ``failure_notifier`` swaps in any other Airflow notifier for failed tasks.
"""

from __future__ import annotations

import html
from datetime import timedelta

from include.customer_performance.runbook import TASKS

FAILURE_SUBJECT = "[Customer Performance] {{ ti.task_id }} failed: run {{ run_id }}"
FAILURE_HTML = (
    "<p>Task <b>{{ ti.task_id }}</b> of DAG {{ dag.dag_id }}, run {{ run_id }}, failed on try"
    " {{ ti.try_number }}:</p><pre>{{ exception }}</pre>"
    "<p><b>What to do:</b> %s</p><p>Log: <a href='{{ ti.log_url }}'>{{ ti.log_url }}</a></p>"
)
DEADLINE_SUBJECT = "[Customer Performance] run {{ dag_run.run_id }} missed its deadline"
DEADLINE_HTML = (
    "<p>Run {{ dag_run.run_id }} of {{ dag_run.dag_id }} had not finished by {{ deadline.deadline_time }}"
    " (%s minutes after it was queued). See which task is running or waiting in the Airflow UI; the"
    " DAG's runbook says how to rerun.</p>"
)


def _import(path: str):
    import importlib

    module, _, name = path.partition(":")
    if not module or not name:
        raise ValueError(f"failure_notifier must look like 'package.module:factory', got {path!r}")
    return getattr(importlib.import_module(module), name)


def failure_notifiers(cfg, task_id: str) -> list:
    """The ``on_failure_callback`` of a task: its advice (runbook.TASKS) goes into the message."""
    advice = TASKS[task_id].on_failure
    if cfg.failure_notifier:
        return [_import(cfg.failure_notifier)(task_id=task_id, advice=advice)]
    if not cfg.alert_email_to:
        return []
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier

    return [
        SmtpNotifier(
            to=list(cfg.alert_email_to),
            from_email=cfg.email_from,
            smtp_conn_id=cfg.smtp_conn_id,
            subject=FAILURE_SUBJECT,
            html_content=FAILURE_HTML % html.escape(advice),
        )
    ]


def deadline_alert(cfg):
    """A Deadline Alert (emailed by the triggerer) for a run unfinished ``deadline_minutes`` after it
    was queued; None when disabled (``deadline_minutes`` 0 or no ``alert_email_to``)."""
    if cfg.deadline_minutes <= 0 or not cfg.alert_email_to:
        return None
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier
    from airflow.sdk.definitions.callback import AsyncCallback
    from airflow.sdk.definitions.deadline import DeadlineAlert, DeadlineReference

    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=timedelta(minutes=cfg.deadline_minutes),
        callback=AsyncCallback(
            SmtpNotifier,
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
