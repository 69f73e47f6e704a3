"""The one configuration object of the package: connection ids, schemas, currencies, delivery.

Every setting has a default that works with the local stand-ins; a deployment overrides any of
them with an environment variable ``CUSTOMER_PERFORMANCE_<FIELD>`` (upper case). Credentials are
never here: they live in the Airflow connections these ids point at.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from include.customer_performance import metrics

ENV_PREFIX = "CUSTOMER_PERFORMANCE_"
PACKAGE_DIR = Path(__file__).resolve().parent
EMAIL_POLICIES = ("month_close", "daily", "manual")


@dataclass(frozen=True)
class Settings:
    # Airflow connection ids (README, "Running it for real").
    customer_db_conn_id: str = "customer_db"
    sales_db_conn_id: str = "sales_db"
    crm_api_conn_id: str = "crm_api"
    analytics_db_conn_id: str = "analytics_db"
    bi_api_conn_id: str = "bi_api"
    smtp_conn_id: str = "smtp_default"
    # The exchange-rate source (fx.py); empty: no refresh, the deployment keeps analytics.fx_rates.
    fx_rates_conn_id: str = "fx_rates"

    # The DAG's start date (YYYY-MM-DD): no run, backfills included, can have a logical date before
    # it. Early by default so that decades of history can be backfilled (catchup is off).
    dag_start_date: str = "1970-01-01"

    # Analytics database layout.
    staging_schema: str = "cp_staging"
    staging_retention_days: int = 7  # staged tables of older runs are dropped
    analytics_schema: str = "analytics"
    analytics_retention_months: int = 24  # monthly partitions older than this are dropped by the load
    # The load swaps the month in under a lock readers queue behind: it waits at most this long for
    # each lock, then lets the readers go and tries again, this many times (load/analytics_db.py).
    publish_lock_timeout_seconds: float = 2.0
    publish_lock_attempts: int = 30

    # Failure handling (both layers are read through retry.plan). Retries per kind of task
    # (runbook.TASKS says which kind each task is) after a retryable failure, each
    # retry_delay_seconds after the failed try; transforms run in our own database and retry once.
    # Inside a try, each HTTP request is retried first: request_attempts attempts, backoff doubling
    # from request_backoff_seconds, waits capped at request_max_wait_seconds.
    extract_retries: int = 3
    transform_retries: int = 1
    deliver_retries: int = 3
    retry_delay_seconds: int = 120
    request_attempts: int = 5
    rates_request_attempts: int = 3  # the rates source's requests (calculate, validate)
    request_backoff_seconds: float = 0.5
    request_max_wait_seconds: float = 60.0
    # Who hears about a failed task (after its retries) and a run missing its deadline; empty: nobody.
    alert_email_to: tuple[str, ...] = ("data-oncall@example.com",)
    # Another Airflow notifier instead of the email: "package.module:factory", called with
    # task_id= and advice= and returning the notifier (e.g. a SlackWebhookNotifier).
    failure_notifier: str = ""
    # The longest a try of each kind of task may run before Airflow stops it (execution_timeout).
    extract_timeout_minutes: int = 180
    transform_timeout_minutes: int = 180
    deliver_timeout_minutes: int = 60
    deadline_minutes: int = 240  # a run unfinished this long after its logical date (02:00 -> 06:00) alerts

    # Extraction.
    crm_page_size: int = 5000
    crm_connect_timeout: float = 5.0
    crm_read_timeout: float = 30.0
    crm_request_seconds: float = 120.0  # a whole page, however slowly it drips
    crm_max_pages: int = 100_000  # pages per run; a longer pagination is an error
    crm_max_page_mb: int = 64  # a page's body after decompression
    copy_chunk_rows: int = 50_000
    # The lifetime purchase summary (extract/lifetime.py): "incremental" reads the period and the
    # customers changed since the last snapshot; "full" one GROUP BY over every sale, every run (a
    # source that deletes sales outright, which no updated_at shows). A row updated up to
    # lifetime_lookback_hours before a snapshot's watermark is looked at again (writers whose
    # updated_at lags their commit); the lifetime_snapshots_kept snapshots built last are kept.
    lifetime_mode: str = "incremental"
    lifetime_lookback_hours: float = 24.0
    lifetime_snapshots_kept: int = 3
    # The source's GROUP BY of the summary (the period's, or the whole history's when a snapshot is
    # built) as this many queries side by side, each over a class of customer ids modulo this
    # number, each on its own connection: for a source with cores and a buffer pool to spare. Each
    # query reads the whole window. On this machine (2 cores, MariaDB's 128 MB buffer pool) two
    # were slower than one at 1M customers (docs/benchmarks.md), so one is the default.
    lifetime_source_queries: int = 1

    # Transformation.
    reporting_currency: str = "USD"
    fx_max_staleness_days: int = metrics.FX_MAX_STALENESS_DAYS  # a needed rate older than this fails the run
    fx_max_download_mb: int = 64  # the rates file, decompressed
    transform_work_mem: str = "128MB"  # PostgreSQL work_mem of the transform sessions
    alert_region_revenue_drop: float = metrics.ALERT_REGION_REVENUE_DROP
    alert_revenue_at_risk_share: float = metrics.ALERT_REVENUE_AT_RISK_SHARE
    alert_completeness_min: float = metrics.ALERT_COMPLETENESS_MIN
    filter_config: Path = PACKAGE_DIR / "filters.json"
    # An optional CSV of the addressable market per region (market.py); empty: market penetration is
    # measured against each region's customer base.
    market_size_file: str = ""
    # The metrics' weights and thresholds (scorecard.py); a deployment's file may give only some keys.
    scorecard_config: Path = PACKAGE_DIR / "scorecard.json"

    # Quality gate thresholds.
    quality_required_completeness: float = 0.95  # a required field less complete than this is critical
    # Rows per day against the recent periods: below min (a fall of more than 30 %) or above max, a
    # warning and an alert; below stop (a fall of more than 60 %) in a period of a week or more, the
    # month stops before any destination (a day alone varies too much with the weekday).
    quality_volume_min_ratio: float = 0.7
    quality_volume_max_ratio: float = 2.0
    quality_volume_stop_ratio: float = 0.4
    quality_freshness_days: int = 2  # the latest event older than this before the period end: warning + alert
    # A warning rule quarantining more than this share of its table's rows (or, for transactions, of
    # their gross amount) fails as critical: past it the month is no longer the month.
    quality_warning_max_share: float = 0.02
    quality_warning_max_amount_share: float = 0.02

    # Delivery.
    bi_dataset: str = "customer_performance"
    bi_tables: tuple[str, ...] = (
        "kpis",
        "regional_summary",
        "performance_trends",
        "alerts",
        "top_customers",
        "period_comparison",
        "engagement_heatmap",
        "interaction_summary",
        "engagement_correlations",
    )
    bi_batch_rows: int = 10_000
    export_location: str = field(
        default_factory=lambda: str(
            Path(os.environ.get("AIRFLOW_HOME", "~/airflow")).expanduser() / "exports" / "customer_performance"
        )
    )
    # A missing local export location is an error (a typo or an unmounted volume would otherwise
    # fill a new folder nobody reads); true: the pipeline creates it.
    export_create_location: bool = False
    # The local export location is a folder every worker mounts (NFS, a shared volume): no warning
    # when the executor runs tasks on several machines (export/artifacts.local_store_warning).
    export_location_shared: bool = False
    email_to: tuple[str, ...] = ("stakeholders@example.com",)
    email_from: str = "customer-performance@example.com"
    export_pii: bool = False  # email and phone in the customer CSV (never in quality examples)
    email_attachment_limit_mb: int = 10  # larger exports are compressed, then linked if still too large
    # A linked file in an object store (S3 and S3-compatible) gets a time-limited link for the
    # readers, valid this long (at most 168, seven days: the longest S3 signs for).
    export_link_hours: int = 168
    # The AWS connection that signs those links, when readers reach the store at another address
    # than the workers do (its endpoint_url is the readers'); empty: the export location's own.
    export_link_conn_id: str = ""
    # When the export is emailed: "month_close" (the run that closes a month, and manual runs),
    # "daily" (every run) or "manual" (manual runs only). The CSV files are written on every run.
    email_policy: str = "month_close"

    def __post_init__(self) -> None:
        if not 1 <= self.bi_batch_rows <= 10_000:
            raise ValueError(f"bi_batch_rows must be between 1 and 10000, got {self.bi_batch_rows}")
        if self.lifetime_mode not in ("incremental", "full"):
            raise ValueError(f"lifetime_mode must be incremental or full, got {self.lifetime_mode!r}")
        if self.lifetime_snapshots_kept < 1 or self.lifetime_lookback_hours < 0:
            raise ValueError("lifetime_snapshots_kept must be at least 1 and lifetime_lookback_hours not negative")
        if not 1 <= self.lifetime_source_queries <= 8:
            raise ValueError(f"lifetime_source_queries must be between 1 and 8, got {self.lifetime_source_queries}")
        if self.email_policy not in EMAIL_POLICIES:
            raise ValueError(f"email_policy must be one of {', '.join(EMAIL_POLICIES)}, got {self.email_policy!r}")
        if self.analytics_retention_months < 1:
            raise ValueError(f"analytics_retention_months must be positive, got {self.analytics_retention_months}")
        if not 0 <= self.quality_warning_max_share <= 1 or not 0 <= self.quality_warning_max_amount_share <= 1:
            raise ValueError(
                "quality_warning_max_share and quality_warning_max_amount_share are shares between 0 and 1"
            )
        if self.fx_max_staleness_days < 0:
            raise ValueError(f"fx_max_staleness_days must not be negative, got {self.fx_max_staleness_days}")
        try:
            date.fromisoformat(self.dag_start_date)
        except ValueError:
            raise ValueError(f"dag_start_date must be YYYY-MM-DD, got {self.dag_start_date!r}") from None
        if self.request_attempts < 1 or self.rates_request_attempts < 1:
            raise ValueError("request_attempts and rates_request_attempts must be at least 1")
        if not 1 <= self.export_link_hours <= 168:
            raise ValueError(f"export_link_hours must be between 1 and 168, got {self.export_link_hours}")
        if self.crm_page_size < 1:
            raise ValueError(f"crm_page_size must be positive, got {self.crm_page_size}")


def _coerce(raw: str, f: dataclasses.Field, current: object) -> object:
    if isinstance(current, tuple):
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    if isinstance(current, Path):
        return Path(raw)
    if isinstance(current, bool):
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    if isinstance(current, int):
        return int(raw)
    if isinstance(current, float):
        return float(raw)
    return raw


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    """Build the settings from the defaults and ``CUSTOMER_PERFORMANCE_*`` overrides."""
    environ = os.environ if environ is None else environ
    defaults = Settings()
    overrides = {}
    for f in dataclasses.fields(Settings):
        raw = environ.get(ENV_PREFIX + f.name.upper())
        if raw is not None:
            try:
                overrides[f.name] = _coerce(raw, f, getattr(defaults, f.name))
            except ValueError as exc:
                raise ValueError(f"{ENV_PREFIX}{f.name.upper()}={raw!r} is not valid: {exc}") from exc
    return dataclasses.replace(defaults, **overrides)


@functools.cache
def settings() -> Settings:
    """The process-wide settings (read once per task process)."""
    return load_settings()
