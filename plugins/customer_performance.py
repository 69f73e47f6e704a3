"""Airflow 3 plugin: the "Customer Performance" dashboard (a FastAPI app on the api-server at
/customer-performance/, and an external view that puts it in the UI's navigation), and the
listener that notes on each run which period it reports (run_notes.py)."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from include.customer_performance import run_notes
from include.customer_performance.dashboard.app import create_app


class CustomerPerformancePlugin(AirflowPlugin):
    name = "customer_performance"
    listeners = [run_notes]
    fastapi_apps = [{"app": create_app(), "url_prefix": "/customer-performance", "name": "Customer Performance"}]
    external_views = [
        {
            "name": "Customer Performance",
            "href": "/customer-performance/",
            "destination": "nav",
            "url_route": "customer-performance",
            "category": "browse",
        }
    ]
