"""How every task is retried, in one place: both layers, per kind of task.

A task's failure is handled in two layers. Inside a try, an HTTP request (CRM, BI, rates source)
is retried by the HTTP client: ``request_attempts`` attempts with exponential backoff from
``request_backoff_seconds``, capped at ``request_max_wait_seconds``, on 5xx, 429 (honouring
``Retry-After``) and network errors; never on 401/403. Then Airflow retries the task:
``<kind>_retries`` times, ``retry_delay_seconds`` after the failed try, each try stopped after
``<kind>_timeout_minutes`` (kind: extract, transform, deliver; runbook.TASKS says each task's),
except for the errors a retry cannot fix (the task's policy below: bad data, configuration,
refused credentials), which fail at once. ``plan(task_id, cfg)`` is what the DAG and the HTTP
clients read; all the numbers are settings (config.py), overridable with
``CUSTOMER_PERFORMANCE_*``.
"""

from __future__ import annotations

from dataclasses import dataclass

from airflow.sdk import ExceptionRetryPolicy, RetryAction, RetryRule

_BAD_DATA = [
    "include.customer_performance.extract.contract.SourceContractError",
    "include.customer_performance.transform.filter.FilterConfigError",
    "include.customer_performance.quality.gate.QualityGateError",
    "include.customer_performance.fx.StaleRatesError",
    "include.customer_performance.scorecard.ScorecardError",
    "include.customer_performance.http_client.ConnectionConfigError",
    "include.customer_performance.extract.sales_db.NulByteError",
    "include.customer_performance.migrations.MigrationError",
    "include.customer_performance.export.csv_email.ExportLocationError",
    "include.customer_performance.export.csv_email.AmbiguousDeliveryError",
    "include.customer_performance.staging.MissingStageError",
    "include.customer_performance.stages.UndeclaredStageError",
    "include.customer_performance.publishing.ClosedMonthError",
    "include.customer_performance.market.MarketSizeError",
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

# The tasks that call an API: their policy also refuses to retry refused credentials and
# malformed pages. Every other task has NO_RETRY_ON_BAD_DATA.
API_TASKS = ("extract_crm_api", "push_bi_api")
# The tasks that fetch the exchange rates (fx.py): a rates source that is down costs them
# rates_request_attempts attempts (3), not request_attempts: the table may cover the period anyway.
RATES_TASKS = ("calculate", "validate")


@dataclass(frozen=True)
class RetryPlan:
    """Both retry layers of one task."""

    kind: str  # extract / transform / deliver
    task_retries: int  # Airflow's retries of the task
    delay_seconds: int  # between a failed try and the next (fixed, see the DAG's task_args)
    timeout_minutes: int  # the longest a try may run (execution_timeout)
    policy: ExceptionRetryPolicy  # the errors Airflow does not retry
    request_attempts: int  # per HTTP request, inside a try
    request_backoff_seconds: float
    request_max_wait_seconds: float

    def client_kwargs(self) -> dict:
        """The HTTP client's retry arguments (http_client.ApiClient)."""
        return {
            "max_attempts": self.request_attempts,
            "backoff": self.request_backoff_seconds,
            "max_wait": self.request_max_wait_seconds,
        }


def plan(task_id: str, cfg) -> RetryPlan:
    """The retry plan of ``task_id`` under the settings ``cfg``."""
    from include.customer_performance.runbook import TASKS

    kind = TASKS[task_id].kind
    return RetryPlan(
        kind=kind,
        task_retries=getattr(cfg, f"{kind}_retries"),
        delay_seconds=cfg.retry_delay_seconds,
        timeout_minutes=getattr(cfg, f"{kind}_timeout_minutes"),
        policy=API_RETRY_POLICY if task_id in API_TASKS else NO_RETRY_ON_BAD_DATA,
        request_attempts=cfg.rates_request_attempts if task_id in RATES_TASKS else cfg.request_attempts,
        request_backoff_seconds=cfg.request_backoff_seconds,
        request_max_wait_seconds=cfg.request_max_wait_seconds,
    )
