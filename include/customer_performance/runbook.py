"""What on-call sees in the Airflow UI: the DAG's runbook (its ``doc_md``), and per task its display
name, what it does, how it is retried and what to do when it fails. The DAG file reads these; a
failing task writes its ``on_failure`` advice into its log and the failure email."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

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
        "Regional summary (grouping sets), daily and ISO-weekly trends, the KPI row, alerts and the back-test"
        " (the churn predictions published one and three months before against the purchases made since),"
        " then their suite (totals must reconcile with the customer metrics).",
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
        "Publishes the period to the BI dataset as a new version (numbered batches of at most 10,000 rows,"
        " then one publish call that makes it the month's current version): readers see the previous"
        " complete month until then.",
        "429/5xx were retried. 401/403: renew the token in connection `bi_api`. Then clear this task alone;"
        " a failed push leaves the previous month current and a retry never duplicates.",
    ),
    "email_csv_export": TaskDoc(
        "Email CSV export",
        DELIVER,
        "Writes the month's CSV files to the export location and emails them with an HTML summary when the"
        " month closes or the run is manual (`email_policy`).",
        "Check connection `smtp_default` and the export location, then clear this task alone: the email"
        " goes out once per run (a try that cannot know whether an earlier one sent it stops and says so).",
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
  `performance_trends`, `data_quality_results`, `alerts`, `model_backtest`, `pipeline_runs` (one partition per month;
  `*_latest` views show the latest complete month);
- BI push API, dataset `customer_performance`: `kpis`, `regional_summary`, `performance_trends`,
  `alerts`, `top_customers`;
- CSV files under the export location `<YYYY-MM>/`, emailed when a month closes and on manual runs;
- the run's staged tables (`cp_staging.*_<run>`, kept 7 days), its quarantined rows
  (`cp_staging.dq_quarantine_<table>_<run>`) and the GX Data Docs (`<export>/<YYYY-MM>/data_docs/`).

**Rerun.** Every task replaces what it wrote before. Clear a failed task (with downstream for
extract, filter and transform tasks; alone for a destination) and it runs again. A run stopped by
`validate` published nothing: fix the data, then clear `validate` with downstream. Each task's
documentation (the Documentation button on the task's page: Dags > Customer Performance > Tasks > the
task) says what to do when it fails; the task log says
it for the error at hand, in the record right after the error (`What to do (<kind of error>): ...`),
with when Airflow retries; so does the alert email.

**Backfill.** `python -m include.customer_performance backfill --from 2025-01 --to 2025-06`, run
where the `airflow` CLI reaches this deployment (the DAG must be unpaused), creates one Airflow
backfill per month for its month-close run, oldest first, and waits for each. It refuses months
before the DAG's start date (setting `dag_start_date`, 1970-01-01 by default). By hand, per month:
`airflow backfill create --dag-id customer_performance --from-date 2025-02-01T02:00:00+00:00
--to-date 2025-02-01T02:00:00+00:00 --reprocess-behavior completed` (January 2025). The UI's
Backfill form makes one run a day: its runs for a part of a month that has ended are skipped (their
note says so), so only the 1st's month-close runs publish.

**Publishing never goes backwards.** A run for a past day of a month already published closed
(an old logical date, an old run cleared) reports a part of that month: it fails in its first task
before any work (`What to do (closed month)`), and every destination keeps the closed month. To
report the month, run its close (the 1st of the next month, or param `report_month`); trigger
with param `replace_closed_month` to replace it with the part anyway.

**Alerts.** A failing task emails `alert_email_to` (after its retries). A run still unfinished
four hours after its logical date (06:00 for the nightly run) raises a Deadline Alert by email.
"""


