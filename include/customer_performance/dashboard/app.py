"""The dashboard's FastAPI app, mounted by the plugin on the Airflow api-server under
``/customer-performance``: the page, its script (shipped here: no CDN), and two JSON endpoints.
It reads only the analytics database, through the ``analytics_db`` connection."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, HTTPException
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from include.customer_performance.period import month_period

STATIC = Path(__file__).resolve().parent / "static"


def _conn():
    from include.customer_performance.config import settings
    from include.customer_performance.db import pg

    return pg(settings().analytics_db_conn_id)


def create_app() -> FastAPI:
    from include.customer_performance.config import settings
    from include.customer_performance.dashboard import data

    app = FastAPI(title="Customer Performance dashboard")
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
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from exc
        with _conn() as conn:
            out = data.month_data(conn, settings().analytics_schema, period.report_month)
        if out is None:
            raise HTTPException(404, f"{month} has not been loaded into the analytics database")
        return out

    return app
