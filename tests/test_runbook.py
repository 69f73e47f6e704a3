"""What on-call reads when something fails: advice chosen by the kind of error (runbook.advice), with
when Airflow retries, and the alert email that carries it (notify.FailureEmail)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from include.customer_performance.extract.contract import SourceContractError
from include.customer_performance.fx import StaleRatesError
from include.customer_performance.http_client import ApiError, AuthError
from include.customer_performance.quality.gate import QualityGateError
from include.customer_performance.runbook import TASKS, Retry, advice, connection_home
from include.customer_performance.transform.filter import FilterConfigError

NEXT = datetime(2026, 12, 1, 2, 14, tzinfo=UTC)


def test_refused_credentials_say_where_the_connection_lives_and_which_wins():
    exc = AuthError("crm_api: GET /v1/interactions was refused with 401", conn_id="crm_api")
    kind, text = advice(exc, "extract_crm_api", Retry(1, 4, None, refused=True), environ={"AIRFLOW_CONN_CRM_API": "{}"})
    assert kind == "credentials refused"
    assert "`crm_api` lives in the environment variable AIRFLOW_CONN_CRM_API on the workers" in text
    assert "Admin > Connections is ignored while the variable is set" in text
    assert "secrets backend, then AIRFLOW_CONN_<ID>, then Admin > Connections" in text
    assert "Airflow will not retry (try 1 of 4: this error is not retried)." in text
    _, text = advice(exc, "extract_crm_api", environ={})
    assert "`crm_api` lives in Admin > Connections (the metadata database): edit it there" in text
    assert "then clear this task with downstream." in text
    backend = {"AIRFLOW__SECRETS__BACKEND": "airflow.providers.hashicorp.secrets.vault.VaultBackend"}
    assert connection_home("crm_api", backend).startswith("the secrets backend airflow.providers.hashicorp")
    # a database password refused: the task's connections are named
    kind, text = advice(RuntimeError('FATAL:  password authentication failed for user "x"'), "extract_customer_db")
    assert kind == "credentials refused" and "`customer_db` lives in" in text and "`analytics_db` lives in" in text


def test_network_errors_say_when_airflow_tries_again():
    kind, text = advice(ApiError("bi_api: POST /rows still failing after 5 attempts"), "push_bi_api", Retry(1, 4, NEXT))
    assert kind == "network or server error"
    assert "Airflow retries at 02:14 UTC (2026-12-01), try 2 of 4." in text
    assert "then clear this task alone." in text  # a destination is cleared alone
    _, last = advice(ApiError("still failing"), "push_bi_api", Retry(4, 4, None))
    assert "Airflow will not retry (try 4 of 4: that was the last try)." in last


@pytest.mark.parametrize(
    ("exc", "task", "kind", "says"),
    [
        (SourceContractError("sales_db: transactions: column 'amount' is missing"), "extract_sales_db",
         "source contract", "fix the source, or the contract in `schemas.py`"),
        (QualityGateError("data quality gate failed ..."), "validate", "quality gate",
         "`cp_staging.dq_results_<run>`, the Data Docs are under `<export location>/<YYYY-MM>/data_docs/<run>/`"),
        (StaleRatesError("exchange rates are missing or stale ..."), "calculate", "exchange rates stale",
         "Point connection `fx_rates` at a source that has those days"),
        (FilterConfigError("transactions: condition 1: no field 'amout'"), "filter_period", "configuration invalid",
         "`filters.json` or `filter_config`"),
        (ValueError("CUSTOMER_PERFORMANCE_BI_BATCH_ROWS='0' is not valid"), "push_bi_api", "configuration invalid",
         "`CUSTOMER_PERFORMANCE_*` variables"),
    ],
)  # fmt: skip
def test_each_kind_of_error_has_its_advice(exc, task, kind, says):
    got_kind, text = advice(exc, task)
    assert got_kind == kind and says in text


def test_anything_else_gets_the_tasks_own_advice():
    kind, text = advice(KeyError("boom"), "aggregate", Retry(1, 2, NEXT))
    assert kind == "other" and text.startswith(TASKS["aggregate"].on_failure) and "try 2 of 2" in text


def test_the_alert_email_names_the_month_task_and_error_escaped_with_links(monkeypatch):
    from include.customer_performance.notify import FailureEmail
    from include.customer_performance.retry import NO_RETRY_ON_BAD_DATA

    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "http://airflow.example:8080")
    hostile = QualityGateError("customers.email.format: examples ['<img src=x onerror=alert(1)>', '{{ 7 * 7 }}']")
    task = SimpleNamespace(retry_policy=NO_RETRY_ON_BAD_DATA, retry_delay=timedelta(minutes=2))
    context = {
        "exception": hostile,
        "ti": SimpleNamespace(try_number=1, max_tries=1, task=task, log_url="http://airflow.example:8080/log?x=1&y=2"),
        "dag_run": SimpleNamespace(run_id="scheduled__2025-08-01T02:00:00+00:00", run_after=None),
        "logical_date": datetime(2025, 8, 1, 2, tzinfo=UTC),
        "params": {},
    }
    subject, body = FailureEmail("validate", ["oncall@x"], "cp@x", "smtp_default").message(context)
    assert subject == "[Customer Performance] July 2025 run failed at validate"
    assert "July 2025 (month close)" in body and "scheduled__2025-08-01T02:00:00+00:00" in body
    assert "QualityGateError: customers.email.format" in body
    assert "<img" not in body and "&lt;img src=x onerror=alert(1)&gt;" in body  # escaped, never markup
    assert (
        "examples [&#x27;&lt;img src=x onerror=alert(1)&gt;&#x27;, &#x27;{{ 7 * 7 }}&#x27;]" in body
    )  # literal, never evaluated
    assert "Nothing of this run was published: it stopped at validate" in body
    assert "What to do</b>: The quality gate stopped the run" in body
    assert 'href="http://airflow.example:8080/log?x=1&amp;y=2"' in body
    assert (
        "Task documentation (the Documentation button on the task's page):"
        ' <a href="http://airflow.example:8080/dags/customer_performance/tasks/validate"' in body
    )
