"""What each DAG task does, as plain functions of the run; the DAG file only wires them.

Each function reads and writes staged tables in the analytics database and returns a small dict
(table names and counts) for XCom. Each is idempotent: it replaces what an earlier try wrote.
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path

from include.customer_performance.config import Settings, settings
from include.customer_performance.db import analytics
from include.customer_performance.export.artifacts import (
    add_data_docs_alert,
    data_docs_target,
    export_dir,
    prune_data_docs,
    publish_data_docs,
)
from include.customer_performance.staging import Run, make_run

log = logging.getLogger(__name__)


def current_run(cfg: Settings | None = None) -> Run:
    """The Run of the task being executed, from the Airflow context."""
    from airflow.sdk import get_current_context

    ctx = get_current_context()
    dag_run = ctx["dag_run"]
    cfg = cfg or settings()
    params = ctx.get("params") or {}
    return make_run(
        ctx.get("logical_date"),
        dag_run.run_id,
        params.get("report_month"),
        cfg.staging_schema,
        run_after=getattr(dag_run, "run_after", None),
        allow_empty_sources=params.get("allow_empty_sources") is True,
        replace_closed_month=params.get("replace_closed_month") is True,
    )


def execute(task, **kwargs) -> dict:
    """Run the task function ``task`` (one of this module's, named as its DAG task) for the current
    DAG run. Its result (for XCom) gains the wall time in ``seconds``; a failure is logged in two
    short records, what failed and then what to do about that kind of error (runbook.advice, with
    when Airflow retries), then raised for Airflow to retry or fail."""
    from include.customer_performance import lineage
    from include.customer_performance.runbook import advice

    cfg = settings()
    run = current_run(cfg)
    t0 = time.monotonic()
    lineage.start()
    from airflow.sdk.exceptions import AirflowSkipException

    try:
        guard_publishing(run, cfg)
        out = task(run, cfg, **kwargs)
    except AirflowSkipException:  # no failure: no failure's log, no advice
        raise
    except Exception as exc:
        log.error("%s failed for %s (run %s): %s: %s", task.__name__, run.period, run.run_id, type(exc).__name__, exc)
        kind, text = advice(exc, task.__name__, retry_of(exc))
        log.error("What to do (%s): %s", kind, text)
        raise
    lineage.report(task.__name__, run, cfg, out)
    return {**out, "seconds": round(time.monotonic() - t0, 1)}


def guard_publishing(run: Run, cfg: Settings) -> None:
    """Before a task works: skip a backfill's partial run of a past month, and refuse a partial
    month of a month published closed (publishing.py)."""
    from airflow.sdk import get_current_context
    from airflow.sdk.exceptions import AirflowSkipException

    from include.customer_performance import publishing

    reason = publishing.skip_reason(run, getattr(get_current_context()["dag_run"], "run_type", None))
    if reason:
        log.warning("Skipped: %s", reason)
        raise AirflowSkipException(reason)
    if publishing.is_partial(run) and not run.replace_closed_month:
        with analytics(cfg) as conn, conn.cursor() as cur:
            publishing.check(cur, cfg.analytics_schema, run, run.replace_closed_month)


def retry_of(exc: BaseException, context=None):
    """When Airflow tries this task again after ``exc`` (its retry policy, tries left and retry
    delay; the delay is fixed, see the DAG's task_args), as a runbook.Retry; None outside a task."""
    from datetime import UTC, datetime

    from include.customer_performance.runbook import Retry

    try:
        if context is None:
            from airflow.sdk import get_current_context

            context = get_current_context()
        ti = context["ti"]
        task = ti.task
    except Exception:  # noqa: BLE001 - not in a task (a test calling the functions directly)
        return None
    from airflow.sdk import RetryAction

    tries = ti.max_tries + 1
    policy = getattr(task, "retry_policy", None)
    refused = policy is not None and policy.evaluate(exc, ti.try_number, ti.max_tries).action == RetryAction.FAIL
    if refused or ti.try_number >= tries:
        return Retry(ti.try_number, tries, None, refused)
    return Retry(ti.try_number, tries, datetime.now(UTC) + task.retry_delay)


def check_configuration(run: Run, cfg: Settings) -> None:
    """Reject an invalid filter configuration or scorecard before any data moves (each extract
    calls this)."""
    from include.customer_performance import scorecard
    from include.customer_performance.transform.filter import load_filters

    load_filters(cfg.filter_config, run.period)
    scorecard.load(cfg.scorecard_config)


def extract_customer_db(run: Run, cfg: Settings) -> dict:
    from include.customer_performance.extract.customer_db import extract_customer_db as run_extract

    check_configuration(run, cfg)
    return run_extract(run, cfg)


def extract_sales_db(run: Run, cfg: Settings) -> dict:
    from include.customer_performance.extract.sales_db import extract_sales_db as run_extract

    check_configuration(run, cfg)
    return run_extract(run, cfg)


def extract_crm_api(run: Run, cfg: Settings) -> dict:
    from include.customer_performance.extract.crm_api import extract_crm_api as run_extract

    check_configuration(run, cfg)
    return run_extract(run, cfg)


def filter_period(run: Run, cfg: Settings) -> dict:
    """Apply the filter configuration to every staged dataset (raw -> flt_ tables).

    Also the run's housekeeping: staged tables of runs older than the retention are dropped here,
    the first task that runs once per DAG run.
    """
    from include.customer_performance.staging import drop_expired, register_run
    from include.customer_performance.transform.filter import apply_filter, load_filters

    filters = load_filters(cfg.filter_config, run.period)
    out = {}
    with analytics(cfg) as conn, conn.cursor() as cur:
        register_run(cur, run)
        dropped = drop_expired(cur, run, cfg.staging_retention_days)
        if dropped:
            log.info("dropped %s staged tables of runs older than %s days", len(dropped), cfg.staging_retention_days)
        for name, flt in filters.items():
            stats = apply_filter(cur, flt, run.table(name), run.table(f"flt_{name}"))
            for c in stats["conditions"]:
                log.info("filter %s: %s %s removed %s rows", name, c["field"], c["operator"], c["removed"])
            out[name] = {"table": run.table_name(f"flt_{name}"), **stats}
        conn.commit()
    return out


def calculate(run: Run, cfg: Settings) -> dict:
    """The metrics, from the staged tables without the rows the gate's warning rules reject; the
    exchange rates are refreshed and staged first."""
    with analytics(cfg) as conn:
        return _calculate(conn, run, cfg)


def _calculate(conn, run: Run, cfg: Settings, refresh=None, card=None, flag: bool = True) -> dict:
    """calculate's work on ``conn``; ``refresh``: the rates were refreshed and staged already;
    ``card``: the scorecard (by default the deployment's file, read now and fixed for the run);
    ``flag``: flag the transactions for the gate in the same pass as their conversion (the gate
    then judges those flags, see validate)."""
    from include.customer_performance import scorecard
    from include.customer_performance.fx import StaleRatesError
    from include.customer_performance.quality.gate import create_valid_views
    from include.customer_performance.quality.suites import SOURCE_SUITES
    from include.customer_performance.transform.calculate import calculate_metrics, prepare_rates

    refresh = refresh or prepare_rates(conn, run, cfg)
    with conn.cursor() as cur:
        create_valid_views(cur, run, SOURCE_SUITES)  # the currency rule reads the staged rates
    try:
        out = calculate_metrics(
            conn,
            run,
            cfg.reporting_currency,
            cfg.analytics_schema,
            source="vld",
            connect=lambda: analytics(cfg),
            card=card or scorecard.load(cfg.scorecard_config),
            flag=flag,
        )
    except StaleRatesError as exc:
        raise StaleRatesError(f"{exc} (This run: {refresh.describe()}.)") from None
    return {**out, "fx_refresh": {"source": refresh.source, "upserted": refresh.upserted, "error": refresh.error}}


def validate(run: Run, cfg: Settings, rerun: bool = False) -> dict:
    """The gate. Source suites first: rows failing a warning rule are kept in quarantine (calculate
    already left them out of the metrics); on a rerun of the gate the metrics are recomputed, so
    that clearing ``validate`` after fixing the staged data judges the data as it is now; then the
    metrics suite. The report is stored either way; a critical failure then fails the task,
    before any destination. Data Docs are written to a local temporary folder and copied to the
    export location afterwards: the gate never depends on the export location."""

    from include.customer_performance.quality import gate
    from include.customer_performance.quality.runner import gx_url
    from include.customer_performance.quality.suites import CUSTOMER_METRICS, SOURCE_SUITES
    from include.customer_performance.transform.calculate import prepare_rates

    url = gx_url(cfg)
    with analytics(cfg) as conn, tempfile.TemporaryDirectory(prefix="customer_performance_docs_") as tmp:
        docs = Path(tmp)
        refresh = prepare_rates(conn, run, cfg) if rerun else None  # rates loaded since calculate count now
        with conn.cursor() as cur:
            # the transactions as calculate flagged them (flag_and_convert), unless this is a
            # rerun: the staged rows may have been fixed since, so they are flagged again
            flagged = () if rerun else gate.flagged_by_calculate(cur, run)
            results = gate.run_suites(
                run, url, cur, SOURCE_SUITES, docs / "sources", connect=lambda: analytics(cfg), flagged=flagged
            )
            moved = gate.quarantine(cur, run, results, SOURCE_SUITES)
        if rerun:  # on the rates the gate just judged, with the scorecard the run computed with
            from include.customer_performance import scorecard

            with conn.cursor() as cur:
                card = scorecard.of_run(cur, run)
            _calculate(conn, run, cfg, refresh, card, flag=False)  # flagged just now
        conn.commit()  # GX reads the recomputed metrics through its own connection
        with conn.cursor() as cur:
            results += gate.run_suites(run, url, cur, (CUSTOMER_METRICS,), docs / "customer_metrics")
            summary = gate.store_results(cur, run, results, moved)
        conn.commit()
        problem = _data_docs(conn, run, cfg, docs, "dq_results")
        with conn.cursor() as cur:
            prune_data_docs(cur, run, cfg)
        conn.commit()
    gate.log_summary(results, summary)
    gate.raise_on_critical([r for r in results if r.severity == gate.CRITICAL and not r.success], run)
    return {**summary, "data_docs": data_docs_target(run, cfg), "data_docs_error": problem}


def _data_docs(conn, run: Run, cfg: Settings, docs: Path, report: str) -> str | None:
    """Copy the Data Docs in ``docs`` to the export location, outside any transaction (an upload
    locks nothing); a failure becomes a warning row of the task's part of the report (``report``)
    and, for the aggregates' (computed after the alerts), the alert ``data_docs`` (the gate's comes
    from its report row, sql/alerts.sql). Returns the failure, if any."""
    from include.customer_performance.quality import gate

    problem = publish_data_docs(run, cfg, docs)
    if problem:
        with conn.cursor() as cur:
            gate.append_results(cur, run, [gate.data_docs_result(problem)], {}, stage=report)
            if report == "dq_aggregates":
                add_data_docs_alert(cur, run, problem)
        conn.commit()
    return problem


def aggregate(run: Run, cfg: Settings) -> dict:
    """The aggregates, then their suite (still before any destination): a critical failure here
    also publishes nothing. Their results replace the run's ``dq_aggregates`` (the gate's own stay
    in ``dq_results``)."""

    from include.customer_performance.quality import gate
    from include.customer_performance.quality.runner import gx_url
    from include.customer_performance.quality.suites import AGGREGATE_SUITES
    from include.customer_performance.transform.aggregate import aggregate as run_aggregate

    url = gx_url(cfg)
    with analytics(cfg) as conn, tempfile.TemporaryDirectory(prefix="customer_performance_docs_") as tmp:
        with conn.cursor() as cur:
            out = run_aggregate(cur, run, cfg, connect=lambda: analytics(cfg))
        conn.commit()
        with conn.cursor() as cur:
            results = gate.run_suites(run, url, cur, AGGREGATE_SUITES, Path(tmp) / "aggregates")
            gate.store_results(cur, run, results, {}, stage="dq_aggregates", with_scores=False)
        conn.commit()
        _data_docs(conn, run, cfg, Path(tmp), "dq_aggregates")
    gate.raise_on_critical([r for r in results if r.severity == gate.CRITICAL and not r.success], run)
    return out


def load_analytics_db(run: Run, cfg: Settings, upstream: dict[str, dict]) -> dict:
    """Publish the period; ``upstream`` is every earlier task's result, for the run record."""
    from include.customer_performance import scorecard
    from include.customer_performance.load.analytics_db import (
        STAGED_INPUTS,
        LockPolicy,
        publish,
        read_backtest,
        read_kpis,
        record_run,
        task_summary,
    )
    from include.customer_performance.staging import check_inputs

    t0 = time.monotonic()
    row_counts = {
        t: {k: v for k, v in (r or {}).items() if k != "seconds"} for t, r in upstream.items() if t != "validate"
    }
    with analytics(cfg) as conn:
        with conn.cursor() as cur:  # before anything is replaced: every staged table it publishes
            check_inputs(cur, run, STAGED_INPUTS)
            card = scorecard.of_run(cur, run)
        kpis = read_kpis(conn, run)
        with conn.cursor() as cur:
            locks = LockPolicy(cfg.publish_lock_timeout_seconds, cfg.publish_lock_attempts)
            loaded = publish(cur, run, cfg.analytics_schema, cfg.analytics_retention_months, locks)
            n = sum(loaded.values())
            tasks = {
                **task_summary(upstream),
                "load_analytics_db": {"rows_in": n, "rows_out": n, "seconds": round(time.monotonic() - t0, 1)},
            }
            quality = {k: v for k, v in (upstream["validate"] or {}).items() if k != "seconds"}
            churn_model = {
                **((upstream.get("calculate") or {}).get("churn") or {}),
                "backtest": read_backtest(conn, run),
                "scorecard": card.values,  # the thresholds these figures used
            }
            fields = {
                "row_counts": row_counts,
                "quality": quality,
                "kpis": kpis,
                "tasks": tasks,
                "churn_model": churn_model,
            }
            record_run(
                cur,
                cfg.analytics_schema,
                run,
                fields,
                {"analytics_db": {"schema": cfg.analytics_schema, "rows": loaded}},
            )
        conn.commit()
    return loaded


def push_bi_api(run: Run, cfg: Settings) -> dict:
    from include.customer_performance.http_client import ApiClient
    from include.customer_performance.load.analytics_db import record_delivery
    from include.customer_performance.load.bi_api import push
    from include.customer_performance.retry import plan

    t0 = time.monotonic()
    client = ApiClient.from_connection(cfg.bi_api_conn_id, **plan("push_bi_api", cfg).client_kwargs())
    with analytics(cfg) as conn:
        sent = push(conn, run, client, cfg.bi_dataset, cfg.bi_batch_rows, cfg.bi_tables)
        n = sum(sent.values())
        record_delivery(
            conn,
            cfg.analytics_schema,
            run,
            "push_bi_api",
            {"rows_in": n, "rows_out": n, "seconds": round(time.monotonic() - t0, 1)},
            {"bi_api": {"connection": cfg.bi_api_conn_id, "dataset": cfg.bi_dataset, "rows": sent}},
        )
    return sent


def email_digest(conn, run: Run, cfg: Settings, kpis: dict):
    """What the stakeholder email says (export/digest.py): the dashboard's month in brief, the
    seed's executive sections, the risk vocabulary and the back-test."""
    from include.customer_performance import glossary, scorecard
    from include.customer_performance.export import digest
    from include.customer_performance.notify import cfg_base_url
    from include.customer_performance.report import executive_sections

    with conn.cursor() as cur:
        card = scorecard.of_run(cur, run)
    money = "{:,.2f} " + cfg.reporting_currency
    link = f"{cfg_base_url()}/customer-performance/?month={run.period.report_month:%Y-%m}"
    d = digest.gather(
        conn,
        run,
        cfg.analytics_schema,
        kpis,
        cfg.reporting_currency,
        card.get("risk.high_risk_churn"),
        card.get("churn.no_purchase_days"),
        link,
        glossary.active_text(
            card.get("risk.active_gaps"), card.get("risk.active_days"), card.get("risk.active_login_days")
        ),
    )
    sections = {title.capitalize(): lines for title, lines in executive_sections(kpis, money).items()}
    d.sections = {**sections, **model_notes(conn, run, kpis)}
    # end the reads' transaction: its lock on pipeline_runs, held into the delivery, would deadlock
    # with a destination recording its part (record_delivery) under the migration lock
    conn.commit()
    return d


def model_notes(conn, run: Run, kpis: dict) -> dict[str, list[str]]:
    """The risk vocabulary and the back-test, in the words of the report (report.py), from the
    run's staged tables."""
    from psycopg import sql
    from psycopg.rows import dict_row

    from include.customer_performance import scorecard
    from include.customer_performance.report import backtest_lines, risk_lines

    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(sql.SQL("SELECT * FROM {} ORDER BY horizon_months, measure, bucket").format(run.table("backtest")))
        rows = cur.fetchall()
        cur.execute(sql.SQL("SELECT min(churn_method) AS method FROM {}").format(run.table("churn")))
        model = cur.fetchone()
    with conn.cursor() as cur:
        card = scorecard.of_run(cur, run)
    money = "{:,.2f} " + settings().reporting_currency
    return {
        "Risk": risk_lines(kpis, card.values, money),
        "Churn model back-test": backtest_lines(rows, model),
    }


def email_csv_export(run: Run, cfg: Settings, manual: bool = False, resend: bool = False) -> dict:
    """Write the month's CSV files to the export location on every run; email them when the
    email policy says so (by default: the run that closes a month, and manual runs), once per run
    and month (csv_email.deliver; ``resend``: the run's param ``resend_email``)."""
    from include.customer_performance.export import digest
    from include.customer_performance.export.csv_email import (
        STAGED_INPUTS,
        attachments,
        deliver,
        share_link,
        should_email,
        write_csvs,
    )
    from include.customer_performance.load.analytics_db import read_kpis, record_delivery
    from include.customer_performance.staging import check_inputs

    t0 = time.monotonic()
    with analytics(cfg) as conn:
        with conn.cursor() as cur:
            check_inputs(cur, run, STAGED_INPUTS)
        folder = export_dir(run, cfg)
        email, why = should_email(cfg.email_policy, run.period.is_complete_month, manual)
        with tempfile.TemporaryDirectory(prefix="customer_performance_mail_") as tmp:
            # the email attaches this run's own copies of the files
            files = write_csvs(conn, run, folder, include_pii=cfg.export_pii, copies=Path(tmp) if email else None)
            kpis = read_kpis(conn, run)
            out = {
                "files": {k: {"path": f["path"], "rows": f["rows"]} for k, f in files.items()},
                "emailed": email,
                "why": why,
                "recipients": 0,
                "attached": [],
                "linked": [],
            }
            if email:
                attached, linked = attachments(files, cfg.email_attachment_limit_mb * 1024 * 1024, Path(tmp))
                # the readers' links: a time-limited one where the store makes them (never recorded)
                links = [
                    {"url": u, "href": share_link(u, cfg.export_link_hours, cfg.export_link_conn_id)} for u in linked
                ]
                subject = f"Customer Performance {run.period.report_month:%B %Y}: {run.period}"
                names = [f"{Path(f['path']).name} ({f['rows']:,} rows)" for f in files.values()]
                d = email_digest(conn, run, cfg, kpis)
                sent = deliver(
                    conn,
                    cfg.analytics_schema,
                    run,
                    cfg.smtp_conn_id,
                    list(cfg.email_to),
                    cfg.email_from,
                    subject,
                    digest.html_body(d, names, links),
                    attached,
                    resend=resend,
                    text_body=digest.text(d, names, links),
                )
                out.update(
                    recipients=len(cfg.email_to), attached=[Path(a).name for a in attached], linked=linked, message=sent
                )
                log.info("the export for %s is emailed to %s: %s", run.period, ", ".join(cfg.email_to), why)
            else:
                log.info("CSV files written, not emailed: %s", why)
        n = sum(f["rows"] for f in files.values())
        delivered = {"csv_export": {"files": {k: f["path"] for k, f in files.items()}, "rows": n}}
        if email:
            delivered["email"] = {
                "to": list(cfg.email_to),
                "attached": out["attached"],
                "linked": linked,
                "message_id": sent["message_id"],
            }
        record_delivery(
            conn,
            cfg.analytics_schema,
            run,
            "email_csv_export",
            {"rows_in": n, "rows_out": n, "seconds": round(time.monotonic() - t0, 1)},
            delivered,
        )
    return out
