"""
# Customer Performance

Every night at 02:00 this DAG extracts customers and sessions (PostgreSQL `customer_db`), CRM
interactions (REST `crm_api`) and sales (MySQL `sales_db`) for the report period, filters them,
computes per-customer performance metrics, validates them with Great Expectations, aggregates
them, and delivers the result to the analytics database (`analytics_db`), the BI push API
(`bi_api`) and stakeholders' inboxes (`smtp_default`).

**Report period.** A run with logical date D reports month-to-date of the month containing
D − 1 day, through the end of D − 1. The 1st of a month closes the previous month. The param
`report_month` (`YYYY-MM`) forces a whole month.

**Rerun.** Every task replaces what it wrote before: clear any task (and its downstream) to rerun.
A run stopped by `validate` published nothing; fix the data and clear `validate`.

Data moves between tasks through staged tables in the analytics database; XCom carries only
table names and counts. Logic lives in `include/customer_performance`.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, task

from include.customer_performance import pipeline
from include.customer_performance.config import settings
from include.customer_performance.retry import API_RETRY_POLICY, NO_RETRY_ON_BAD_DATA


@dag(
    dag_id="customer_performance",
    dag_display_name="Customer Performance",
    schedule="0 2 * * *",
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    default_args={
        "retries": settings().task_retries,
        "retry_delay": pendulum.duration(seconds=settings().retry_delay_seconds),
    },
    params={
        "report_month": Param(
            None,
            type=["null", "string"],
            pattern=r"^\d{4}-(0[1-9]|1[0-2])$",
            title="Report month",
            description="YYYY-MM to report a whole month; empty for the month-to-date of the logical date.",
        )
    },
    tags=["customer-performance", "analytics"],
)
def customer_performance():
    cfg = settings()

    @task(task_display_name="Extract customer DB", pool=cfg.customer_db_conn_id, retry_policy=NO_RETRY_ON_BAD_DATA)
    def extract_customer_db() -> dict:
        """Customers and their sessions for the period, COPY to COPY into staging."""
        return pipeline.extract_customer_db(pipeline.current_run(), settings())

    @task(task_display_name="Extract CRM API", pool=cfg.crm_api_conn_id, retry_policy=API_RETRY_POLICY)
    def extract_crm_api() -> dict:
        """The period's CRM interactions, page by page, into staging."""
        return pipeline.extract_crm_api(pipeline.current_run(), settings())

    @task(task_display_name="Extract sales DB", pool=cfg.sales_db_conn_id, retry_policy=NO_RETRY_ON_BAD_DATA)
    def extract_sales_db() -> dict:
        """The period's transactions and the lifetime purchase summary, streamed from MySQL into staging."""
        return pipeline.extract_sales_db(pipeline.current_run(), settings())

    @task(task_display_name="Filter to period", retry_policy=NO_RETRY_ON_BAD_DATA)
    def filter_period(customer_db: dict, crm_api: dict, sales_db: dict) -> dict:
        """Apply the filter configuration; records the rows each condition removed."""
        return pipeline.filter_period(pipeline.current_run(), settings())

    @task(task_display_name="Calculate metrics")
    def calculate(filtered: dict) -> dict:
        """Converts and deduplicates sales, fits churn and CLV, computes every per-customer metric."""
        return pipeline.calculate(pipeline.current_run(), settings())

    @task(task_display_name="Validate (quality gate)", retry_policy=NO_RETRY_ON_BAD_DATA)
    def validate(metrics: dict, ti=None) -> dict:
        """Great Expectations suites; warnings quarantine rows, a critical failure stops the run before any
        destination."""
        return pipeline.validate(pipeline.current_run(), settings(), rerun=ti.try_number > 1)

    @task(task_display_name="Aggregate", retry_policy=NO_RETRY_ON_BAD_DATA)
    def aggregate(quality: dict) -> dict:
        """Regional summary (grouping sets), daily and ISO-weekly trends, the KPI row and alerts; then their suite."""
        return pipeline.aggregate(pipeline.current_run(), settings())

    @task(task_display_name="Load analytics DB")
    def load_analytics_db(aggregates: dict, quality: dict, ti=None) -> dict:
        """Replace the period's partition of every analytics table in one transaction."""
        upstream = ("extract_customer_db", "extract_crm_api", "extract_sales_db", "filter_period", "calculate")
        row_counts = {task_id: ti.xcom_pull(task_ids=task_id) for task_id in upstream}
        row_counts["aggregate"] = aggregates
        return pipeline.load_analytics_db(pipeline.current_run(), settings(), row_counts, quality)

    @task(task_display_name="Push BI API", retry_policy=API_RETRY_POLICY)
    def push_bi_api(aggregates: dict) -> dict:
        """Replace the period's rows of each BI table, in batches of at most 10,000."""
        return pipeline.push_bi_api(pipeline.current_run(), settings())

    @task(task_display_name="Email CSV export")
    def email_csv_export(aggregates: dict, dag_run=None) -> dict:
        """Write the three CSV files; email them with an HTML summary (large files compressed or
        linked) when the month closes or the run is manual (``email_policy``)."""
        manual = dag_run is not None and dag_run.run_type == "manual"
        return pipeline.email_csv_export(pipeline.current_run(), settings(), manual=manual)

    filtered = filter_period(extract_customer_db(), extract_crm_api(), extract_sales_db())
    quality = validate(calculate(filtered))
    aggregates = aggregate(quality)
    load_analytics_db(aggregates, quality)
    push_bi_api(aggregates)
    email_csv_export(aggregates)


customer_performance()
