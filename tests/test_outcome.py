"""Never a silently wrong month: each scenario either publishes the right figures or fails before
any destination with an error naming the cause (issue: reference data that stays current, a gate
that judges the outcome). Every scenario runs the whole DAG with dag.test() on a stack of its own:
real databases, the CRM, BI, FX and SMTP stand-ins. The dates are pinned (logical dates below)."""

from __future__ import annotations

import email
import sqlite3
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import MySQLdb
import psycopg
import pytest

from dev.fx_api import write_rates_file
from dev.stack import MYSQL, Stack, pg_dsn
from include.customer_performance.fx import parse_rates
from include.customer_performance.staging import run_key
from tests.conftest import ROOT, running_stack
from tests.rates import daily_rates, source_revenue

NOVEMBER_CLOSE = datetime(2026, 12, 1, 2, tzinfo=UTC)  # the run of 2026-12-01 closes November 2026
MARCH_1997_CLOSE = datetime(1997, 4, 1, 2, tzinfo=UTC)  # before the euro, and before the old start date
JULY_CLOSE = datetime(2025, 8, 1, 2, tzinfo=UTC)


def november_rates() -> dict:
    """Rates for the ECB's working days of November 2026 (the bundled history ends on 2026-10-30)."""
    out, day = {}, date(2026, 11, 2)
    while day <= date(2026, 11, 30):
        if day.weekday() < 5:
            out[day] = {"USD": Decimal("1.1500") + Decimal(day.day) / 10000, "GBP": Decimal("0.8712")}
        day += timedelta(days=1)
    return out


def published(s: Stack, month: str) -> dict:
    """What reached the destinations for ``month`` (YYYY-MM); the failure alerts are not exports."""
    with psycopg.connect(pg_dsn(s.analytics_db)) as conn:
        loaded = conn.execute("SELECT to_regclass('analytics.customer_performance')").fetchone()[0]
        rows = (
            conn.execute(
                "SELECT count(*) FROM analytics.customer_performance WHERE report_month = %s", (f"{month}-01",)
            ).fetchone()[0]
            if loaded
            else 0
        )
    exports = [m for m in s.mails() if "failed" not in email.message_from_bytes(m.read_bytes())["Subject"]]
    return {"analytics_rows": rows, "bi": s.bi_rows(), "mails": len(exports)}


NOTHING = {"analytics_rows": 0, "bi": {}, "mails": 0}


@pytest.fixture
def dag(airflow_db):
    """The DAG parsed for this test alone: a parsed DAG's failure notifier keeps the SMTP hook of
    the first stack it alerted (the notifier caches it), and each test here has a stack of its own."""
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(ROOT / "dags")).dags["customer_performance"]


def logged(capfd, caplog) -> str:
    out = capfd.readouterr()
    return out.out + out.err + caplog.text


def task_states(dr) -> dict[str, str]:
    return {ti.task_id: ti.state for ti in dr.get_task_instances()}


def revenue_matches(s: Stack, month: str, expected: dict) -> bool:
    """Every customer's published revenue equals the independent figure (0 without sales)."""
    with psycopg.connect(pg_dsn(s.analytics_db)) as conn:
        got = dict(
            conn.execute(
                "SELECT customer_id, revenue FROM analytics.customer_performance WHERE report_month = %s",
                (f"{month}-01",),
            ).fetchall()
        )
    want = {c: expected.get(c, (Decimal(0), 0))[0] for c in got}
    assert set(expected) <= set(got)
    assert got == want
    return True


# -- November 2026: after the bundled history, rates from the source ---------------------------
@pytest.fixture(scope="module")
def november(tmp_path_factory, stack):
    """November 2026 with sales in USD, EUR and GBP; the FX stand-in serves the bundled history
    plus November's rates."""

    def rates_file(s: Stack) -> None:
        write_rates_file(s.fx_file, november_rates())

    with running_stack("cp_n", tmp_path_factory.mktemp("nov"), 300, seed=23, prepare=rates_file, month="2026-11") as s:
        yield s


