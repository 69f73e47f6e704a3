"""What on-call sees in the Airflow UI: the DAG's runbook (its ``doc_md``), and per task its display
name, what it does, how it is retried and what to do when it fails. The DAG file reads these; a
failing task writes its ``on_failure`` advice into its log and the failure email."""

from __future__ import annotations

from dataclasses import dataclass

EXTRACT, TRANSFORM, DELIVER = "extract", "transform", "deliver"


@dataclass(frozen=True)
class TaskDoc:
    display_name: str
    kind: str  # extract / transform / deliver: sets the retries (config: <kind>_retries)
    does: str
    on_failure: str


TASKS: dict[str, TaskDoc] = {
    "extract_customer_db": TaskDoc(
        "Extract customer DB",
        EXTRACT,
        "Customers and their sessions for the period, streamed from PostgreSQL (`customer_db`) into staging with COPY.",
        "Connection or timeout errors are retried. A `SourceContractError` names the table and column the"
        " source lacks or has retyped: fix the source or the contract (`schemas.py`), then clear this task"
        " with downstream.",
    ),
    "extract_crm_api": TaskDoc(
        "Extract CRM API",
        EXTRACT,
        "The period's CRM interactions from the REST API (`crm_api`), page by page, into staging.",
        "5xx, 429 and network errors were already retried inside the task, then by Airflow. 401/403 fail at"
        " once: renew the token in connection `crm_api`. A `MalformedPageError` names the cursor and field:"
        " report it to the CRM team. Then clear this task with downstream.",
    ),
    "extract_sales_db": TaskDoc(
        "Extract sales DB",
        EXTRACT,
        "The period's transactions and the lifetime purchase summary per customer, streamed from MySQL"
        " (`sales_db`) into staging.",
        "Connection errors are retried. A `SourceContractError` names the table and column: fix the source,"
        " then clear this task with downstream.",
    ),
    "filter_period": TaskDoc(
        "Filter to period",
        TRANSFORM,
        "Applies the filter configuration (`filters.json`) to every staged dataset and records the rows each"
        " condition removed.",
        "A `FilterConfigError` names the dataset, condition and field: fix `filters.json` (or the"
        " `filter_config` setting), then clear this task with downstream.",
    ),
    "calculate": TaskDoc(
        "Calculate metrics",
        TRANSFORM,
        "Converts and deduplicates sales, fits churn and CLV, and computes every per-customer metric, leaving"
        " out the rows the gate's warning rules reject.",
        "A `StaleRatesError` names each currency whose exchange rate is missing or too old for the"
        " period, its last rate and how many sales need it: point connection `fx_rates` at a source that"
        " has those days (or load them into `analytics.fx_rates`), then clear this task with downstream;"
        " nothing was published. Otherwise usually the analytics database (disk, memory, a killed query):"
        " check its log, then clear this task with downstream. Its inputs are the staged tables, so the"
        " extracts need not run again.",
    ),
    "validate": TaskDoc(
        "Validate (quality gate)",
        TRANSFORM,
        "Great Expectations suites on the staged tables: a critical failure stops the run before any"
        " destination; warning rules quarantine rows; the report goes to `data_quality_results`.",
        "A `QualityGateError` lists each critical rule, table, column, failing count and examples; the full"
        " report is `cp_staging.dq_results_<run>` and the Data Docs. Besides bad rows it stops on a bad"
        " outcome: a source with no rows in the period (`<table>.not_empty`: if the period really had none,"
        " trigger the run again with param `allow_empty_sources`), a warning rule over its ceiling"
        " (`<rule>.ceiling`: too much of the month would be quarantined), NaN or Infinity in a number"
        " (`<table>.<column>.finite`). Fix the staged data and clear this task with downstream (the metrics"
        " are recomputed), or fix the source and clear the extracts with downstream. Nothing was published.",
    ),
    "aggregate": TaskDoc(
        "Aggregate",
        TRANSFORM,
        "Regional summary (grouping sets), daily and ISO-weekly trends, the KPI row and alerts, then their"
        " suite (totals must reconcile with the customer metrics).",
        "A `QualityGateError` here means the aggregates do not reconcile with the metrics (a bug, not bad"
        " data): report it. Other errors: check the analytics database, then clear this task with downstream.",
    ),
    "load_analytics_db": TaskDoc(
        "Load analytics DB",
        DELIVER,
        "Migrates the analytics schema, then replaces the period's rows of every table in one transaction"
        " (partition per month), drops partitions past the retention, and records the run in `pipeline_runs`.",
        "Nothing was half-written (one transaction). Check the analytics database and clear this task alone.",
    ),
    "push_bi_api": TaskDoc(
        "Push BI API",
        DELIVER,
        "Replaces the period's rows of each BI table (delete, then batches of at most 10,000 rows).",
        "429/5xx were retried. 401/403: renew the token in connection `bi_api`. Then clear this task alone;"
        " it replaces the period's rows, so a partial push never duplicates.",
    ),
    "email_csv_export": TaskDoc(
        "Email CSV export",
        DELIVER,
        "Writes the three CSV files to the export location and emails them with an HTML summary when the"
        " month closes or the run is manual (`email_policy`).",
        "Check connection `smtp_default` and the export location, then clear this task alone.",
    ),
}

