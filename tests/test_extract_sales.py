"""The sales extract's raw COPY-text route and the lifetime summary, on real MariaDB/PostgreSQL."""

import dataclasses
import json
import os
import uuid
from datetime import datetime
from decimal import Decimal

import MySQLdb
import psycopg
import pytest

from dev.generate import SALES_DDL, SALES_INDEXES
from dev.stack import MYSQL, pg_dsn
from include.customer_performance.config import settings
from include.customer_performance.extract.sales_db import extract_sales_db
from include.customer_performance.staging import make_run

HOSTILE = ["tab\there", "new\nline", "back\\slash", "\\N", "crlf\r\n", "Zoë ✓ 東京", "", "=1+1"]


@pytest.fixture
def sales_db(stack):
    name = f"cp_sx_{uuid.uuid4().hex[:8]}"
    conn = MySQLdb.connect(**MYSQL, charset="utf8mb4")
    cur = conn.cursor()
    cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    cur.execute(f"USE `{name}`")
    for stmt in SALES_DDL:
        cur.execute(stmt)
    rows = []
    for i, text in enumerate(HOSTILE, start=1):
        rows.append(
            (
                f"T{i}",
                1,
                f"2025-07-{i:02d} 10:00:00",
                "10.50",
                "USD",
                text,
                i,
                None,
                "completed",
                None,
                "0.84",
                "2025-07-20 00:00:00",
            )
        )
    rows += [
        ("H1", 1, "2025-03-01 09:00:00", "100.00", "EUR", "books", 1, "card", "completed", "0", "0", None),
        ("H2", 1, "2025-03-01 18:00:00", "50.00", "USD", "books", 1, "card", "completed", "0", "0", None),
        ("H3", 2, "2025-05-05 09:00:00", "70.00", None, "books", 1, "card", "completed", "0", "0", None),
        ("H4", 2, "2025-05-06 09:00:00", "999.00", "USD", "books", 1, "card", "refunded", "0", "0", None),
        ("F1", 3, "2025-08-01 00:00:00", "5.00", "USD", "books", 1, "card", "completed", "0", "0", None),
    ]
    cur.executemany("INSERT INTO transactions VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)", rows)
    conn.commit()
    os.environ["AIRFLOW_CONN_HOSTILE_SALES"] = json.dumps(
        {"conn_type": "mysql", "host": MYSQL["host"], "port": MYSQL["port"], "login": "root", "schema": name}
    )
    try:
        yield "hostile_sales"
    finally:
        os.environ.pop("AIRFLOW_CONN_HOSTILE_SALES", None)
        cur.execute(f"DROP DATABASE `{name}`")
        conn.close()


@pytest.fixture(params=["full", "incremental"])
def extracted(request, stack, sales_db):
    """July extracted; the lifetime summary in full (the source lacks the indexes the state needs)
    or from the lifetime state (with them: June's snapshot bootstrapped, July's sales merged)."""
    if request.param == "incremental":
        conn = MySQLdb.connect(**MYSQL, db=json.loads(os.environ["AIRFLOW_CONN_HOSTILE_SALES"])["schema"])
        conn.cursor().execute(SALES_INDEXES)
        conn.close()
    run = make_run(datetime(2025, 8, 1, 2), "sales_extract_test", None, "cp_sx_" + uuid.uuid4().hex[:6])
    out = extract_sales_db(run, dataclasses.replace(settings(), sales_db_conn_id=sales_db, copy_chunk_rows=3))
    assert out["customer_history"]["state"]["method"] == request.param
    with psycopg.connect(pg_dsn(stack.analytics_db)) as conn:
        tx = conn.execute(
            f"SELECT transaction_id, product_category, payment_method, discount_applied, amount, order_date"
            f" FROM {run.schema}.{run.table_name('transactions')} ORDER BY transaction_id"
        ).fetchall()
        history = conn.execute(
            f"SELECT customer_id, currency, first_purchase, last_purchase, purchases, purchase_days, monetary"
            f" FROM {run.schema}.{run.table_name('customer_history')} ORDER BY customer_id, currency NULLS LAST"
        ).fetchall()
        conn.execute(f"DROP SCHEMA {run.schema} CASCADE")
    return out, tx, history


