"""Exchange rates worked out in the tests, independently of the pipeline's SQL: the bundled ECB
history (the rates the FX stand-in serves by default), the last rate on or before each day."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from include.customer_performance.fx import bundled_rates


def daily_rates(first: date, last: date, max_staleness: int = 7, rows=None) -> dict[tuple[str, date], Decimal]:
    """``{(currency, day): units per EUR}`` for the days of [first, last] with a rate at most
    ``max_staleness`` days old, from ``rows`` (currency, day, rate) or the bundle; EUR is 1."""
    series: dict[str, list[tuple[date, Decimal]]] = {}
    for currency, day, rate in rows if rows is not None else bundled_rates():
        series.setdefault(currency, []).append((day, rate))
    out = {}
    day = first
    while day <= last:
        out["EUR", day] = Decimal(1)
        for currency, points in series.items():
            known = [(d, r) for d, r in points if d <= day]
            if known:
                d, r = max(known)
                if (day - d).days <= max_staleness:
                    out[currency, day] = r
        day += timedelta(days=1)
    return out


def stage_test_rates(cur, run, first: date, last: date, reporting: str = "USD", schema: str = "fxref") -> None:
    """The run's staged ``fx_rates`` from a rates table of its own (schema ``schema``: the
    migration's table, seeded from the bundle), as calculate's prepare_rates stages them."""
    import dataclasses

    from psycopg import sql

    from include.customer_performance.config import Settings
    from include.customer_performance.fx import refresh_rates, stage_rates
    from include.customer_performance.migrations import MIGRATIONS_DIR

    cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
    cur.execute("SELECT to_regclass(%s)", (f"{schema}.fx_rates",))
    if cur.fetchone()[0] is None:
        text = (MIGRATIONS_DIR / "0004_fx_rates.sql").read_text()
        cur.execute(sql.SQL(text).format(schema=sql.Identifier(schema)))
    # seeded from the bundle; the source is never asked, the bundle covering the test's dates
    refresh_rates(cur, schema, dataclasses.replace(Settings(), fx_rates_conn_id="fx_rates"), last)
    stage_rates(cur, run.table("fx_rates"), first, last, reporting, schema, 7)


def source_revenue(stack, first: date, end: date, rates: dict, reporting: str = "USD") -> dict[int, tuple]:
    """Revenue per known customer for [first, end) straight from the sources, converted here in
    Python: the latest version of each transaction_id, completed minus refunded, the reporting
    currency at 1, others at ``rates`` (units per EUR) of the day; rows without a rate, in an
    unknown currency or with a negative amount (quarantined by the pipeline) left out. Returns
    ``{customer_id: (revenue, transactions counted)}``."""
    from collections import defaultdict

    import MySQLdb
    import psycopg

    from dev.stack import MYSQL, pg_dsn

    with psycopg.connect(pg_dsn(stack.customer_db)) as conn:
        known = {r[0] for r in conn.execute("SELECT customer_id FROM customers")}
    conn = MySQLdb.connect(**MYSQL, db=stack.sales_db)
    cur = conn.cursor()
    cur.execute(
        "SELECT transaction_id, customer_id, amount, currency, status, order_date, updated_at FROM transactions"
        " WHERE order_date >= %s AND order_date < %s",
        (first, end),
    )
    latest = {}
    for tid, cid, amount, currency, status, when, updated in cur.fetchall():
        if tid not in latest or updated > latest[tid][-1]:
            latest[tid] = (cid, amount, currency, status, when, updated)
    conn.close()
    revenue = defaultdict(lambda: [Decimal(0), 0])
    for cid, amount, currency, status, when, _ in latest.values():
        day = when.date()
        if currency == reporting:
            converted = amount
        elif (currency, day) in rates and (reporting, day) in rates:
            converted = (amount * rates[reporting, day] / rates[currency, day]).quantize(Decimal("0.01"))
        else:
            continue  # an unknown currency: quarantined by the pipeline
        if cid not in known or amount < 0:
            continue  # an unknown customer or a negative sale: quarantined
        sign = {"completed": 1, "refunded": -1}.get(status, 0)
        revenue[cid][0] += sign * converted
        revenue[cid][1] += 1
    return {c: (v[0], v[1]) for c, v in revenue.items()}


def source_lifetime_revenue(stack, end: date, rates: dict, reporting: str = "USD") -> tuple[dict[int, Decimal], int]:
    """Lifetime revenue per customer up to ``end`` straight from the sales database, worked out
    here in Python by the one definition of a sale: of each transaction id's versions that the
    gate lets through (an amount above 0, a known status), the latest (updated_at, then amount,
    status, currency, customer, all descending), completed at plus its amount and refunded at
    minus, converted at the rate of ``end``'s eve (``rates``: units per EUR), a currency without
    one left out. Returns ``({customer_id: revenue}, ids with two completed versions or more)``."""
    from collections import Counter, defaultdict

    import MySQLdb

    from dev.stack import MYSQL

    conn = MySQLdb.connect(**MYSQL, db=stack.sales_db)
    cur = conn.cursor()
    cur.execute(
        "SELECT transaction_id, customer_id, amount, currency, status, updated_at FROM transactions"
        " WHERE order_date < %s AND transaction_id IS NOT NULL",
        (end,),
    )
    rows = cur.fetchall()
    conn.close()
    known = {"completed", "refunded", "pending", "cancelled"}
    completed_versions = Counter(r[0] for r in rows if r[4] == "completed")
    latest: dict[str, tuple] = {}

    def rank(r):  # descending on every part; a missing updated_at ranks last
        return (r[5] is not None, r[5] or date.min, r[2], r[4], r[3] or "", r[1])

    for r in rows:
        if r[2] is None or r[2] <= 0 or r[4] not in known:
            continue
        if r[0] not in latest or rank(r) > rank(latest[r[0]]):
            latest[r[0]] = r
    day = end - timedelta(days=1)
    revenue: dict[int, Decimal] = defaultdict(Decimal)
    for _, cid, amount, currency, status, _ in latest.values():
        sign = {"completed": 1, "refunded": -1}.get(status, 0)
        if not sign:
            continue
        if currency == reporting:
            revenue[cid] += sign * amount
        elif (currency, day) in rates and (reporting, day) in rates:
            revenue[cid] += sign * amount * rates[reporting, day] / rates[currency, day]
    return dict(revenue), sum(1 for n in completed_versions.values() if n > 1)
