"""The run's artifacts outside the databases: the export location (checked before the first
write), the month's folder in it, and the Data Docs, which are copied there after the gate and
whose failure is a warning of the report and an alert, never a reason to stop."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from psycopg import sql

from include.customer_performance.config import Settings
from include.customer_performance.staging import Run

log = logging.getLogger(__name__)


def export_dir(run: Run, cfg: Settings):
    """The month's folder of run artifacts (an ``ObjectStoragePath``): CSV exports, Data Docs. The
    export location itself is checked first (csv_email.check_location)."""
    from include.customer_performance.export.csv_email import check_location

    return check_location(cfg.export_location, cfg.export_create_location) / run.period.report_month.strftime("%Y-%m")


def data_docs_target(run: Run, cfg: Settings) -> str:
    """Where the run's Data Docs go, for messages (the location unchecked)."""
    from include.customer_performance.export.csv_email import display, storage_path

    month = run.period.report_month.strftime("%Y-%m")
    return display(storage_path(cfg.export_location) / month / "data_docs" / run.key)


def publish_data_docs(run: Run, cfg: Settings, docs: Path) -> str | None:
    """Copy the Data Docs GX wrote into ``docs`` (a local temporary folder) to the export location;
    returns None, or what went wrong: Data Docs are for people, their failure never stops the gate
    (it becomes a warning of the report, and an alert)."""
    from include.customer_performance.export.csv_email import open_file

    try:
        target = export_dir(run, cfg) / "data_docs" / run.key
        mark = target / PUBLISHED_MARK
        if not mark.exists():
            from datetime import UTC, datetime

            target.mkdir(parents=True, exist_ok=True)
            with open_file(mark, "wb") as fh:
                fh.write(datetime.now(UTC).isoformat().encode())
        for path in sorted(docs.rglob("*")):
            if path.is_file():
                dest = target / str(path.relative_to(docs))
                dest.parent.mkdir(parents=True, exist_ok=True)
                with path.open("rb") as src, open_file(dest, "wb") as dst:
                    shutil.copyfileobj(src, dst)
    except Exception as exc:  # noqa: BLE001 - any storage error: reported, not raised
        where = data_docs_target(run, cfg)
        text = redact_url(str(exc)).replace(cfg.export_location, redact_url(cfg.export_location))
        problem = f"the Data Docs could not be written to {redact_url(where)}: {type(exc).__name__}: {text[:200]}"
        log.warning("%s (the gate goes on; alert data_docs)", problem)
        return problem
    return None


PUBLISHED_MARK = "published_at"  # in a run's Data Docs folder: when it was first seen (UTC, ISO)


def prune_data_docs(cur, run: Run, cfg: Settings, now=None) -> list[str]:
    """Drop the Data Docs of other runs, of every month of the export location, first seen more
    than ``staging_retention_days`` ago, as the staged tables are; never those of a month's
    published period (its newest load in ``pipeline_runs``: the dashboard links them). A run's
    folder is marked when first seen (its own publish, or this pruning for a folder written before
    the marks). Returns the folders dropped (``YYYY-MM/run``); a storage error is logged, never
    raised (Data Docs are for people)."""
    import re
    from datetime import UTC, datetime, timedelta

    from include.customer_performance.export.csv_email import open_file

    now = now or datetime.now(UTC)
    keep = {(run.period.report_month.strftime("%Y-%m"), run.key)}
    cur.execute("SELECT to_regclass(%s)", (f"{cfg.analytics_schema}.pipeline_runs",))
    if cur.fetchone()[0] is not None:
        cur.execute(
            sql.SQL(
                "SELECT DISTINCT ON (report_month) to_char(report_month, 'YYYY-MM'), quality ->> 'data_docs' FROM {}"
                " ORDER BY report_month, period_end DESC, loaded_at DESC"
            ).format(sql.Identifier(cfg.analytics_schema, "pipeline_runs"))
        )
        keep |= {(month, str(docs).rstrip("/").rpartition("/")[2]) for month, docs in cur.fetchall() if docs}
    dropped = []
    try:
        root = export_dir(run, cfg).parent
        for month_dir in root.iterdir():
            if not (month_dir.is_dir() and re.fullmatch(r"\d{4}-\d{2}", month_dir.name)):
                continue
            docs = month_dir / "data_docs"
            if not docs.exists():
                continue
            for folder in docs.iterdir():
                if not folder.is_dir() or (month_dir.name, folder.name) in keep:
                    continue
                mark = folder / PUBLISHED_MARK
                if not mark.exists():
                    with open_file(mark, "wb") as fh:
                        fh.write(now.isoformat().encode())
                    continue
                with open_file(mark, "rb") as fh:
                    seen = datetime.fromisoformat(fh.read().decode().strip())
                if now - seen > timedelta(days=cfg.staging_retention_days):
                    folder.fs.rm(folder.path, recursive=True)
                    dropped.append(f"{month_dir.name}/{folder.name}")
    except Exception as exc:  # noqa: BLE001 - any storage error: reported, not raised
        log.warning("the Data Docs of older runs could not be pruned: %s", redact_url(str(exc))[:300])
    if dropped:
        log.info(
            "dropped the Data Docs of %s run(s) older than %s days: %s",
            len(dropped),
            cfg.staging_retention_days,
            dropped,
        )
    return dropped