# -- advice by error class -------------------------------------------------------------------
# What on-call reads right after an error, in the task log and in the alert email: chosen by
# what went wrong, not by which task it was (the task's ``on_failure`` is the fallback).
CREDENTIALS = "credentials refused"
NETWORK = "network or server error"
SOURCE_CONTRACT = "source contract"
QUALITY_GATE = "quality gate"
RATES_STALE = "exchange rates stale"
CONFIGURATION = "configuration invalid"
STAGES_GONE = "staged tables gone"
DELIVERY_UNCONFIRMED = "delivery unconfirmed"
CLOSED_MONTH = "closed month"

# Which connections a task reads, for advice that names where to look.
TASK_CONNECTIONS = {
    "extract_customer_db": ("customer_db", "analytics_db"),
    "extract_crm_api": ("crm_api", "analytics_db"),
    "extract_sales_db": ("sales_db", "analytics_db"),
    "calculate": ("analytics_db", "fx_rates"),
    "load_analytics_db": ("analytics_db",),
    "push_bi_api": ("bi_api", "analytics_db"),
    "email_csv_export": ("smtp_default", "analytics_db"),
}


@dataclass(frozen=True)
class Retry:
    """Where a failed try stands: its number, the tries allowed, and when (if ever) the next comes."""

    try_number: int
    tries: int  # the task's max_tries + 1
    next_at: datetime | None  # None: Airflow will not retry
    refused: bool = False  # the task's retry policy does not retry this error

    def describe(self) -> str:
        if self.next_at is None:
            why = "this error is not retried" if self.refused else "that was the last try"
            return f"Airflow will not retry (try {self.try_number} of {self.tries}: {why})."
        return (
            f"Airflow retries at {self.next_at:%H:%M} UTC ({self.next_at:%Y-%m-%d}), try {self.try_number + 1}"
            f" of {self.tries}."
        )


def connection_home(conn_id: str, environ=None) -> str:
    """Where Airflow finds connection ``conn_id`` for this worker, in the order it looks: a secrets
    backend, then ``AIRFLOW_CONN_<ID>``, then the metadata database (Admin > Connections)."""
    import os

    environ = os.environ if environ is None else environ
    var = f"AIRFLOW_CONN_{conn_id.upper()}"
    backend = environ.get("AIRFLOW__SECRETS__BACKEND")
    if backend:
        where = f"the secrets backend {backend} (searched first)"
        if var in environ:
            where += f", else the environment variable {var}"
        return where + "; Admin > Connections only if neither has it"
    if var in environ:
        return (
            f"the environment variable {var} on the workers: edit it there and restart them (a connection of"
            f" the same id in Admin > Connections is ignored while the variable is set)"
        )
    return "Admin > Connections (the metadata database): edit it there"


def classify(exc: BaseException) -> str | None:
    """The error class of ``exc`` for the advice, or None for the task's own advice."""
    name = type(exc).__name__
    text = str(exc)
    if name == "AuthError" or "password authentication failed" in text or "Access denied for user" in text:
        return CREDENTIALS
    if name in ("SourceContractError", "MalformedPageError", "NulByteError", "TooLargeError"):
        return SOURCE_CONTRACT
    if name == "QualityGateError":
        return QUALITY_GATE
    if name == "StaleRatesError":
        return RATES_STALE
    if name == "MissingStageError":
        return STAGES_GONE
    if name == "AmbiguousDeliveryError":
        return DELIVERY_UNCONFIRMED
    if name == "ClosedMonthError":
        return CLOSED_MONTH
    config = (
        "FilterConfigError",
        "ScorecardError",
        "MigrationError",
        "ConnectionConfigError",
        "ExportLocationError",
        "MarketSizeError",
    )
    if name in config or text.startswith("CUSTOMER_PERFORMANCE_"):
        return CONFIGURATION
    if name in ("ApiError", "ConnectionError", "Timeout", "ReadTimeout", "ConnectTimeout", "TimeoutError"):
        return NETWORK
    if name == "OperationalError":  # psycopg / MySQLdb: the server went away, refused, timed out
        return NETWORK
    return None


