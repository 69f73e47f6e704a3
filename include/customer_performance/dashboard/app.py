"""The dashboard's FastAPI app, mounted by the plugin on the Airflow api-server under
``/customer-performance``: the page, its script (shipped here: no CDN), and two JSON endpoints.
It reads only the analytics database, through the ``analytics_db`` connection.

Airflow does not authenticate a plugin's app: the page and the API ask the api-server's auth
manager themselves (the UI's session cookie or a bearer token), and serve only a user who may read
the ``customer_performance`` DAG's runs: 401 without a user, 403 otherwise."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from fastapi import Depends, FastAPI, HTTPException
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from include.customer_performance.period import month_period

STATIC = Path(__file__).resolve().parent / "static"


def _conn():
    from include.customer_performance.config import settings
    from include.customer_performance.db import pg

    return pg(settings().analytics_db_conn_id)


FIRST_YEAR = 1970  # months outside FIRST_YEAR .. next year are refused (400), never queried


def dag_readers():
    """The FastAPI dependency: a user of the api-server's auth manager allowed to read the DAG's runs."""
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
    from airflow.api_fastapi.core_api.security import requires_access_dag

    return Depends(requires_access_dag("GET", DagAccessEntity.RUN, "customer_performance"))


def create_app(auth: bool = True) -> FastAPI:
    """The app; ``auth=False`` only for a test without an api-server."""
    from include.customer_performance.config import settings
    from include.customer_performance.dashboard import data

    app = FastAPI(title="Customer Performance dashboard", dependencies=[dag_readers()] if auth else [])
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.get("/api/months")
    def months() -> dict:
        with _conn() as conn:
            return data.months(conn, settings().analytics_schema)

    @app.get("/api/month/{month}")
    def month(month: str) -> dict:
        try:
            period = month_period(month)
        except (ValueError, OverflowError) as exc:  # 9999-12 has no next month: OverflowError
            raise HTTPException(400, f"{month[:20]!r} is not a month (YYYY-MM): {exc}") from None
        if not FIRST_YEAR <= period.start.year <= date.today().year + 1:
            raise HTTPException(400, f"{month} is outside {FIRST_YEAR}-01 .. {date.today().year + 1}-12")
        with _conn() as conn:
            out = data.month_data(conn, settings().analytics_schema, period.report_month)
        if out is None:
            raise HTTPException(404, f"{month} has not been loaded into the analytics database")
        return out

    return app
