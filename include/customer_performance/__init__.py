"""Customer Performance: nightly per-customer performance and health metrics for Airflow 3."""
