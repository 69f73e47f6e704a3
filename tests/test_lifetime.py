"""The incremental lifetime state equals a full recomputation, run after run, with late changes.

A sales database with two years of history; month-close runs, a month-to-date run and reruns of
past months, with late inserts into old months, re-statused, corrected, re-dated and re-currencied
sales and a period sale repeating an old id in between. After every run the staged summary
(incremental) is compared with the same run computed in full (``lifetime_mode = "full"``, its own
analytics schema), EXCEPT ALL both ways, and the stored snapshots with a full recomputation
(``lifetime.verify``). What no ``updated_at`` shows (a sale deleted outright) is caught by verify
and repaired by rebuild.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import uuid
from datetime import date, datetime, timedelta

import MySQLdb
import psycopg
import pytest

from dev.generate import SALES_DDL, SALES_INDEXES
from dev.stack import MYSQL, pg_dsn
from include.customer_performance.__main__ import main as cli
from include.customer_performance.config import settings
from include.customer_performance.db import mysql, pg
from include.customer_performance.extract import lifetime
from include.customer_performance.extract.sales_db import extract_sales_db
from include.customer_performance.staging import make_run

COLS = "customer_id, currency, first_purchase, last_purchase, purchases, purchase_days, monetary"
CURRENCIES = ["USD", "EUR", "GBP", None, "usd"]  # a lower-case spelling groups on its own; NULL: left out
STATUSES = ["completed"] * 6 + ["refunded", "pending"]


@pytest.fixture
def sales(stack):
    """Two years of sales for 60 customers (2024-01 .. 2025-09), every index the state probes by."""
    name = f"cp_lt_{uuid.uuid4().hex[:8]}"
    conn = MySQLdb.connect(**MYSQL, charset="utf8mb4", autocommit=True)
    cur = conn.cursor()
    # a Unicode collation: besides case and trailing spaces, it holds 'T1' and 'T1' + U+00A0 equal
    cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    cur.execute(f"USE `{name}`")
    for stmt in SALES_DDL:
        cur.execute(stmt)
    rnd = random.Random(21)
    start = datetime(2024, 1, 1)
    # ids numbered in time order, as order numbers are (the state's id keys rely on it for speed)
    times = sorted(start + timedelta(minutes=rnd.randrange(0, 640 * 24 * 60)) for _ in range(1500))
    rows = []
    for i, when in enumerate(times):
        tid = f"T{i:05d}"
        row = [tid, rnd.randint(1, 60), when, f"{rnd.randint(1, 50000) / 100:.2f}", rnd.choice(CURRENCIES)]
        row += ["books", 1, "card", rnd.choice(STATUSES), "0", "0", when + timedelta(minutes=rnd.randint(0, 120))]
        rows.append(row)
        if rnd.random() < 0.05:  # the same id again, a settled version a few hours later
            again = [*row]
            again[2], again[8], again[11] = when + timedelta(hours=3), "completed", when + timedelta(hours=4)
            rows.append(again)
    rows[7][3] = rows[8][3] = None  # amounts the source does not know
    rows[9][8] = "Completed"  # the collation's spelling, at the source and in the period's summary alike
    cur.executemany("INSERT INTO transactions VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)", rows)
    cur.execute(SALES_INDEXES)
    os.environ["AIRFLOW_CONN_LIFETIME_SALES"] = json.dumps(
        {"conn_type": "mysql", "host": MYSQL["host"], "port": MYSQL["port"], "login": "root", "schema": name}
    )
    try:
        yield cur
    finally:
        os.environ.pop("AIRFLOW_CONN_LIFETIME_SALES", None)
        cur.execute(f"DROP DATABASE `{name}`")
        conn.close()


@pytest.fixture
def schemas(stack):
    tag = uuid.uuid4().hex[:6]
    names = {"state": f"lt_state_{tag}", "full": f"lt_full_{tag}", "staging": f"lt_stg_{tag}"}
    yield names
    with psycopg.connect(pg_dsn(stack.analytics_db), autocommit=True) as conn:
        for schema in names.values():
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def _run(schemas: dict, logical: datetime, mode: str, report_month: str | None = None):
    cfg = dataclasses.replace(
        settings(),
        sales_db_conn_id="lifetime_sales",
        analytics_schema=schemas["state" if mode == "incremental" else "full"],
        lifetime_mode=mode,
        copy_chunk_rows=97,
        # the incremental runs summarise and merge in two parts (lifetime_source_queries), the full
        # ones in one query: the comparison covers the parts too
        lifetime_source_queries=2 if mode == "incremental" else 1,
    )
    run = make_run(logical, f"lt_{mode}_{logical:%Y%m%d}_{uuid.uuid4().hex[:4]}", report_month, schemas["staging"])
    out = extract_sales_db(run, cfg)
    return run, out["customer_history"]["state"]


def _differences(stack, a, b) -> tuple[int, int, int]:
    """(rows of a, rows of a not in b, rows of b not in a), multisets."""
    ta, tb = f"{a.schema}.{a.table_name('customer_history')}", f"{b.schema}.{b.table_name('customer_history')}"
    with psycopg.connect(pg_dsn(stack.analytics_db)) as conn:
        n = conn.execute(f"SELECT count(*) FROM {ta}").fetchone()[0]
        ab = conn.execute(f"SELECT count(*) FROM (SELECT {COLS} FROM {ta} EXCEPT ALL SELECT {COLS} FROM {tb}) d")
        ba = conn.execute(f"SELECT count(*) FROM (SELECT {COLS} FROM {tb} EXCEPT ALL SELECT {COLS} FROM {ta}) d")
        return n, ab.fetchone()[0], ba.fetchone()[0]


def _same_as_full(stack, schemas, logical: datetime, report_month: str | None = None) -> dict:
    inc, state = _run(schemas, logical, "incremental", report_month)
    full, full_state = _run(schemas, logical, "full", report_month)
    assert full_state["method"] == "full"
    rows, missing, extra = _differences(stack, inc, full)
    assert rows > 60 and (missing, extra) == (0, 0), f"{logical:%Y-%m-%d}: {state}"
    return state


def _verify(schemas, as_of: date) -> dict:
    with mysql("lifetime_sales") as src, pg(settings().analytics_db_conn_id) as dst:
        return lifetime.verify(src, dst, schemas["state"], as_of)


def test_incremental_state_equals_full_recomputation_through_late_changes(stack, sales, schemas, monkeypatch, capsys):
    monkeypatch.setattr(lifetime, "RECOMPUTE_BATCH", 2)  # the changed customers in several reads
    cur = sales
    # June closes: the empty state bootstraps the snapshot at 1 June in one pass, stores 1 July's
    june = _same_as_full(stack, schemas, datetime(2025, 7, 1, 2))
    assert june["bootstrapped"] and june["method"] == "incremental" and june["stored_as_of"] == "2025-07-01"
    assert _verify(schemas, date(2025, 7, 1))["missing"] == 0

    # late changes, stamped now (after every watermark)
    now = "UTC_TIMESTAMP()"
    cur.execute("SELECT customer_id FROM transactions WHERE order_date < '2025-01-01' AND status = 'completed'")
    old = sorted({r[0] for r in cur.fetchall()})
    cur.execute(  # a late sale in an old month
        f"INSERT INTO transactions VALUES ('T90001', {old[0]}, '2024-03-05 10:00:00', '77.00', 'EUR', 'books', 1,"
        f" 'card', 'completed', 0, 0, {now})"
    )
    cur.execute(  # a sale refunded a year later
        f"UPDATE transactions SET status = 'refunded', updated_at = {now}"
        f" WHERE customer_id = {old[1]} AND order_date < '2025-01-01' AND status = 'completed' LIMIT 1"
    )
    cur.execute(  # an amount corrected, a currency corrected, a sale re-dated within the history
        f"UPDATE transactions SET amount = amount + 1000, updated_at = {now}"
        f" WHERE customer_id = {old[2]} AND order_date < '2025-01-01' LIMIT 1"
    )
    cur.execute(
        f"UPDATE transactions SET currency = 'JPY', updated_at = {now}"
        f" WHERE customer_id = {old[3]} AND order_date < '2025-01-01' LIMIT 1"
    )
    cur.execute(
        f"UPDATE transactions SET order_date = '2025-05-31 23:59:59', updated_at = {now}"
        f" WHERE customer_id = {old[4]} AND order_date < '2025-01-01' LIMIT 1"
    )
    # a July sale under an id the same customer bought under in 2024 (a source re-using ids),
    # stamped before the watermark: only the id keys (the period's least against the history's
    # greatest) can see it
    cur.execute(
        "SELECT transaction_id, customer_id FROM transactions WHERE order_date < '2025-01-01'"
        f" AND status = 'completed' AND customer_id > {old[4]} ORDER BY transaction_id LIMIT 1"
    )
    tid, owner = cur.fetchone()
    cur.execute(
        f"INSERT INTO transactions VALUES ('{tid}', {owner}, '2025-07-09 08:00:00', '12.00', 'USD', 'books', 1,"
        " 'card', 'completed', 0, 0, '2025-07-09 08:00:00')"
    )

    # a customer whose first sale is in July; an unchanged customer's first sale in a new currency
    # (the period's rows the snapshot has no row to merge with); a July sale under an old id of its
    # customer spelled in lower case (one id to the source's collation)
    cur.execute(
        "INSERT INTO transactions VALUES ('T90002', 999, '2025-07-03 10:00:00', '5.00', 'USD', 'books', 1, 'card',"
        " 'completed', 0, 0, '2025-07-03 10:00:00'), ('T90003', 60, '2025-07-04 10:00:00', '6.00', 'CHF', 'books', 1,"
        " 'card', 'completed', 0, 0, '2025-07-04 10:00:00')"
    )
    cur.execute(
        "SELECT transaction_id, customer_id FROM transactions WHERE order_date < '2025-01-01'"
        f" AND status = 'completed' AND customer_id > {owner} ORDER BY transaction_id LIMIT 1"
    )
    tid2, owner2 = cur.fetchone()
    cur.execute(
        f"INSERT INTO transactions VALUES ('{tid2.lower()}', {owner2}, '2025-07-10 08:00:00', '13.00', 'EUR', 'books',"
        " 1, 'card', 'completed', 0, 0, '2025-07-10 08:00:00')"
    )
    # ... and one repeating its customer's greatest id before July with a trailing space (the same
    # id to a PAD SPACE collation)
    cur.execute(
        "SELECT customer_id, MAX(transaction_id) FROM transactions WHERE order_date < '2025-07-01'"
        f" AND status = 'completed' AND customer_id > {owner2} GROUP BY customer_id ORDER BY customer_id LIMIT 1"
    )
    owner3, tid3 = cur.fetchone()
    cur.execute(
        f"INSERT INTO transactions VALUES ('{tid3} ', {owner3}, '2025-07-11 08:00:00', '14.00', 'USD', 'books',"
        " 1, 'card', 'completed', 0, 0, '2025-07-11 08:00:00')"
    )
    # ... and with a no-break space, which the Unicode collation weighs as a space
    cur.execute(
        "SELECT customer_id, MAX(transaction_id) FROM transactions WHERE order_date < '2025-07-01'"
        f" AND status = 'completed' AND customer_id > {owner3} GROUP BY customer_id ORDER BY customer_id LIMIT 1"
    )
    owner4, tid4 = cur.fetchone()
    cur.execute(
        "INSERT INTO transactions VALUES (%s, %s, '2025-07-12 08:00:00', '15.00', 'USD', 'books',"
        " 1, 'card', 'completed', 0, 0, '2025-07-12 08:00:00')",
        (tid4 + "\u00a0", owner4),
    )

    # July closes from the 1 July snapshot: the changed customers are recomputed, nothing else
    july = _same_as_full(stack, schemas, datetime(2025, 8, 1, 2))
    assert july["method"] == "incremental" and not july.get("bootstrapped")
    assert july["changed"] == 5 and july["id_overlap"] == 4
    assert _verify(schemas, date(2025, 8, 1))["missing"] == 0

    # August to date, from the 1 August snapshot; a September sale is after its end
    aug = _same_as_full(stack, schemas, datetime(2025, 8, 16, 2), report_month=None)
    assert aug["method"] == "incremental" and "stored_as_of" not in aug

    # a rerun of June after all that: its old snapshot (1 June, older watermark) sees the changes
    rerun = _same_as_full(stack, schemas, datetime(2025, 7, 1, 2))
    assert rerun["method"] == "incremental" and rerun["changed"] == 5 and rerun["id_overlap"] == 0
    # ... and July again from the 1 July snapshot it replaced (whose watermark is now: the changes
    # are within the look-back, and looked at again)
    assert _same_as_full(stack, schemas, datetime(2025, 8, 1, 2))["changed"] == 5

    # a sale deleted outright leaves no updated_at: verify finds it, rebuild repairs the state
    # (a customer none of the changes above touched: verify leaves the changed ones out, as the next
    # run recomputes them)
    cur.execute(
        "DELETE FROM transactions WHERE order_date < '2025-07-01' AND BINARY status = 'completed'"
        " AND currency IS NOT NULL AND amount > 0"  # a sale the summary counts
        f" AND customer_id > {old[4]} AND customer_id NOT IN ({owner}, {owner2}, {owner3}, {owner4}) LIMIT 1"
    )
    found = _verify(schemas, date(2025, 8, 1))
    assert found["missing"] > 0 and found["extra"] > 0 and found["changed"] == 5
    env = {"CUSTOMER_PERFORMANCE_SALES_DB_CONN_ID": "lifetime_sales"}
    os.environ.update(env)
    settings.cache_clear()
    try:
        assert cli(["lifetime", "verify", "--month", "2025-08", "--schema", schemas["state"]]) == 1
        assert cli(["lifetime", "rebuild", "--month", "2025-08", "--schema", schemas["state"]]) == 0
        assert cli(["lifetime", "verify", "--month", "2025-08", "--schema", schemas["state"]]) == 0
        assert cli(["lifetime", "status", "--schema", schemas["state"]]) == 0
        listed = capsys.readouterr().out
        assert "as of 2025-08-01" in listed and "full" in listed and "cli:lifetime-rebuild" in listed
    finally:
        for key in env:
            os.environ.pop(key)
        settings.cache_clear()
    august = _same_as_full(stack, schemas, datetime(2025, 8, 20, 2))
    assert august["method"] == "incremental" and not august.get("bootstrapped")


def test_a_sale_stamped_in_the_future_does_not_hide_later_changes(stack, sales, schemas):
    """The watermark is never later than the source's clock: a row stamped 2099 would otherwise
    make every later change look older than the snapshot."""
    sales.execute(
        "INSERT INTO transactions VALUES ('FUT1', 7, '2024-05-05 10:00:00', '9.00', 'USD', 'books', 1, 'card',"
        " 'completed', 0, 0, '2099-01-01 00:00:00')"
    )
    _same_as_full(stack, schemas, datetime(2025, 8, 1, 2))  # July closes: the 1 August snapshot
    sales.execute(
        "UPDATE transactions SET amount = amount + 1, updated_at = UTC_TIMESTAMP()"
        " WHERE customer_id = 9 AND order_date < '2025-01-01' AND status = 'completed' LIMIT 1"
    )
    state = _same_as_full(stack, schemas, datetime(2025, 8, 20, 2))  # August to date sees customer 9
    assert state["method"] == "incremental" and state["changed"] >= 1


def test_too_many_changed_customers_are_summarised_in_one_pass(stack, sales, schemas, monkeypatch):
    _run(schemas, datetime(2025, 7, 1, 2), "incremental")  # the state at 1 July
    sales.execute("UPDATE transactions SET updated_at = UTC_TIMESTAMP() WHERE customer_id IN (3, 4)")
    monkeypatch.setattr(lifetime, "RECOMPUTE_MIN", 1)
    monkeypatch.setattr(lifetime, "RECOMPUTE_MAX_SHARE", 0.0)
    inc, state = _run(schemas, datetime(2025, 8, 1, 2), "incremental")
    assert state["method"] == "full" and state["why"].startswith("2 of ")
    assert "period_rows" not in state  # decided before the period's summary was read
    full, _ = _run(schemas, datetime(2025, 8, 1, 2), "full")
    assert _differences(stack, inc, full)[1:] == (0, 0)


def test_a_source_without_the_indexes_is_summarised_in_full(stack, sales, schemas):
    sales.execute("ALTER TABLE transactions DROP KEY ix_updated_at")
    inc, state = _run(schemas, datetime(2025, 8, 1, 2), "incremental")
    assert state["method"] == "full" and "updated_at" in state["why"]
    full, _ = _run(schemas, datetime(2025, 8, 1, 2), "full")
    assert _differences(stack, inc, full)[1:] == (0, 0)


def test_snapshots_without_id_keys_are_dropped_by_the_migration(stack, sales, schemas, tmp_path):
    """A state built before migration 0009 has no id keys (it would hide a repeated id): the
    migration empties the registry, the next run bootstraps, and the old partition is pruned."""
    from include.customer_performance.migrations import MIGRATIONS_DIR, migrate

    for path in sorted(MIGRATIONS_DIR.glob("000[1-8]_*.sql")):
        (tmp_path / path.name).write_text(path.read_text())
    schema = schemas["state"]
    with mysql("lifetime_sales") as src:
        source = lifetime.source_name(src)  # the snapshot the next run would use, were it kept
    with psycopg.connect(pg_dsn(stack.analytics_db)) as conn, conn.cursor() as cur:
        migrate(cur, schema, tmp_path)
        cur.execute(
            f"INSERT INTO {schema}.lifetime_snapshots (source, as_of, watermark, method, customers, rows)"
            " VALUES (%s, '2025-07-01', '2025-07-01', 'full', 1, 1) RETURNING snapshot_id",
            (source,),
        )
        (old_id,) = cur.fetchone()
        cur.execute(
            f"CREATE TABLE {schema}.customer_lifetime_{old_id} PARTITION OF {schema}.customer_lifetime"
            f" FOR VALUES IN ({old_id})"
        )
        cur.execute(f"INSERT INTO {schema}.customer_lifetime VALUES ({old_id}, 1, NULL, now(), now(), 1, 1, 1)")
    inc, state = _run(schemas, datetime(2025, 8, 1, 2), "incremental")
    assert state["bootstrapped"] and state["stored_as_of"] == "2025-08-01"
    with psycopg.connect(pg_dsn(stack.analytics_db)) as conn:
        assert conn.execute("SELECT to_regclass(%s)", (f"{schema}.customer_lifetime_{old_id}",)).fetchone()[0] is None
        snapshots = conn.execute(f"SELECT snapshot_id FROM {schema}.lifetime_snapshots").fetchall()
        assert old_id not in [i for (i,) in snapshots]
        keys = conn.execute(
            f"SELECT count(*) FILTER (WHERE id_key_max IS NULL), count(*) FROM {schema}.customer_lifetime"
            " WHERE currency IS NULL AND purchases > 0"
        ).fetchone()
        assert keys[0] == 0 and keys[1] > 50
    full, _ = _run(schemas, datetime(2025, 8, 1, 2), "full")
    assert _differences(stack, inc, full)[1:] == (0, 0)


def test_the_summary_in_parts_equals_one_query(stack, sales):
    """The source's GROUP BY split over customer-id classes (``lifetime_source_queries``) gives,
    together, the one query's rows: every class once, negative ids (whose remainder is negative)
    included."""
    sales.execute("UPDATE transactions SET customer_id = -customer_id WHERE customer_id IN (7, 8)")
    sales.execute("SELECT COUNT(*) FROM transactions WHERE customer_id < 0")
    assert sales.fetchone()[0] > 0
    with mysql("lifetime_sales") as src:
        key = lifetime.id_key(src)

        def rows(part=None, start=None) -> list[tuple]:
            query, params = lifetime.summary_query(
                date(2025, 8, 1), start, key_min=start is not None, key=key, part=part
            )
            cur = src.cursor()
            cur.execute(query, params)
            out = cur.fetchall()
            cur.close()
            return sorted(out)

        for start in (None, date(2025, 7, 1)):  # a snapshot's whole history, a period's summary
            whole = rows(start=start)
            assert any(r[0] == b"-7" for r in whole) and len(whole) > 40
            for n in (2, 3):
                parts = [rows((i, n), start) for i in range(n)]
                assert all(parts), f"a class of {n} is empty"
                assert sorted(r for p in parts for r in p) == whole