def advice(exc: BaseException, task_id: str, retry: Retry | None = None, environ=None) -> tuple[str, str]:
    """``(error class, what to do)`` for ``exc`` raised by ``task_id``."""
    kind = classify(exc)
    doc = TASKS.get(task_id)
    then = "then clear this task" + (" alone." if doc and doc.kind == DELIVER else " with downstream.")
    retry_text = f" {retry.describe()}" if retry else ""
    if kind == CREDENTIALS:
        conn_id = getattr(exc, "conn_id", None)
        conns = [conn_id] if conn_id else list(TASK_CONNECTIONS.get(task_id, ()))
        homes = "; ".join(f"`{c}` lives in {connection_home(c, environ)}" for c in conns)
        return kind, (
            f"The credentials were refused: renew the token or password, {then} Connection {homes}. Airflow"
            " looks a connection up in the secrets backend, then AIRFLOW_CONN_<ID>, then Admin > Connections:"
            " the first it finds wins." + retry_text
        )
    if kind == NETWORK:
        return kind, (
            "A server did not answer or answered with an error (network, timeout or 5xx, already retried inside"
            f" the task).{retry_text} If it keeps failing, check that the service is up and reachable from the"
            f" workers, {then}"
        )
    if kind == SOURCE_CONTRACT:
        return kind, (
            "A source does not have the shape the pipeline reads (the error names the table or page, column or"
            " field): fix the source, or the contract in `schemas.py` if the change is intended, "
            + then
            + " Not retried: waiting does not change a source's shape."
        )
    if kind == CLOSED_MONTH:
        return kind, (
            "This run reports a part of a month that was already published closed; nothing was delivered and"
            " the closed month is as it was. The month's figures come from its month-close run (logical date"
            " 02:00 on the 1st of the next month, or param `report_month`); a part of it replaces them only"
            " when triggered with param `replace_closed_month`. Not retried."
        )
    if kind == QUALITY_GATE:
        return kind, (
            "The quality gate stopped the run; nothing was published. The error lists each critical rule with its"
            " table, column, count and example keys; the full report is `cp_staging.dq_results_<run>`, the Data"
            " Docs are under `<export location>/<YYYY-MM>/data_docs/<run>/`. An empty source (`.not_empty`): if"
            " the period really had none, trigger the run again with param `allow_empty_sources`. A rule over its"
            " ceiling (`.ceiling`) or NaN/Infinity (`.finite`): fix the source, then clear the extracts with"
            " downstream; or fix the staged data and clear `validate` with downstream. Not retried."
        )
    if kind == RATES_STALE:
        return kind, (
            "Exchange rates the period needs are missing or too old (the error names each currency and its last"
            " rate); nothing was published. Point connection `fx_rates` at a source that has those days, or load"
            " them into `analytics.fx_rates`, then clear `calculate` with downstream. Not retried."
        )
    if kind == STAGES_GONE:
        return kind, (
            "The run's staged tables are gone (kept `staging_retention_days`, 7 by default); nothing was sent and"
            " the destination still shows the previous complete month. Clear the extract tasks with downstream"
            " to rebuild the run, or trigger a new run for the month. Not retried."
        )
    if kind == DELIVERY_UNCONFIRMED:
        return kind, (
            "An earlier try may have sent the email: the relay's answer never came. Nothing was sent again. Find"
            " the Message-ID of the error in the relay's log or an inbox. Arrived: run the error's"
            " `email-delivery ... --confirm` command, then mark this task successful. Not arrived: the same with"
            " `--resend`, then clear this task (it sends once, with the same Message-ID). Not retried."
        )
    if kind == CONFIGURATION:
        return kind, (
            "A setting or configuration file is invalid (the error names it): fix it where the deployment sets"
            " it (`CUSTOMER_PERFORMANCE_*` variables, `filters.json` or `filter_config`, `scorecard.json` or"
            " `scorecard_config`, the analytics schema's"
            f" migrations), {then}" + (retry_text or " Retrying does not help.")
        )
    return "other", (doc.on_failure if doc else "See the task log.") + retry_text
