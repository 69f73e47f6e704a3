"""The whole DAG with dag.test() against the real databases and stand-ins.

Each check compares a destination with a figure worked out independently from the sources, so a
destination that is empty, short or doubled fails.
"""

import csv
import email
import io
import re
import sqlite3
from datetime import date
from decimal import Decimal

import psycopg
import pytest

from dev.stack import pg_dsn
from include.customer_performance.export.csv_email import file_names
from include.customer_performance.staging import make_run
from tests.conftest import BI_TABLES, LOGICAL_DATE, TABLES, snapshot
from tests.rates import daily_rates, source_lifetime_revenue, source_revenue


@pytest.fixture(scope="module")
def dag(july_dag):
    return july_dag


@pytest.fixture(scope="module")
def first_run(july_run):
    return july_run


def source_revenue_by_customer(stack) -> dict[int, tuple[Decimal, int]]:
    """July revenue per known customer straight from the sources, converted here in Python."""
    return source_revenue(stack, date(2025, 7, 1), date(2025, 8, 1), daily_rates(date(2025, 7, 1), date(2025, 7, 31)))


def test_every_destination_holds_july(first_run):
    snap = first_run["snapshot"]
    for t in TABLES:
        assert snap[t], f"analytics.{t} has no July rows"
    for t in BI_TABLES:
        if t != "alerts":  # a quiet month may have none
            assert snap[f"bi.{t}"], f"BI table {t} has no July rows"
    assert len(first_run["mails"]) == 1


def test_customers_are_deduplicated_and_all_present(stack, first_run):
    with psycopg.connect(pg_dsn(stack.customer_db)) as conn:
        distinct = conn.execute("SELECT count(DISTINCT customer_id) FROM customers").fetchone()[0]
    assert len(first_run["snapshot"]["customer_performance"]) == distinct


def test_lifetime_revenue_counts_each_sale_once_in_its_latest_version(stack, first_run):
    """Published lifetime revenue per customer against the sales database worked out in Python by
    the one definition of a sale (tests/rates.py): 0 customers differ, on data that holds sales
    stored as two completed versions (which a sum of every completed row would count twice)."""
    expected, reversioned = source_lifetime_revenue(
        stack, date(2025, 8, 1), daily_rates(date(2025, 7, 24), date(2025, 7, 31))
    )
    assert reversioned > 0
    with psycopg.connect(pg_dsn(stack.analytics_db)) as conn:
        got = dict(
            conn.execute(
                "SELECT customer_id, lifetime_revenue FROM analytics.customer_performance"
                " WHERE report_month = '2025-07-01'"
            ).fetchall()
        )
    differ = {
        c: (v, expected.get(c, Decimal(0)))
        for c, v in got.items()
        if abs(v - expected.get(c, Decimal(0))) > Decimal("0.01")
    }
    assert not differ, f"{len(differ)} customers differ, e.g. {list(differ.items())[:5]}"
    assert sum(1 for v in got.values() if v) > 100


def test_revenue_matches_the_sources(stack, first_run):
    expected = source_revenue_by_customer(stack)
    with psycopg.connect(pg_dsn(stack.analytics_db)) as conn:
        got = dict(
            conn.execute(
                "SELECT customer_id, revenue FROM analytics.customer_performance WHERE report_month = '2025-07-01'"
            ).fetchall()
        )
        total = conn.execute(
            "SELECT revenue FROM analytics.regional_summary WHERE report_month = '2025-07-01'"
            " AND grouping_level = 'total'"
        ).fetchone()[0]
    assert {c for c, v in got.items() if v} == {c for c, (v, _) in expected.items() if v}
    for customer, (revenue, n) in expected.items():
        # rounding each conversion may differ by a cent where PostgreSQL's numeric division and
        # Python's Decimal round a half differently
        assert abs(got[customer] - revenue) <= Decimal("0.01") * n, customer
    assert abs(total - sum(v for v, _ in expected.values())) <= Decimal("0.01") * sum(n for _, n in expected.values())
    assert total == sum(got.values())


