"""The generator in stages (dev/generate.py): the sales table moved a chunk at a time holds the same
rows in the same order as moved in one piece, the counts it reports are those of the sources it
wrote, and none of its work tables is left behind."""

from __future__ import annotations

import hashlib
import sqlite3
import uuid

import MySQLdb
import psycopg
import pytest

from dev import generate as gen
from dev.stack import MYSQL, Stack, pg_dsn


def _fingerprint(stack: Stack) -> dict:
    out = {}
    with psycopg.connect(pg_dsn(stack.customer_db)) as conn:
        for table in ("customers", "customer_activity", "ground_truth"):
            h = hashlib.md5()  # noqa: S324 - a fingerprint, not a secret
            for (row,) in conn.execute(f"SELECT t::text FROM {table} AS t ORDER BY 1"):  # noqa: S608
                h.update(row.encode())
            out[table] = h.hexdigest()
        out["gen_schema"] = conn.execute("SELECT count(*) FROM pg_namespace WHERE nspname = 'gen'").fetchone()[0]
    conn = MySQLdb.connect(**MYSQL, db=stack.sales_db)
    try:
        cur = conn.cursor()
        cur.execute("SELECT * FROM transactions")  # the physical order: the order rows were loaded in
        h = hashlib.md5()  # noqa: S324
        for row in cur.fetchall():
            h.update(repr(row).encode())
        out["transactions"] = h.hexdigest()
        cur.execute("SELECT count(*) FROM transactions WHERE order_date >= '2025-07-01' AND order_date < '2025-08-01'")
        out["transactions_in_july"] = cur.fetchone()[0]
        cur.execute("SELECT count(*) FROM transactions")
        out["transactions_all"] = cur.fetchone()[0]
    finally:
        conn.close()
    store = sqlite3.connect(stack.crm_store)
    h = hashlib.md5()  # noqa: S324
    for row in store.execute("SELECT * FROM interactions ORDER BY rowid"):
        h.update(repr(row).encode())
    out["interactions"] = h.hexdigest()
    store.close()
    return out


@pytest.fixture
def two_stacks(tmp_path):
    stacks = [Stack(f"cp_gen_{part}_{uuid.uuid4().hex[:8]}", tmp_path / part) for part in ("one", "chunks")]
    for s in stacks:
        s.create_databases()
    yield stacks
    for s in stacks:
        s.drop_databases()


def test_chunked_load_writes_the_rows_of_one_load(two_stacks, monkeypatch):
    whole, chunked = two_stacks
    planted_whole = whole.generate(800, "2025-07", history_months=6)
    loads = []
    real_load = gen.load_sales_db

    def small_chunks(cur, mysql_kwargs, tmp):
        loads.append(mysql_kwargs["db"])
        return real_load(cur, mysql_kwargs, tmp, chunk_bytes=50_000)

    monkeypatch.setattr(gen, "load_sales_db", small_chunks)
    loaded = []
    real_execute = MySQLdb.cursors.BaseCursor.execute

    def counting(self, query, args=None):
        if "LOAD DATA" in str(query):
            loaded.append(query)
        return real_execute(self, query, args)

    monkeypatch.setattr(MySQLdb.cursors.BaseCursor, "execute", counting)
    planted_chunked = chunked.generate(800, "2025-07", history_months=6)
    assert loads == [chunked.sales_db]
    a, b = _fingerprint(whole), _fingerprint(chunked)
    assert b["transactions_all"] > 50_000 / 120 * 5, "too few rows to need several chunks"
    assert len(loaded) > 5, f"the load was not chunked: {len(loaded)} LOAD DATA"
    assert a == b
    for planted in (planted_whole, planted_chunked):
        planted.pop("seconds")
    assert planted_whole == planted_chunked
    # what the generator reports is what the sources hold, and its work tables are gone
    assert a["gen_schema"] == 0
    assert planted_whole["rows_in_month"]["transactions"] == a["transactions_in_july"]
