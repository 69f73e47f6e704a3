"""Source contract checks: a missing or retyped column stops the extract, naming where."""

import dataclasses
import json
import os
import uuid
from datetime import datetime

import MySQLdb
import psycopg
import pytest

from dev.stack import MYSQL
from include.customer_performance.config import settings
from include.customer_performance.extract.contract import SourceContractError, check_columns
from include.customer_performance.extract.customer_db import extract_customer_db
from include.customer_performance.extract.sales_db import extract_sales_db
from include.customer_performance.schemas import TRANSACTIONS
from include.customer_performance.staging import make_run


def test_extra_columns_are_ignored_and_families_accepted():
    cols = {
        c.name: {"integer": "int", "numeric": "decimal", "text": "varchar", "timestamp": "datetime"}[c.family]
        for c in TRANSACTIONS.columns
    }
    check_columns({**cols, "loyalty_points": "int"}, TRANSACTIONS, "sales_db: transactions")


def test_missing_and_retyped_columns_are_all_named():
    cols = {c.name: "text" for c in TRANSACTIONS.columns}
    del cols["currency"]
    with pytest.raises(SourceContractError) as err:
        check_columns(cols, TRANSACTIONS, "sales_db: transactions")
    msg = str(err.value)
    assert msg.startswith("sales_db: transactions: ")
    assert "'currency' is missing" in msg
    assert "'amount' is text, expected numeric" in msg
    assert "'transaction_id'" not in msg


def test_missing_table_is_named():
    with pytest.raises(SourceContractError, match="sales_db: transactions: table not found"):
        check_columns({}, TRANSACTIONS, "sales_db: transactions")


@pytest.fixture
def broken_sales_db(stack):
    name = f"cp_broken_{uuid.uuid4().hex[:8]}"
    conn = MySQLdb.connect(**MYSQL)
    cur = conn.cursor()
    cur.execute(f"CREATE DATABASE `{name}`")
    cur.execute(
        f"CREATE TABLE `{name}`.transactions (transaction_id varchar(40), customer_id bigint, order_date datetime,"
        " amount varchar(20), product_category varchar(50), quantity int, payment_method varchar(30),"
        " status varchar(20), discount_applied decimal(14,2), tax_amount decimal(14,2), updated_at datetime)"
    )
    conn_env = {"conn_type": "mysql", "host": MYSQL["host"], "port": MYSQL["port"], "login": "root", "schema": name}
    os.environ["AIRFLOW_CONN_BROKEN_SALES"] = json.dumps(conn_env)
    try:
        yield "broken_sales"
    finally:
        os.environ.pop("AIRFLOW_CONN_BROKEN_SALES", None)
        cur.execute(f"DROP DATABASE `{name}`")
        conn.close()


def test_sales_extract_stops_on_a_broken_source(stack, broken_sales_db):
    run = make_run(datetime(2025, 8, 1, 2), "contract", None, settings().staging_schema)
    with pytest.raises(SourceContractError) as err:
        extract_sales_db(run, dataclasses.replace(settings(), sales_db_conn_id=broken_sales_db))
    assert "broken_sales: transactions" in str(err.value)
    assert "'currency' is missing" in str(err.value)
    assert "'amount' is character varying" in str(err.value) or "'amount' is varchar" in str(err.value)


def test_customer_extract_stops_when_a_column_is_dropped(stack, pg_db):
    with psycopg.connect(pg_db) as conn:
        conn.execute("CREATE TABLE customers (customer_id bigint, name text)")
        conn.execute("CREATE TABLE customer_activity (session_id bigint)")
    dsn = dict(p.split("=") for p in pg_db.split())
    os.environ["AIRFLOW_CONN_BROKEN_CUSTOMERS"] = json.dumps(
        {
            "conn_type": "postgres",
            "host": dsn["host"],
            "port": int(dsn["port"]),
            "login": dsn["user"],
            "schema": dsn["dbname"],
        }
    )
    try:
        run = make_run(datetime(2025, 8, 1, 2), "contract", None, settings().staging_schema)
        with pytest.raises(SourceContractError, match="broken_customers: customers: column 'email' is missing"):
            extract_customer_db(run, dataclasses.replace(settings(), customer_db_conn_id="broken_customers"))
    finally:
        os.environ.pop("AIRFLOW_CONN_BROKEN_CUSTOMERS", None)
