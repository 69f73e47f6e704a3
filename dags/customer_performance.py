"""Customer Performance: the DAG. Wiring only; what each task does is in
``include/customer_performance/pipeline.py``, what on-call reads in the UI in ``runbook.py``."""

from __future__ import annotations

import logging

import pendulum
from airflow.sdk import Param, dag, task

from include.customer_performance import pipeline
from include.customer_performance.config import settings
from include.customer_performance.export.artifacts import local_store_warning
from include.customer_performance.notify import deadline_alert, failure_notifiers
from include.customer_performance.retry import plan
from include.customer_performance.runbook import DELIVER, RUNBOOK, TASKS

cfg = settings()
TASKS_BEFORE_DESTINATIONS = [t for t, doc in TASKS.items() if doc.kind != DELIVER]
# said where on-call looks: the parse log and the top of the DAG's docs
STORE_WARNING = local_store_warning(cfg)
if STORE_WARNING:
    logging.getLogger(__name__).warning("customer_performance: %s", STORE_WARNING)


def task_args(task_id: str, **kwargs) -> dict:
    """Display name, documentation, retries (retry.plan: both layers, one declaration) and failure
    notification of a task, from the runbook."""
    doc, retry = TASKS[task_id], plan(task_id, cfg)
    return {
        "task_id": task_id,
        "task_display_name": doc.display_name,
        "doc_md": (
            f"{doc.does}\n\n**When it fails:** {doc.on_failure}\n\n**Retries:** {retry.task_retries}"
            f" ({doc.kind} task), {retry.delay_seconds} s after the failed try; the log says when."
            " Errors a retry cannot fix (credentials, bad data, configuration) are not retried."
        ),
        "retries": retry.task_retries,
        "execution_timeout": pendulum.duration(minutes=retry.timeout_minutes),
        # a fixed delay: Airflow's exponential backoff grows with the try number, which keeps counting
        # across clears, and adds jitter, so no one could say when the next try comes
        "retry_delay": pendulum.duration(seconds=retry.delay_seconds),
        "retry_exponential_backoff": 0,
        "retry_policy": retry.policy,
        "on_failure_callback": failure_notifiers(cfg, task_id),
        **kwargs,
    }


@dag(
    dag_id="customer_performance",
    dag_display_name="Customer Performance",
    schedule="0 2 * * *",
    # early by default (setting dag_start_date) so that decades of history can be backfilled
    start_date=pendulum.parse(cfg.dag_start_date, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    doc_md=(f"> **Warning:** {STORE_WARNING}.\n\n" if STORE_WARNING else "") + RUNBOOK,
    deadline=deadline_alert(cfg),
    params={
        "report_month": Param(
            None,
            type=["null", "string"],
            pattern=r"^\d{4}-(0[1-9]|1[0-2])$",
            title="Report month",
            description=(
                "YYYY-MM (e.g. 2025-07) to report that whole month. Leave empty for the period of the"
                " logical date: month-to-date of the month containing the day before it."
            ),
        ),
        "allow_empty_sources": Param(
            False,
            type="boolean",
            title="Allow empty sources",
            description=(
                "Publish the month even if a source (customers, transactions, sessions, CRM interactions) has"
                " no rows in the period. Off: an empty source stops the run at the gate, because a source that"
                " delivers nothing is usually an outage (unless the previous loaded period was empty too)."
            ),
        ),
        "replace_closed_month": Param(
            False,
            type="boolean",
            title="Replace a closed month with a part of it",
            description=(
                "A run whose period is a part of a month already published closed (a run for a past day)"
                " fails before any destination, leaving the closed month as it was. On: it replaces the month's"
                " published figures with this part of the month."
            ),
        ),
        "resend_email": Param(
            False,
            type="boolean",
            title="Resend an unconfirmed email",
            description=(
                "If a try of this run began sending the email and never learned whether the relay accepted it"
                " (a lost reply, a killed task), send it again on the next try (same Message-ID). Off: that try"
                " fails and says so, and the email goes out again only when on-call clears the task."
            ),
        ),
    },
    tags=["customer-performance", "analytics"],
)
def customer_performance():
    # Tasks exchange data through staged tables only (pipeline.py); XCom carries each task's
    # counts for the run record, which only the load reads. So the tasks take no data arguments and
    # are wired with >>; each calls its own function of pipeline.py.
    @task(**task_args("extract_customer_db", pool=cfg.customer_db_conn_id))
    def extract_customer_db() -> dict:
        return pipeline.execute(pipeline.extract_customer_db)

    @task(**task_args("extract_crm_api", pool=cfg.crm_api_conn_id))
    def extract_crm_api() -> dict:
        return pipeline.execute(pipeline.extract_crm_api)

    @task(**task_args("extract_sales_db", pool=cfg.sales_db_conn_id))
    def extract_sales_db() -> dict:
        return pipeline.execute(pipeline.extract_sales_db)

    @task(**task_args("filter_period"))
    def filter_period() -> dict:
        return pipeline.execute(pipeline.filter_period)

    @task(**task_args("calculate"))
    def calculate() -> dict:
        return pipeline.execute(pipeline.calculate)

    @task(**task_args("validate"))
    def validate(ti=None) -> dict:
        # a second try (a retry, or a clear after fixing the data) recomputes the metrics first
        return pipeline.execute(pipeline.validate, rerun=ti.try_number > 1)

    @task(**task_args("aggregate"))
    def aggregate() -> dict:
        return pipeline.execute(pipeline.aggregate)

    @task(**task_args("load_analytics_db"))
    def load_analytics_db(ti=None) -> dict:
        # the run record gathers every task's result before the destinations
        upstream = {t: ti.xcom_pull(task_ids=t) for t in TASKS_BEFORE_DESTINATIONS}
        return pipeline.execute(pipeline.load_analytics_db, upstream=upstream)

    @task(**task_args("push_bi_api"))
    def push_bi_api() -> dict:
        return pipeline.execute(pipeline.push_bi_api)

    @task(**task_args("email_csv_export"))
    def email_csv_export(dag_run=None, params=None) -> dict:
        return pipeline.execute(
            pipeline.email_csv_export,
            manual=dag_run is not None and dag_run.run_type == "manual",
            resend=bool((params or {}).get("resend_email")),
        )

    gate, load = validate(), load_analytics_db()
    [extract_customer_db(), extract_crm_api(), extract_sales_db()] >> filter_period() >> calculate() >> gate
    gate >> aggregate() >> [load, push_bi_api(), email_csv_export()]
    gate >> load  # the load records the gate's summary


customer_performance()
