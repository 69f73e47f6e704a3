"""A critical quality failure on a stack of its own: nothing reaches any destination, the failure
is named, and after fixing the data the run resumes from validate and completes."""

import email

import psycopg
import pytest

from dev.stack import Stack, pg_dsn
from tests.conftest import LOGICAL_DATE, running_stack


@pytest.fixture(scope="module")
def broken_stack(tmp_path_factory, stack):
    """Its own sources (emails of every 8th customer removed: completeness under 95 %) and
    destinations; the session stack's environment is restored afterwards."""

    def remove_emails(s: Stack) -> None:
        with psycopg.connect(pg_dsn(s.customer_db)) as conn:
            conn.execute("UPDATE customers SET email = NULL WHERE customer_id % 8 = 0")

    with running_stack("cp_g", tmp_path_factory.mktemp("broken"), 300, seed=11, prepare=remove_emails) as s:
        yield s


def destinations(s: Stack) -> dict:
    """What reached the destinations; the on-call failure notifications are not an export."""
    with psycopg.connect(pg_dsn(s.analytics_db)) as conn:
        loaded = conn.execute("SELECT to_regclass('analytics.customer_performance')").fetchone()[0]
        rows = conn.execute("SELECT count(*) FROM analytics.customer_performance").fetchone()[0] if loaded else 0
    exports = [m for m in s.mails() if "failed" not in email.message_from_bytes(m.read_bytes())["Subject"]]
    return {"analytics_rows": rows, "bi": s.bi_rows(), "mails": len(exports)}


def failure_notifications(s: Stack) -> list:
    msgs = [email.message_from_bytes(m.read_bytes()) for m in s.mails()]
    return [m for m in msgs if m["Subject"].startswith("[Customer Performance]")]


def test_a_critical_failure_publishes_nothing_and_resumes_after_the_fix(broken_stack, july_dag, capfd, caplog):
    dr = july_dag.test(logical_date=LOGICAL_DATE)
    assert dr.state == "failed"
    states = {ti.task_id: ti.state for ti in dr.get_task_instances()}
    assert states["validate"] == "failed"
    assert {states[t] for t in ("aggregate", "load_analytics_db", "push_bi_api", "email_csv_export")} == {
        "upstream_failed"
    }
    assert destinations(broken_stack) == {"analytics_rows": 0, "bi": {}, "mails": 0}
    log = capfd.readouterr()
    out = log.out + log.err + caplog.text
    assert "data quality gate failed" in out and "no destination was touched" in out
    assert "customers.email.completeness" in out
    # the task log says what to do about this kind of error, in a record of its own
    assert "What to do (quality gate): The quality gate stopped the run; nothing was published." in out
    assert "Airflow will not retry (try 1 of 1: this error is not retried)." not in out  # not for the gate
    assert "gate FAILED: " in out and " critical, " in out  # the one-line summary

    (note,) = failure_notifications(broken_stack)  # on-call is told, with the same advice
    assert note["Subject"] == "[Customer Performance] July 2025 run failed at validate"
    assert note["To"] == "data-oncall@example.com"
    body = next(p for p in note.walk() if p.get_content_type() == "text/html").get_payload(decode=True).decode()
    assert "QualityGateError" in body and "customers.email.completeness" in body
    assert "What to do</b>: The quality gate stopped the run" in body and "clear" in body
    assert "July 2025 (month close)" in body and "Nothing of this run was published" in body
    assert "analytics database: nothing for 2025-07-01..2025-07-31." in body

    # the fix: the missing emails are filled in the staged customers, and the gate runs again
    with psycopg.connect(pg_dsn(broken_stack.analytics_db)) as conn:
        table = conn.execute(
            "SELECT relname FROM pg_class WHERE relname LIKE 'customers\\_2025%%' AND relkind = 'r'"
        ).fetchone()[0]
        conn.execute(
            f"UPDATE cp_staging.{table} SET email = 'fixed' || customer_id || '@example.com' WHERE email IS NULL"
        )
    # clearing validate reruns it (try 2, which recomputes the metrics from the staged data as it
    # is now) and then everything downstream of it
    from include.customer_performance import pipeline
    from include.customer_performance.config import settings
    from include.customer_performance.staging import make_run

    run = make_run(LOGICAL_DATE, dr.run_id, None, settings().staging_schema)
    summary = pipeline.validate(run, settings(), rerun=True)
    assert summary["success"] and summary["critical_failed"] == 0
    # then what clearing validate with downstream runs next, for the same run (a second dag.test
    # would be a second run of the date, with staged tables of its own)
    cfg = settings()
    aggregated = pipeline.aggregate(run, cfg)
    before_load = dict.fromkeys(("extract_customer_db", "extract_crm_api", "extract_sales_db", "filter_period"), {})
    upstream = {**before_load, "calculate": {}, "validate": summary, "aggregate": aggregated}
    pipeline.load_analytics_db(run, cfg, upstream)
    pipeline.push_bi_api(run, cfg)
    pipeline.email_csv_export(run, cfg)
    after = destinations(broken_stack)
    assert after["analytics_rows"] > 0 and after["bi"] and after["mails"] == 1