def test_interactions_match_the_crm(stack, first_run):
    with psycopg.connect(pg_dsn(stack.customer_db)) as conn:
        known = {r[0] for r in conn.execute("SELECT customer_id FROM customers")}
    with sqlite3.connect(stack.crm_store) as conn:
        per_customer = dict(
            conn.execute(
                "SELECT customer_id, count(*) FROM interactions WHERE interaction_date >= '2025-07-01'"
                " AND interaction_date < '2025-08-01' GROUP BY customer_id"
            ).fetchall()
        )
    with psycopg.connect(pg_dsn(stack.analytics_db)) as conn:
        got = dict(
            conn.execute(
                "SELECT customer_id, interaction_count FROM analytics.customer_performance"
                " WHERE report_month = '2025-07-01' AND interaction_count > 0"
            ).fetchall()
        )
    assert got == {c: n for c, n in per_customer.items() if c in known}
    assert sum(got.values()) > 0


def test_bi_rows_match_the_analytics_tables(stack, first_run):
    snap = first_run["snapshot"]
    assert len(snap["bi.regional_summary"]) == len(snap["regional_summary"])
    assert len(snap["bi.performance_trends"]) == len(snap["performance_trends"])
    assert len(snap["bi.kpis"]) == 1
    with psycopg.connect(pg_dsn(stack.analytics_db)) as conn:
        alerts = conn.execute("SELECT count(*) FROM analytics.alerts WHERE report_month = '2025-07-01'").fetchone()[0]
    assert len(snap["bi.alerts"]) == alerts


def test_email_attachments_parse_back_to_the_analytics_rows(stack, first_run):
    msg = email.message_from_bytes(first_run["mails"][0].read_bytes())
    assert "July 2025" in msg["Subject"]
    files = {p.get_filename(): p.get_payload(decode=True).decode() for p in msg.walk() if p.get_filename()}
    assert set(files) == set(file_names(make_run(LOGICAL_DATE, "any", None, "any")).values())
    assert len(files) == 15
    # every part a text/csv file a spreadsheet opens as it is
    assert {p.get_content_type() for p in msg.walk() if p.get_filename()} == {"text/csv"}
    rows = list(csv.DictReader(io.StringIO(files["customer_performance_july2025.csv"])))
    assert "email" not in rows[0] and "phone" not in rows[0]  # PII is opt-in
    with psycopg.connect(pg_dsn(stack.analytics_db)) as conn:
        expected = dict(
            conn.execute(
                "SELECT customer_id, revenue FROM analytics.customer_performance WHERE report_month = '2025-07-01'"
            ).fetchall()
        )
    assert {int(r["customer_id"]): Decimal(r["revenue"]) for r in rows} == expected
    # the report's rows are its checks (what the email and the dashboard count), the scores apart
    dq = list(csv.DictReader(io.StringIO(files["data_quality_report_july2025.csv"])))
    scores = list(csv.DictReader(io.StringIO(files["data_quality_scores_july2025.csv"])))
    assert len(dq) + len(scores) == len(first_run["snapshot"]["data_quality_results"]) and scores
    plain = next(p for p in msg.walk() if p.get_content_type() == "text/plain").get_payload(decode=True).decode()
    checks = int(re.search(r"Quality gate PASSED: (\d+) checks", plain)[1])
    assert len(dq) == checks
    # no file a sum can mislead: each regional level's rows add up to the month (to their cents)
    total = Decimal(next(csv.DictReader(io.StringIO(files["regional_summary_total_july2025.csv"])))["revenue"])
    for name, text in files.items():
        if name.startswith("regional_summary_"):
            level = list(csv.DictReader(io.StringIO(text)))
            assert abs(sum(Decimal(r["revenue"]) for r in level) - total) <= Decimal("0.01") * len(level), name
            assert all(v != "" for r in level for k, v in r.items() if k in ("region", "segment", "product_category"))
            assert all(len(v.partition(".")[2]) <= 4 for r in level for v in r.values()), name


def attachments_of(mail) -> dict[str, bytes]:
    msg = email.message_from_bytes(mail.read_bytes())
    return {p.get_filename(): p.get_payload(decode=True) for p in msg.walk() if p.get_filename()}


def test_a_second_run_of_the_same_period_leaves_every_destination_identical(stack, dag, first_run):
    mails = len(stack.mails())
    dr = dag.test(logical_date=LOGICAL_DATE)
    assert dr.state == "success"
    assert snapshot(stack) == first_run["snapshot"]
    (again,) = stack.mails()[mails:]  # the SMTP sink: the same files, byte for byte
    assert attachments_of(again) == attachments_of(first_run["mails"][0])