def test_hostile_text_and_nulls_arrive_unchanged(extracted):
    out, tx, _ = extracted
    assert out["transactions"]["rows"] == len(HOSTILE) + 0  # history rows and 1 Aug are outside July
    assert [r[1] for r in tx] == HOSTILE
    assert all(r[2] is None and r[3] is None for r in tx)  # SQL NULL, not the text 'NULL' or '\N'
    assert {r[4] for r in tx} == {Decimal("10.50")}
    assert tx[0][5].isoformat() == "2025-07-01T10:00:00+00:00"  # MySQL DATETIME read as UTC


def test_lifetime_summary_per_customer_and_currency(extracted):
    _, _, history = extracted
    ts = lambda s: datetime.fromisoformat(s + "+00:00")  # noqa: E731
    july = [ts(f"2025-07-{i:02d} 10:00:00") for i in range(1, len(HOSTILE) + 1)]
    assert history == [
        # customer 1: one EUR purchase, USD purchases (the hostile July rows + H2), and all-currency
        (1, "EUR", ts("2025-03-01 09:00:00"), ts("2025-03-01 09:00:00"), 1, 1, Decimal("100.00")),
        (1, "USD", ts("2025-03-01 18:00:00"), july[-1], 9, 9, Decimal("50.00") + 8 * Decimal("10.50")),
        (1, None, ts("2025-03-01 09:00:00"), july[-1], 10, 9, None),  # amounts add up per currency only
        # customer 2: a sale without a currency is left out, as the gate leaves it out of a period;
        # a refund counts minus its amount, as in the period, and is no purchase
        (2, "USD", None, None, 0, 0, Decimal("-999.00")),
        (2, None, None, None, 0, 0, None),
        # customer 3 bought only after the period end: absent
    ]


@pytest.mark.parametrize("neighbour", ["plain", "back\\slash"])  # the fast and the escaping path
def test_a_nul_byte_in_source_text_fails_naming_column_and_row(stack, sales_db, neighbour):
    """Whatever the rows around it hold, a NUL byte is never turned into 'N', NULL or a COPY error."""
    from include.customer_performance.extract.sales_db import NulByteError

    schema = json.loads(os.environ["AIRFLOW_CONN_HOSTILE_SALES"])["schema"]
    conn = MySQLdb.connect(**MYSQL, charset="utf8mb4", db=schema)
    cur = conn.cursor()
    cur.execute("DELETE FROM transactions WHERE order_date >= '2025-07-01'")
    cur.execute(
        "INSERT INTO transactions VALUES ('N1', 1, '2025-07-02 10:00:00', '1.00', 'USD', %s, 1, NULL, 'completed',"
        " NULL, NULL, NULL), ('N2', 1, '2025-07-03 10:00:00', '1.00', 'USD', %s, 1, NULL, 'completed', NULL, NULL,"
        " NULL)",
        (neighbour, "a\x00b"),
    )
    conn.commit()
    conn.close()
    run = make_run(datetime(2025, 8, 1, 2), "sales_nul_test", None, "cp_sx_" + uuid.uuid4().hex[:6])
    with pytest.raises(NulByteError) as err:
        extract_sales_db(run, dataclasses.replace(settings(), sales_db_conn_id=sales_db, copy_chunk_rows=10))
    assert str(err.value).startswith("transactions: a product_category value of the row with key b'N2' holds a NUL")
    with psycopg.connect(pg_dsn(stack.analytics_db)) as pg_conn:
        pg_conn.execute(f"DROP SCHEMA IF EXISTS {run.schema} CASCADE")


def test_a_latin1_source_database_is_read_in_its_own_encoding(pg_db):
    """A customer database in LATIN1: its text arrives as the same characters in UTF-8, converted by
    the server, never re-decoded bytes."""
    from include.customer_performance.db import pg

    name = f"cp_l1_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_dsn("postgres"), autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name} ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0")
    try:
        with psycopg.connect(pg_dsn(name)) as conn:
            conn.execute("CREATE TABLE customers (name text)")
            conn.execute("INSERT INTO customers VALUES ('Müller'), ('Zoë Ærø')")
        os.environ["AIRFLOW_CONN_LATIN1_TEST"] = json.dumps(
            {"conn_type": "postgres", "host": "127.0.0.1", "port": 5432, "login": "postgres", "schema": name}
        )
        with pg("latin1_test") as conn, conn.cursor() as cur:
            with cur.copy("COPY (SELECT name FROM customers ORDER BY 1) TO STDOUT") as copy:
                raw = b"".join(bytes(b) for b in copy)
        assert raw == "Müller\nZoë Ærø\n".encode()
    finally:
        os.environ.pop("AIRFLOW_CONN_LATIN1_TEST", None)
        with psycopg.connect(pg_dsn("postgres"), autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
