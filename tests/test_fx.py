"""Exchange rates as reference data: the rates file formats, the refresh from a real rates source
(the FX stand-in as a process) into a real PostgreSQL table, and the rates a run stages."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import subprocess
import sys
import zipfile
from datetime import date
from decimal import Decimal

import psycopg
import pytest
import requests

from dev.stack import free_port, stop_processes, wait_for_port
from include.customer_performance.config import Settings
from include.customer_performance.fx import (
    BUNDLED,
    RatesSourceError,
    parse_rates,
    refresh_rates,
    stage_rates,
)
from include.customer_performance.migrations import MIGRATIONS_DIR
from tests.conftest import ROOT, concurrently

ECB = "Date,USD,JPY,CYP,\n2026-11-03,1.1600,176.1,N/A,\n2026-11-02,1.1550,175.9,N/A,\n"


def zipped(text: str, name: str = "eurofxref-hist.csv") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(name, text)
    return buf.getvalue()


def test_the_ecb_layout_zipped_or_not_and_the_long_layout():
    rows = [(c, d, r) for c, d, r in parse_rates(ECB.encode(), 1 << 20, "t")]
    assert rows == [
        ("USD", date(2026, 11, 3), Decimal("1.1600")),
        ("JPY", date(2026, 11, 3), Decimal("176.1")),
        ("USD", date(2026, 11, 2), Decimal("1.1550")),
        ("JPY", date(2026, 11, 2), Decimal("175.9")),
    ]  # N/A is no rate; the ECB's trailing comma is no currency
    assert parse_rates(zipped(ECB), 1 << 20, "t") == rows
    daily = parse_rates(b"Date, USD, JPY,\n28 November 2025, 1.1572, 181.02,\n", 1 << 20, "t")  # the daily file's form
    assert daily == [("USD", date(2025, 11, 28), Decimal("1.1572")), ("JPY", date(2025, 11, 28), Decimal("181.02"))]
    long = "date,currency,units_per_eur\n2026-11-02,USD,1.1550\n2026-11-02,CHF,0.9301\n"
    assert parse_rates(long.encode(), 1 << 20, "t") == [
        ("USD", date(2026, 11, 2), Decimal("1.1550")),
        ("CHF", date(2026, 11, 2), Decimal("0.9301")),
    ]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"<html>Service unavailable</html>", "not a rates file"),
        (b"Date,USD\n2026-11-02,NaN\n", "is not a positive number"),
        (b"Date,USD\n2026-11-02,Infinity\n", "is not a positive number"),
        (b"Date,USD\n2026-11-02,-1.2\n", "is not a positive number"),
        (b"Date,usd$\n2026-11-02,1.2\n", "is not a currency code"),
        (b"Date,USD\n02/11/2026,1.2\n", "is not a date"),
        (b"date,currency,units_per_eur\n2026-11-02,US,1.2\n", "is not a currency code"),
        (b"Date,USD\n\xff\xfe,1\n", "not UTF-8"),
    ],
)
def test_anything_else_is_refused_with_the_reason(raw, message):
    with pytest.raises(RatesSourceError, match=message):
        parse_rates(raw, 1 << 20, "source")


def test_a_file_that_inflates_past_the_limit_is_refused():
    bomb = zipped("Date,USD\n" + "2026-11-02,1.2\n" * 200_000)  # 3 MB of text in a few KB
    assert len(bomb) < 100_000
    with pytest.raises(RatesSourceError, match="inflates"):
        parse_rates(bomb, 1 << 20, "source")
    two = io.BytesIO()
    with zipfile.ZipFile(two, "w") as zf:
        zf.writestr("a.csv", ECB)
        zf.writestr("b.csv", ECB)
    with pytest.raises(RatesSourceError, match="holds one file"):
        parse_rates(two.getvalue(), 1 << 20, "source")


# -- the refresh, against the FX stand-in ------------------------------------------------------
@pytest.fixture
def fx_source(tmp_path):
    """The FX stand-in serving ``tmp_path/rates.csv``, as Airflow connection ``fx_test``."""
    file = tmp_path / "rates.csv"
    file.write_text(ECB)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "dev/fx_api.py", "--file", str(file), "--port", str(port)], cwd=ROOT)
    procs = {"fx": proc}
    os.environ["AIRFLOW_CONN_FX_TEST"] = json.dumps(
        {"conn_type": "http", "host": "127.0.0.1", "port": port, "schema": "http"}
    )
    try:
        wait_for_port(port, proc, "fx_api")
        yield file, f"http://127.0.0.1:{port}"
    finally:
        os.environ.pop("AIRFLOW_CONN_FX_TEST", None)
        stop_processes(procs)


def rates_db(dsn: str) -> None:
    with psycopg.connect(dsn) as conn:
        conn.execute("CREATE SCHEMA analytics")
        text = (MIGRATIONS_DIR / "0004_fx_rates.sql").read_text()
        conn.execute(psycopg.sql.SQL(text).format(schema=psycopg.sql.Identifier("analytics")))


CFG = dataclasses.replace(Settings(), fx_rates_conn_id="fx_test", crm_read_timeout=5.0)


def refresh(dsn: str, needed: date, cfg=CFG):
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        out = refresh_rates(cur, "analytics", cfg, needed)
        conn.commit()
        rows = dict(
            ((c, d), r) for c, d, r in cur.execute("SELECT currency, day, units_per_eur FROM analytics.fx_rates")
        )
        sources = dict(cur.execute("SELECT source, count(*) FROM analytics.fx_rates GROUP BY 1").fetchall())
    return out, rows, sources


def test_the_refresh_seeds_the_bundle_once_upserts_the_source_and_keeps_every_day(pg_db, fx_source):
    file, url = fx_source
    rates_db(pg_db)
    out, rows, sources = refresh(pg_db, date(2026, 11, 3))
    assert out.error is None and out.upserted == 4 and out.latest == date(2026, 11, 3)
    assert rows["USD", date(2026, 11, 3)] == Decimal("1.1600")
    assert rows["USD", date(2026, 10, 30)] == Decimal("1.1172")  # the bundle's last day
    bundled = sources[BUNDLED]
    assert bundled > 150_000 and sources[f"{url}/stats/eurofxref/eurofxref-hist.zip"] == 4

    again, rows2, sources2 = refresh(pg_db, date(2026, 11, 4))  # not covered yet: asks the source again
    assert again.upserted == 0 and rows2 == rows and sources2 == sources  # idempotent

    # the source now publishes only its last day (as the ECB's daily file does), one revised
    file.write_text("Date,USD,\n2026-11-04,1.1620,\n")
    out, rows3, _ = refresh(pg_db, date(2026, 11, 4))
    assert out.upserted == 1 and rows3["USD", date(2026, 11, 4)] == Decimal("1.1620")
    assert rows3["USD", date(2026, 11, 2)] == Decimal("1.1550") and len(rows3) == len(rows) + 1  # nothing lost

    covered, _, _ = refresh(pg_db, date(2026, 11, 1))  # the table covers it: the source is not asked
    assert covered.upserted == 0 and "not needed" in covered.source


def test_a_source_that_is_down_or_answers_garbage_is_reported_not_raised(pg_db, fx_source):
    file, url = fx_source
    rates_db(pg_db)
    requests.post(f"{url}/_control/faults", json=[{"status": 503, "times": 10}], timeout=5).raise_for_status()
    out, rows, _ = refresh(pg_db, date(2026, 11, 3))
    assert out.error and "503" in out.error and "could not be used" in out.describe()
    assert max(d for _, d in rows) == date(2026, 10, 30)  # the bundle only
    requests.delete(f"{url}/_control/faults", timeout=5)
    file.write_text("<html>maintenance</html>")
    out, _, _ = refresh(pg_db, date(2026, 11, 3))
    assert out.error.startswith("RatesSourceError") and "not a rates file" in out.error


def test_two_runs_refreshing_at_once_end_with_the_same_table(pg_db, fx_source):
    rates_db(pg_db)
    results, errors = concurrently(lambda: refresh(pg_db, date(2026, 11, 3))[1])
    assert not errors and len(results) == 2 and results[0] == results[1]


# -- what a run stages ---------------------------------------------------------------------------
def staged(dsn: str, rows: list, first: date, last: date, reporting: str = "USD", staleness: int = 7) -> dict:
    from psycopg import sql

    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("CREATE SCHEMA IF NOT EXISTS analytics; CREATE SCHEMA IF NOT EXISTS cp_staging")
        cur.execute("SELECT to_regclass('analytics.fx_rates')")
        if cur.fetchone()[0] is None:
            text = (MIGRATIONS_DIR / "0004_fx_rates.sql").read_text()
            cur.execute(sql.SQL(text).format(schema=sql.Identifier("analytics")))
        cur.execute("TRUNCATE analytics.fx_rates")
        cur.executemany("INSERT INTO analytics.fx_rates VALUES (%s, %s, %s, 'test')", rows)
        target = sql.Identifier("cp_staging", "fx_rates_test")
        stage_rates(cur, target, first, last, reporting, "analytics", staleness)
        out = {
            (c, d): (r, m, lr)
            for c, d, r, m, lr in cur.execute(
                sql.SQL("SELECT currency, day, fx_rate, missing_rate, last_rate_day FROM {}").format(target)
            )
        }
        conn.commit()
    return out


def test_the_reporting_currency_is_one_and_others_need_a_fresh_rate(pg_db):
    d = date
    rows = [
        ("USD", d(2026, 11, 2), Decimal("1.2")),
        ("GBP", d(2026, 11, 2), Decimal("0.8")),
        ("USD", d(2026, 11, 9), Decimal("1.25")),  # GBP stops on the 2nd
    ]
    s = staged(pg_db, rows, d(2026, 11, 2), d(2026, 11, 10))
    assert s["USD", d(2026, 11, 5)] == (1, None, None)
    assert s["EUR", d(2026, 11, 5)][0] == Decimal("1.2")  # EUR is the base: 1.2 USD per EUR
    assert s["GBP", d(2026, 11, 9)][0] == Decimal("1.25") / Decimal("0.8")  # the cross rate, still fresh
    assert s["GBP", d(2026, 11, 10)] == (None, "GBP", d(2026, 11, 2))  # 8 days old: stale, says which and since
    assert s["EUR", d(2026, 11, 10)][0] == Decimal("1.25")

    # before any rate (1997): the reporting currency still converts, the others cannot
    old = staged(pg_db, rows, d(1997, 3, 1), d(1997, 3, 2))
    assert old["USD", d(1997, 3, 1)] == (1, None, None)
    assert old["EUR", d(1997, 3, 1)] == (None, "USD", None)
    assert old["GBP", d(1997, 3, 1)] == (None, "GBP", None)
    assert ("XXX", d(1997, 3, 1)) not in old  # never held: unknown, the gate's warning rule

    # a reporting currency the table does not hold at all (e.g. one only a treasury feed has)
    chf = staged(pg_db, rows, d(2026, 11, 2), d(2026, 11, 2), reporting="CHF")
    assert chf["CHF", d(2026, 11, 2)] == (1, None, None)
    assert chf["USD", d(2026, 11, 2)] == (None, "CHF", None)


def test_lifetime_amounts_take_the_last_rate_known_however_old(pg_db):
    """A currency that has ceased (HRK's last rate is of 2022) must not stop every run: the lifetime
    history, converted at the period's last day, takes its last rate; the period's sales would not."""
    from psycopg import sql

    d = date
    rows = [("USD", d(2026, 11, 2), Decimal("1.2")), ("HRK", d(2022, 12, 30), Decimal("7.5"))]
    s = staged(pg_db, rows, d(2026, 11, 2), d(2026, 11, 3))
    assert s["HRK", d(2026, 11, 3)] == (None, "HRK", d(2022, 12, 30))  # a sale this month: stale, it fails
    with psycopg.connect(pg_db) as conn:
        (last,) = conn.execute(
            sql.SQL("SELECT last_fx_rate FROM {} WHERE currency = 'HRK' AND day = '2026-11-03'").format(
                sql.Identifier("cp_staging", "fx_rates_test")
            )
        ).fetchone()
    assert last == Decimal("1.2") / Decimal("7.5")