def test_without_the_rates_source_november_fails_by_name_and_publishes_nothing(november, dag, capfd, caplog):
    november.fx_faults([{"status": 503, "times": 1000}])  # the source is down; the bundle ends 2026-10-30
    try:
        dr = dag.test(logical_date=NOVEMBER_CLOSE)
    finally:
        november.fx_faults(None)
    assert dr.state == "failed"
    states = task_states(dr)
    assert states["calculate"] == "failed"
    assert {states[t] for t in ("validate", "load_analytics_db", "push_bi_api", "email_csv_export")} == {
        "upstream_failed"
    }
    assert published(november, "2026-11") == NOTHING
    text = logged(capfd, caplog)
    assert "StaleRatesError" in text and "nothing is published" in text
    # EUR sales need the USD rate (the reporting currency's), GBP sales the GBP rate: both named,
    # with their last rate and what to do
    assert "USD: " in text and "GBP: " in text
    assert "the latest USD rate in analytics.fx_rates is of 2026-10-30" in text
    assert "could not be used" in text and "503" in text
    assert "point the Airflow connection fx_rates at a rates source" in text
    alerts = [email.message_from_bytes(m.read_bytes()) for m in november.mails()]
    (note,) = [m for m in alerts if m["Subject"] == "[Customer Performance] November 2026 run failed at calculate"]
    body = next(p for p in note.walk() if p.get_content_type() == "text/html").get_payload(decode=True).decode()
    assert "StaleRatesError" in body and "2026-10-30" in body  # on-call hears it by name
    assert "November 2026 (month close)" in body and "(exchange rates stale)" in body
    assert "Nothing of this run was published: it stopped at calculate" in body


def test_november_with_the_refreshed_rates_counts_every_sale(november, dag):
    dr = dag.test(logical_date=NOVEMBER_CLOSE)
    assert dr.state == "success"
    rows = parse_rates(november.fx_file.read_bytes(), 64 << 20, "test")
    rates = daily_rates(date(2026, 11, 1), date(2026, 11, 30), rows=rows)
    expected = source_revenue(november, date(2026, 11, 1), date(2026, 12, 1), rates)
    assert revenue_matches(november, "2026-11", expected)
    key = run_key(NOVEMBER_CLOSE, dr.run_id)
    with psycopg.connect(pg_dsn(november.analytics_db)) as conn:
        # USD at exactly 1 with no rate needed; EUR from the refreshed rates; nothing quarantined for a rate
        usd = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE fx_rate = 1 AND amount_reporting = round(amount, 2))"
            f" FROM cp_staging.int_transactions_{key} WHERE currency = 'USD'"
        ).fetchone()
        assert usd[0] > 0 and usd[0] == usd[1]
        eur = conn.execute(
            f"SELECT count(*) FROM cp_staging.int_transactions_{key}"
            " WHERE currency = 'EUR' AND order_date >= '2026-11-07'"
        ).fetchone()[0]
        assert eur > 0
        reasons = conn.execute(
            f"SELECT DISTINCT quarantine_reason FROM cp_staging.dq_quarantine_unconverted_{key}"
        ).fetchall()
        assert all(r[0].startswith("unknown currency") for r in reasons)
        kept = conn.execute(
            "SELECT count(*), max(day) FROM analytics.fx_rates WHERE source LIKE 'http://127.0.0.1:%%'"
        ).fetchone()
        assert kept[0] > 0 and kept[1] == date(2026, 11, 30)
        (revenue,) = conn.execute(
            "SELECT (kpis->>'revenue')::numeric FROM analytics.pipeline_runs WHERE report_month = '2026-11-01'"
        ).fetchone()
    assert revenue == sum(v[0] for v in expected.values())
    assert published(november, "2026-11")["mails"] == 1


# -- March 1997: before the euro, in the reporting currency only --------------------------------
@pytest.fixture(scope="module")
def march_1997(tmp_path_factory, stack):
    def dollars_only(s: Stack) -> None:
        conn = MySQLdb.connect(**MYSQL, db=s.sales_db)
        try:
            conn.cursor().execute("UPDATE transactions SET currency = 'USD' WHERE currency IN ('EUR', 'GBP')")
            conn.commit()
        finally:
            conn.close()

    with running_stack(
        "cp_y", tmp_path_factory.mktemp("y1997"), 200, seed=31, prepare=dollars_only, month="1997-03"
    ) as s:
        yield s


def test_a_month_before_1999_in_the_reporting_currency_needs_no_rate(march_1997, dag):
    dr = dag.test(logical_date=MARCH_1997_CLOSE)
    assert dr.state == "success"
    # a logical date before the old start date (2025-01-01): every task ran, none was skipped
    assert set(task_states(dr).values()) == {"success"}
    expected = source_revenue(march_1997, date(1997, 3, 1), date(1997, 4, 1), {})
    assert expected and revenue_matches(march_1997, "1997-03", expected)
    with psycopg.connect(pg_dsn(march_1997.analytics_db)) as conn:
        (kpis,) = conn.execute("SELECT kpis FROM analytics.pipeline_runs WHERE report_month = '1997-03-01'").fetchone()
    assert Decimal(str(kpis["revenue"])) == sum(v[0] for v in expected.values()) > 0


# -- July 2025 with damaged sources --------------------------------------------------------------
def crm(s: Stack, statement: str, params: tuple = ()) -> None:
    conn = sqlite3.connect(s.crm_store)
    try:
        conn.execute(statement, params)
        conn.commit()
    finally:
        conn.close()


