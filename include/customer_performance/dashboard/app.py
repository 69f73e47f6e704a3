"""The dashboard's FastAPI app, mounted by the plugin on the Airflow api-server under
``/customer-performance``: the page, its script (shipped here: no CDN), and two JSON endpoints.
It reads only the analytics database, through the ``analytics_db`` connection.

Airflow does not authenticate a plugin's app: the page and the API ask the api-server's auth
manager themselves (the UI's session cookie or a bearer token), and serve only a user who may read
the ``customer_performance`` DAG's runs: 401 without a user, 403 otherwise."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from fastapi import Depends, FastAPI, HTTPException, Query
from fastapi import Path as Path_
from fastapi.responses import FileResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles

from include.customer_performance.period import month_period

STATIC = Path(__file__).resolve().parent / "static"


def _conn():
    from include.customer_performance.config import settings
    from include.customer_performance.db import pg

    return pg(settings().analytics_db_conn_id)


FIRST_YEAR = 1970  # months outside FIRST_YEAR .. next year are refused (400), never queried


def _month(month: str) -> date:
    """The report month of ``YYYY-MM``, or HTTP 400: never a query with anything else."""
    try:
        period = month_period(month)
    except (ValueError, OverflowError) as exc:  # 9999-12 has no next month: OverflowError
        raise HTTPException(400, f"{month[:20]!r} is not a month (YYYY-MM): {exc}") from None
    if not FIRST_YEAR <= period.start.year <= date.today().year + 1:
        raise HTTPException(400, f"{month} is outside {FIRST_YEAR}-01 .. {date.today().year + 1}-12")
    return period.report_month


def airflow_runs(report_month: date, dag_id: str = "customer_performance", limit: int = 5) -> dict:
    """The month's DAG runs from Airflow's metadata DB (the api-server's own session), newest first,
    each with its state and the tasks that failed: a run whose gate failed publishes nothing, so
    only Airflow knows of it. ``available`` is False where there is no metadata DB to ask."""
    from datetime import UTC, datetime, timedelta

    from include.customer_performance.period import add_months, period_for

    try:
        from airflow.models.dagrun import DagRun
        from airflow.models.taskinstance import TaskInstance
        from airflow.utils.session import create_session
        from sqlalchemy import func, select

        # the runs whose period is in the month (period_for: the 2nd of the month to the 1st of
        # the next, by the logical date, or run_after for a run without one, as staging.make_run),
        # and the recent runs forced onto a month by the param report_month
        lo = datetime.combine(report_month + timedelta(days=1), datetime.min.time(), UTC)
        hi = datetime.combine(add_months(report_month, 1) + timedelta(days=1), datetime.min.time(), UTC)
        anchor = func.coalesce(DagRun.logical_date, DagRun.run_after)
        with create_session() as session:
            dated = select(DagRun).where(DagRun.dag_id == dag_id, anchor >= lo, anchor < hi)
            recent = select(DagRun).where(DagRun.dag_id == dag_id).order_by(DagRun.id.desc()).limit(200)
            found = {
                r.run_id: r for q in (dated.order_by(DagRun.id.desc()).limit(100), recent) for r in session.scalars(q)
            }
            mine = []
            for r in found.values():
                forced = (r.conf or {}).get("report_month")
                try:
                    period = period_for(r.logical_date or r.run_after, forced if isinstance(forced, str) else None)
                except (ValueError, TypeError):  # a param that is not a month: not a run of any month
                    continue
                if period.report_month == report_month:
                    mine.append(r)
            mine.sort(key=lambda r: (r.start_date or r.run_after, r.id), reverse=True)
            mine = mine[:limit]
            failed: dict[str, list[str]] = {}
            for run_id, task_id in session.execute(
                select(TaskInstance.run_id, TaskInstance.task_id).where(
                    TaskInstance.dag_id == dag_id,
                    TaskInstance.run_id.in_([r.run_id for r in mine]),
                    TaskInstance.state.in_(("failed", "upstream_failed")),
                )
            ):
                failed.setdefault(run_id, []).append(task_id)
            out = [
                {
                    "run_id": r.run_id,
                    "state": getattr(r.state, "value", r.state),
                    "logical_date": (r.logical_date or r.run_after).isoformat(),
                    "end_date": r.end_date.isoformat() if r.end_date else None,
                    "failed_tasks": sorted(failed.get(r.run_id, [])),
                }
                for r in mine
            ]
        return {"available": True, "runs": out}
    except Exception as exc:  # noqa: BLE001 - no metadata DB here (a test app, a bare process): say so
        return {"available": False, "runs": [], "error": type(exc).__name__}


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
        report_month = _month(month)
        cfg = settings()
        with _conn() as conn:
            out = data.month_data(conn, cfg.analytics_schema, report_month, cfg.reporting_currency)
        if out is None:
            raise HTTPException(404, f"{month} has not been loaded into the analytics database")
        out["airflow"] = airflow_runs(report_month)
        out["banners"] += data.run_banners(out["airflow"], out["run"])
        return out

    @app.get("/api/month/{month}/at-risk")
    def at_risk(month: str, offset: int = Query(0, ge=0, le=10_000_000), limit: int = Query(20, ge=1, le=200)) -> dict:
        with _conn() as conn:
            try:
                return data.at_risk_page(conn, settings().analytics_schema, _month(month), offset, limit)
            except data.MonthNotLoadedError as exc:
                raise HTTPException(404, str(exc)) from None

    @app.get("/api/month/{month}/at-risk.csv")
    def at_risk_csv(month: str) -> StreamingResponse:
        report_month = _month(month)
        with _conn() as conn:  # a month not loaded is a 404 before the download starts
            try:
                data.at_risk_page(conn, settings().analytics_schema, report_month, 0, 1)
            except data.MonthNotLoadedError as exc:
                raise HTTPException(404, str(exc)) from None

        def lines():
            with _conn() as conn:
                yield from data.at_risk_csv(conn, settings().analytics_schema, report_month)

        return StreamingResponse(
            lines(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="at_risk_{report_month:%Y-%m}.csv"'},
        )

    @app.get("/api/customer/{customer_id}")
    def customer(customer_id: int = Path_(ge=0, le=2**63 - 1)) -> dict:
        with _conn() as conn:
            out = data.customer_history(conn, settings().analytics_schema, customer_id)
        if out is None:
            raise HTTPException(404, f"customer {customer_id} is in no loaded month")
        return out

    return app