# Executors that run every task on the scheduler's own machine: a local folder is one store.
SINGLE_MACHINE_EXECUTORS = {"LocalExecutor", "SequentialExecutor", "DebugExecutor"}


def local_store_warning(cfg: Settings, executor: str | None = None) -> str:
    """Why the export location cannot hold a distributed deployment's artifacts, or '': a local
    folder (not declared shared with ``export_location_shared``) while the executor (Airflow's
    ``[core] executor``, a list of names, class paths or ``alias:path``) may run tasks on other
    machines. Each month's CSV files and Data Docs would land on whichever worker ran the task."""
    from include.customer_performance.export.csv_email import is_local, storage_path

    if executor is None:
        from airflow.configuration import conf

        executor = conf.get("core", "executor", fallback="LocalExecutor")
    names = [e.strip() for e in executor.split(",") if e.strip()]
    remote = [n for n in names if n.rpartition(":")[2].rpartition(".")[2] not in SINGLE_MACHINE_EXECUTORS]
    if not remote or cfg.export_location_shared or not is_local(storage_path(cfg.export_location)):
        return ""
    return (
        f"the export location {cfg.export_location} is a folder on the worker, and the executor ({', '.join(remote)})"
        " runs tasks on other machines: each month's CSV files and Data Docs land on whichever worker ran the"
        " task, and the run record and the email name a path that exists only there. Set"
        " CUSTOMER_PERFORMANCE_EXPORT_LOCATION to an object store (s3://<conn>@<bucket>/<prefix>), or, for a"
        " folder every worker mounts, CUSTOMER_PERFORMANCE_EXPORT_LOCATION_SHARED=true"
        " (docs/deployment.md, 'Distributed deployment')"
    )


def redact_url(text: str) -> str:
    """``text`` with the password of any ``scheme://user:password@`` and every URL's query string
    left out: what a storage error says goes into the quality report, the alerts and emails."""
    import re

    text = re.sub(r"(\w+://[^/\s:@]*):[^@\s/]*@", r"\1:***@", text)
    return re.sub(r"(\w+://[^\s?]*)\?\S*", r"\1?***", text)


def add_data_docs_alert(cur, run: Run, problem: str) -> None:
    """The alert ``data_docs`` for the aggregates' Data Docs, unless the gate's raised it already."""
    from psycopg import sql

    cur.execute(
        sql.SQL(
            "INSERT INTO {t} (alert, severity, scope, value, threshold, message)"
            " SELECT 'data_docs', 'warning', 'data_docs', NULL, NULL, %s"
            " WHERE NOT EXISTS (SELECT FROM {t} WHERE alert = 'data_docs')"
        ).format(t=run.table("alerts")),
        (problem[:300],),
    )
