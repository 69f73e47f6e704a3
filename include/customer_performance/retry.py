"""Retry policies (Airflow 3.3): which failures a retry can fix and which it cannot."""

from __future__ import annotations

from airflow.sdk import ExceptionRetryPolicy, RetryAction, RetryRule

_BAD_DATA = [
    "include.customer_performance.extract.contract.SourceContractError",
    "include.customer_performance.transform.filter.FilterConfigError",
    "include.customer_performance.quality.gate.QualityGateError",
    "include.customer_performance.fx.StaleRatesError",
    "include.customer_performance.http_client.ConnectionConfigError",
    "include.customer_performance.extract.sales_db.NulByteError",
    "include.customer_performance.migrations.MigrationError",
    "include.customer_performance.export.csv_email.ExportLocationError",
    "include.customer_performance.export.csv_email.AmbiguousDeliveryError",
    "include.customer_performance.load.bi_api.MissingStageError",
]

# Bad data or configuration does not get better by waiting: fail at once, say why.
NO_RETRY_ON_BAD_DATA = ExceptionRetryPolicy(
    rules=[
        RetryRule(
            exception=_BAD_DATA,
            action=RetryAction.FAIL,
            reason="bad data or configuration; fix it, then clear the task",
        )
    ]
)

# Refused credentials never fix themselves; malformed pages neither. Everything else (5xx,
# timeouts, connection errors that outlived the client's own retries) gets the task's retries.
API_RETRY_POLICY = ExceptionRetryPolicy(
    rules=[
        RetryRule(
            exception="include.customer_performance.http_client.AuthError",
            action=RetryAction.FAIL,
            reason="credentials refused (401/403); fix the connection, then clear the task",
        ),
        RetryRule(
            exception=[
                "include.customer_performance.extract.crm_api.MalformedPageError",
                "include.customer_performance.http_client.TooLargeError",
            ],
            action=RetryAction.FAIL,
            reason="the API answered with a malformed or oversized page",
        ),
        *NO_RETRY_ON_BAD_DATA.rules,
    ]
)
