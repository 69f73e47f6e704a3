"""One definition of a sale's amount for the period and the lifetime, against values worked out by
hand (never against the other code path).

A sales database holding the versions a sales system writes: a sale re-versioned with a new
amount, a sale later refunded (a new version with the status ``refunded``), a sale cancelled then
completed, one completed then cancelled, a currency changed between versions, a version moved to
another customer, exact duplicate rows, and a day bought in two currencies. The July 2025 run
(1 August) stages the period's transactions and the lifetime summary; the period's figures come
from ``int_transactions`` (calculate's conversion, the latest version of each id), the lifetime's
from the staged ``customer_history``. Both are compared with the hand-worked table below, in the
lifetime's two modes (incremental from a June snapshot, and full), and with the source's
``currency`` column in latin1, utf8mb4 and a binary collation (the all-currency row never relies on how a
collation treats ``WITH ROLLUP``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import uuid
from datetime import date, datetime
from decimal import Decimal

import MySQLdb
import psycopg
import pytest
from psycopg import sql

from dev.generate import SALES_DDL, SALES_INDEXES
from dev.stack import MYSQL, pg_dsn
from include.customer_performance.config import settings
from include.customer_performance.extract.sales_db import extract_sales_db
from include.customer_performance.staging import make_run
from include.customer_performance.transform.calculate import convert_transactions
from tests.rates import stage_test_rates

# id, customer, order date, amount, currency, status, updated at
ROWS = [
    # customer 1: a June sale, and a July sale re-versioned with a new amount (120 counts)
    ("A0", 1, "2025-06-10 09:00", "50.00", "USD", "completed", "2025-06-10 09:00"),
    ("A1", 1, "2025-07-02 09:00", "100.00", "USD", "completed", "2025-07-02 10:00"),
    ("A1", 1, "2025-07-02 09:00", "120.00", "USD", "completed", "2025-07-03 10:00"),
    # customer 2: a sale later refunded (its latest version is a refund: minus 80), and a sale
    ("B1", 2, "2025-07-04 09:00", "80.00", "USD", "completed", "2025-07-04 09:00"),
    ("B1", 2, "2025-07-04 09:00", "80.00", "USD", "refunded", "2025-07-20 09:00"),
    ("B2", 2, "2025-07-05 09:00", "30.00", "USD", "completed", "2025-07-05 09:00"),
    # customer 3: cancelled then completed (counts), completed then cancelled (does not)
    ("C1", 3, "2025-07-06 09:00", "40.00", "USD", "cancelled", "2025-07-06 09:00"),
    ("C1", 3, "2025-07-06 09:00", "40.00", "USD", "completed", "2025-07-07 09:00"),
    ("C2", 3, "2025-07-06 12:00", "25.00", "USD", "completed", "2025-07-06 12:00"),
    ("C2", 3, "2025-07-06 12:00", "25.00", "USD", "cancelled", "2025-07-08 09:00"),
    # customer 4: the currency corrected between versions (12 USD counts, no EUR), and an EUR sale
    # the same day (one purchase day across two currencies)
    ("D1", 4, "2025-07-09 09:00", "10.00", "EUR", "completed", "2025-07-09 09:00"),
    ("D1", 4, "2025-07-09 09:00", "12.00", "USD", "completed", "2025-07-10 09:00"),
    ("D2", 4, "2025-07-09 15:00", "5.00", "EUR", "completed", "2025-07-09 15:00"),
    # customer 5 bought E1; its later version is customer 6's (a sale moved to another customer)
    ("E1", 5, "2025-07-11 09:00", "60.00", "USD", "completed", "2025-07-11 09:00"),
    ("E1", 6, "2025-07-11 09:00", "60.00", "USD", "completed", "2025-07-12 09:00"),
    # customer 7: the same row twice (a source without a key), then June's sale on two days
    ("G1", 7, "2025-07-13 09:00", "70.00", "USD", "completed", "2025-07-13 09:00"),
    ("G1", 7, "2025-07-13 09:00", "70.00", "USD", "completed", "2025-07-13 09:00"),
    ("G0", 7, "2025-06-01 09:00", "7.00", "GBP", "completed", "2025-06-01 09:00"),
    ("G2", 7, "2025-06-02 09:00", "8.00", "GBP", "pending", "2025-06-02 09:00"),
]
# worked out by hand from ROWS: per (customer, currency) the lifetime to 1 August
# (purchases, amount), and per customer (purchases, purchase days, first purchase)
LIFETIME = {
    (1, "USD"): (2, Decimal("170.00")),
    (2, "USD"): (1, Decimal("-50.00")),
    (3, "USD"): (1, Decimal("40.00")),
    (4, "USD"): (1, Decimal("12.00")),
    (4, "EUR"): (1, Decimal("5.00")),
    (6, "USD"): (1, Decimal("60.00")),
    (7, "USD"): (1, Decimal("70.00")),
    (7, "GBP"): (1, Decimal("7.00")),
}
TOTALS = {
    1: (2, 2, datetime(2025, 6, 10, 9)),
    2: (1, 1, datetime(2025, 7, 5, 9)),
    3: (1, 1, datetime(2025, 7, 6, 9)),
    4: (2, 1, datetime(2025, 7, 9, 9)),
    6: (1, 1, datetime(2025, 7, 11, 9)),
    7: (2, 2, datetime(2025, 6, 1, 9)),
}
# the period (July): per (customer, currency) the amount the revenue sums, in the original currency
PERIOD = {k: v[1] for k, v in LIFETIME.items() if k not in ((1, "USD"), (7, "GBP"))}
PERIOD[1, "USD"] = Decimal("120.00")
CURRENCY_COLUMNS = {
    "utf8mb4": "char(3) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci",
    "latin1": "char(3) CHARACTER SET latin1 COLLATE latin1_swedish_ci",
    "utf8mb4_bin": "char(3) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin",
}


@pytest.fixture(params=sorted(CURRENCY_COLUMNS))
def sales(stack, request):
    name = f"cp_sd_{uuid.uuid4().hex[:8]}"
    conn = MySQLdb.connect(**MYSQL, charset="utf8mb4", autocommit=True)
    cur = conn.cursor()
    cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    cur.execute(f"USE `{name}`")
    for stmt in SALES_DDL:
        cur.execute(stmt)
    cur.execute(f"ALTER TABLE transactions MODIFY currency {CURRENCY_COLUMNS[request.param]}")
    cur.executemany("INSERT INTO transactions VALUES (%s, %s, %s, %s, %s, 'books', 1, 'card', %s, 0, 0, %s)", ROWS)
    cur.execute(SALES_INDEXES)
    os.environ["AIRFLOW_CONN_SALE_DEFINITION"] = json.dumps(
        {"conn_type": "mysql", "host": MYSQL["host"], "port": MYSQL["port"], "login": "root", "schema": name}
    )
    try:
        yield request.param
    finally:
        os.environ.pop("AIRFLOW_CONN_SALE_DEFINITION", None)
        cur.execute(f"DROP DATABASE `{name}`")
        conn.close()


@pytest.fixture
def schemas(stack):
    tag = uuid.uuid4().hex[:6]
    names = {"incremental": f"sd_inc_{tag}", "full": f"sd_full_{tag}", "staging": f"sd_stg_{tag}"}
    yield names
    with psycopg.connect(pg_dsn(stack.analytics_db), autocommit=True) as conn:
        for schema in names.values():
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def _run(schemas: dict, logical: datetime, mode: str):
    cfg = dataclasses.replace(
        settings(), sales_db_conn_id="sale_definition", analytics_schema=schemas[mode], lifetime_mode=mode
    )
    run = make_run(logical, f"sd_{mode}_{logical:%Y%m%d}_{uuid.uuid4().hex[:4]}", None, schemas["staging"])
    return run, extract_sales_db(run, cfg)["customer_history"]["state"]


def _lifetime(stack, run) -> tuple[dict, dict]:
    with psycopg.connect(pg_dsn(stack.analytics_db)) as conn:
        conn.execute("SET TIME ZONE 'UTC'")
        rows = conn.execute(
            sql.SQL("SELECT customer_id, currency, purchases, monetary, purchase_days, first_purchase FROM {}").format(
                run.table("customer_history")
            )
        ).fetchall()
    per_currency = {(c, cur): (p, m) for c, cur, p, m, _, _ in rows if cur is not None}
    totals = {c: (p, d, f.replace(tzinfo=None)) for c, cur, p, _, d, f in rows if cur is None}
    return per_currency, totals


def _period(stack, run) -> dict:
    """The period's amount per customer and currency as the revenue sums it: calculate's
    conversion of the staged period (every row valid here), signed by is_sale / is_refund."""
    with psycopg.connect(pg_dsn(stack.analytics_db)) as conn, conn.cursor() as cur:
        cur.execute("SET TIME ZONE 'UTC'")
        for stage in ("flt_transactions", "vld_transactions"):
            cur.execute(
                sql.SQL("CREATE VIEW {} AS SELECT * FROM {}").format(run.table(stage), run.table("transactions"))
            )
        stage_test_rates(cur, run, date(2025, 7, 1), date(2025, 7, 31), schema=f"{run.schema}_fx")
        convert_transactions(cur, run, "USD", source="vld")
        cur.execute(
            sql.SQL(
                "SELECT customer_id, currency, sum(CASE WHEN is_sale THEN amount WHEN is_refund THEN -amount END)"
                " FROM {} WHERE is_sale OR is_refund GROUP BY 1, 2"
            ).format(run.table("int_transactions"))
        )
        out = {(c, cur_): m for c, cur_, m in cur.fetchall()}
        cur.execute(f"DROP SCHEMA IF EXISTS {run.schema}_fx CASCADE")
        conn.commit()
    return out


def test_period_and_lifetime_count_the_latest_version_of_each_sale(stack, sales, schemas):
    # the June close builds the incremental state (a snapshot at 1 June, stored at 1 July)
    _run(schemas, datetime(2025, 7, 1, 2), "incremental")
    for mode in ("incremental", "full"):
        run, state = _run(schemas, datetime(2025, 8, 1, 2), mode)
        assert state["method"] == mode, state
        per_currency, totals = _lifetime(stack, run)
        assert per_currency == LIFETIME, f"{mode}, currency column {sales}"
        assert totals == TOTALS, f"{mode}, currency column {sales}"
    assert _period(stack, run) == PERIOD
