"""The Customer Performance dashboard inside the Airflow UI (plugins/customer_performance.py)."""