RUNBOOK = """
# Customer Performance

**What it does.** Every night at 02:00 it extracts customers and sessions (PostgreSQL
`customer_db`), CRM interactions (REST `crm_api`) and sales (MySQL `sales_db`), filters them to the
report period, computes per-customer performance and health metrics, validates them with Great
Expectations as a gate, aggregates them, and delivers the result to the analytics database
(`analytics_db`), the BI push API (`bi_api`) and stakeholders' inboxes (`smtp_default`).

**Report period.** A run with logical date D reports month-to-date of the month that contains
D − 1 day, through the end of D − 1: the run of the 1st closes the previous month, the run of the
15th covers the 1st to the 14th. Trigger with param `report_month` = `YYYY-MM` to report a whole
month.

**Where the outputs go.**
- analytics database, schema `analytics`: `customer_performance`, `regional_summary`,
  `performance_trends`, `data_quality_results`, `alerts`, `pipeline_runs` (one partition per month;
  `*_latest` views show the latest complete month);
- BI push API, dataset `customer_performance`: `kpis`, `regional_summary`, `performance_trends`,
  `alerts`, `top_customers`;
- CSV files under the export location `<YYYY-MM>/`, emailed when a month closes and on manual runs;
- the run's staged tables (`cp_staging.*_<run>`, kept 7 days), its quarantined rows
  (`cp_staging.dq_quarantine_<table>_<run>`) and the GX Data Docs (`<export>/<YYYY-MM>/data_docs/`).

**Rerun.** Every task replaces what it wrote before. Clear a failed task (with downstream for
extract, filter and transform tasks; alone for a destination) and it runs again. A run stopped by
`validate` published nothing: fix the data, then clear `validate` with downstream. Each task's
documentation (task → Details) says what to do when it fails; so does its log.

**Backfill.** `python -m include.customer_performance backfill --from 2025-01 --to 2025-06`, run
where the `airflow` CLI reaches this deployment (the DAG must be unpaused), creates one Airflow
backfill per month for its month-close run, oldest first, and waits for each. It refuses months
before the DAG's start date (setting `dag_start_date`, 1970-01-01 by default). By hand, per month:
`airflow backfill create --dag-id customer_performance --from-date 2025-02-01T02:00:00+00:00
--to-date 2025-02-01T02:00:00+00:00 --reprocess-behavior completed` (January 2025).

**Alerts.** A failing task emails `alert_email_to` (after its retries). A run still unfinished
four hours after it was queued (06:00 for the nightly run) raises a Deadline Alert by email.
"""
