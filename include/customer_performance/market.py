"""The addressable market per region: an optional reference file a deployment provides, against
which the regional summary's market penetration is measured (else against the region's customer
base, and the row says which: ``penetration_base``).

The file (setting ``market_size_file``, CSV, UTF-8) has the header ``region,addressable_customers``
and one row per region, named as the customer database names it; every value is checked before
anything is computed: a region once, a whole number of customers above 0 (ASCII digits). A region of
the file no customer has simply matches no row (check its spelling against the source's); a region
with more active customers than its addressable market makes penetration above 1, which the
regional summary's suite reports (``regional_summary.market_penetration.range``).
"""

from __future__ import annotations

import csv
import io
import logging
from pathlib import Path

from psycopg import sql

log = logging.getLogger(__name__)

HEADER = ["region", "addressable_customers"]
MAX_BYTES = 1 << 20


class MarketSizeError(ValueError):
    """The addressable-market file is unreadable or invalid: a deployment setting to fix."""


def read(path: str | Path) -> dict[str, int]:
    """``{region: addressable customers}`` from the file, or MarketSizeError naming the line."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise MarketSizeError(f"market_size_file {p}: {exc.strerror or exc}") from None
    if len(raw) > MAX_BYTES:
        raise MarketSizeError(f"market_size_file {p}: larger than {MAX_BYTES} bytes; one row per region is expected")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise MarketSizeError(f"market_size_file {p}: not UTF-8") from None
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or [c.strip() for c in rows[0]] != HEADER:
        raise MarketSizeError(f"market_size_file {p}: the first line must be {','.join(HEADER)}")
    out: dict[str, int] = {}
    for n, row in enumerate(rows[1:], start=2):
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) != 2:
            raise MarketSizeError(f"market_size_file {p}, line {n}: two values expected, got {len(row)}")
        region, size = row[0].strip(), row[1].strip()
        if not region:
            raise MarketSizeError(f"market_size_file {p}, line {n}: the region is empty")
        if region in out:
            raise MarketSizeError(f"market_size_file {p}, line {n}: region {region!r} is listed twice")
        if not (size.isascii() and size.isdigit()) or int(size) <= 0:
            raise MarketSizeError(
                f"market_size_file {p}, line {n}: addressable_customers of {region!r} must be a whole number above 0"
            )
        out[region] = int(size)
    return out


def relation(sizes: dict[str, int]) -> sql.Composable:
    """The sizes as a relation (region, addressable_customers), the values bound as literals."""
    if not sizes:
        return sql.SQL("(SELECT NULL::text AS region, NULL::bigint AS addressable_customers WHERE false)")
    rows = sql.SQL(", ").join(
        sql.SQL("({}, {}::bigint)").format(sql.Literal(r), sql.Literal(n)) for r, n in sorted(sizes.items())
    )
    return sql.SQL("(SELECT * FROM (VALUES {}) AS m (region, addressable_customers))").format(rows)


def of_settings(cfg) -> dict[str, int]:
    return read(cfg.market_size_file) if cfg.market_size_file else {}