@pytest.fixture
def july_stack(tmp_path_factory, stack, request):
    """July 2025 on a stack of its own, its sources damaged by the test's ``prepare`` marker."""
    prepare = request.node.get_closest_marker("prepare").args[0]
    with running_stack("cp_d", tmp_path_factory.mktemp("damaged"), 150, seed=13, prepare=prepare) as s:
        yield s


def infinite_satisfaction(s: Stack) -> None:
    crm(
        s,
        "UPDATE interactions SET satisfaction_score = 'Infinity' WHERE interaction_id ="
        " (SELECT min(interaction_id) FROM interactions WHERE interaction_date >= '2025-07-01')",
    )


@pytest.mark.prepare.with_args(infinite_satisfaction)
def test_a_non_numeric_crm_value_fails_the_extract_naming_record_and_field(july_stack, dag, capfd, caplog):
    conn = sqlite3.connect(july_stack.crm_store)
    (bad,) = conn.execute("SELECT interaction_id FROM interactions WHERE satisfaction_score = 'Infinity'").fetchone()
    conn.close()
    dr = dag.test(logical_date=JULY_CLOSE)
    assert dr.state == "failed" and task_states(dr)["extract_crm_api"] == "failed"
    assert published(july_stack, "2025-07") == NOTHING
    text = logged(capfd, caplog)
    assert f"(interaction_id '{bad}'): field satisfaction_score: Expected `float | null`, got `str`" in text


def nan_session(s: Stack) -> None:
    with psycopg.connect(pg_dsn(s.customer_db)) as conn:
        conn.execute(
            "UPDATE customer_activity SET duration_minutes = 'NaN' WHERE session_id ="
            " (SELECT min(session_id) FROM customer_activity WHERE session_start >= '2025-07-01')"
        )


@pytest.mark.prepare.with_args(nan_session)
def test_a_nan_in_a_source_number_is_critical_naming_dataset_field_and_key(july_stack, dag, capfd, caplog):
    with psycopg.connect(pg_dsn(july_stack.customer_db)) as conn:
        (bad,) = conn.execute("SELECT session_id FROM customer_activity WHERE duration_minutes = 'NaN'").fetchone()
    dr = dag.test(logical_date=JULY_CLOSE)
    assert dr.state == "failed" and task_states(dr)["validate"] == "failed"
    assert published(july_stack, "2025-07") == NOTHING
    text = logged(capfd, caplog)
    assert "(customer_activity.duration_minutes.finite) on customer_activity, column duration_minutes: 1 of" in text
    assert f"rows fail (examples: ['{bad}'])" in text
    assert "(customer_metrics.session_minutes.finite)" in text  # where it would have gone: caught there too


def zero_amounts(s: Stack) -> None:
    conn = MySQLdb.connect(**MYSQL, db=s.sales_db)
    try:
        conn.cursor().execute(
            "UPDATE transactions SET amount = 0 WHERE order_date >= '2025-07-01' AND MOD(CRC32(transaction_id), 10) = 0"
        )
        conn.commit()
    finally:
        conn.close()


@pytest.mark.prepare.with_args(zero_amounts)
def test_a_warning_rule_over_its_ceiling_is_critical(july_stack, dag, capfd, caplog):
    dr = dag.test(logical_date=JULY_CLOSE)
    assert dr.state == "failed"
    assert task_states(dr)["validate"] == "failed"
    assert published(july_stack, "2025-07") == NOTHING
    text = logged(capfd, caplog)
    assert "transactions.amount.zero.ceiling" in text
    assert "of the rows" in text and "over the ceiling 2.00%" in text


def no_crm_in_july(s: Stack) -> None:
    crm(s, "DELETE FROM interactions WHERE interaction_date >= '2025-07-01'")


@pytest.mark.prepare.with_args(no_crm_in_july)
def test_an_empty_source_is_critical_unless_the_run_allows_it(july_stack, dag, capfd, caplog):
    dr = dag.test(logical_date=JULY_CLOSE)
    assert dr.state == "failed" and task_states(dr)["validate"] == "failed"
    assert published(july_stack, "2025-07") == NOTHING
    text = logged(capfd, caplog)
    assert "interactions.not_empty" in text and "allow_empty_sources" in text

    dr = dag.test(logical_date=JULY_CLOSE, run_conf={"allow_empty_sources": True})
    assert dr.state == "success"
    assert published(july_stack, "2025-07")["analytics_rows"] > 0
    with psycopg.connect(pg_dsn(july_stack.analytics_db)) as conn:
        alerts = conn.execute(
            "SELECT alert, severity, scope FROM analytics.alerts WHERE report_month = '2025-07-01'"
        ).fetchall()
        (interactions,) = conn.execute(
            "SELECT (kpis->>'interactions')::int FROM analytics.pipeline_runs WHERE report_month = '2025-07-01'"
        ).fetchone()
    assert ("source_empty", "info", "interactions") in alerts  # published as empty, and said so
    assert interactions == 0
