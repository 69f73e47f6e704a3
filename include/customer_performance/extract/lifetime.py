"""The lifetime purchase summary, kept incrementally in the analytics database.

The churn model needs, per customer, every completed purchase before the period end: first and
last purchase, distinct purchases, distinct purchase days and the amount per currency. Computed
from scratch it is one GROUP BY over every sale of the years behind the period, in the production
sales database, every night. Instead the analytics database keeps snapshots of that summary at
month starts (``customer_lifetime``, one partition per snapshot, registered in
``lifetime_snapshots``), and a run computes

    summary(period end) = snapshot(month start)        for the customers nothing changed for
                        + summary of [month start, period end)   (one GROUP BY of the period)
                        | recomputed from the source   for the customers that changed

A sale counts as the period counts it: the latest version of its transaction id, completed as a
purchase and its amount, refunded as minus its amount (``summary_query``). Merging is exact: days
and amounts add up because the two windows hold different days; first and last purchase are the
least and greatest. A customer whose period sale repeats an id sold before the month start (a
later version of it, or an id re-used) must be recomputed. Which ones could, the state tells
without reading the history: each row keeps ``id_key_max``, the greatest id sold before its date
by the source's own comparison (the hex of the id's collation weights, padded to the column's
length as a PAD SPACE collation compares: ids equal at the source have one key, ``id_key``), and
the period's summary gives ``id_key_min``. A customer whose period ids all sort after their
history's (order numbers grow with time) cannot repeat one; the others (``id_overlap``) are
recomputed from the source, as is every customer with a sale before the month start whose
``updated_at`` is after the snapshot's watermark, less the look-back (late inserts, re-statused or
corrected sales of old months), and the customers of those sales' other versions. Their full
history is read through the source's ``customer_id`` and ``transaction_id`` indexes (every version
of their ids: a later one may be another customer's), so a nightly run reads the period, the
changed rows and the changed customers' sales, never the whole history. (A source whose ids do not
grow with time, random UUIDs say, makes most customers overlap: the run then computes the summary
in full, and logs why.)

What ``updated_at`` cannot show, no watermark can: a sale deleted from the source outright, moved
to another customer (by a new version dated in the period: the old one's customer is not looked
up), moved from before the month start into the period or later, or added to an
old month without an ``updated_at`` (or any change that does not advance it) leaves the
snapshot's old figure. ``lifetime verify`` compares a snapshot with a full recomputation (EXCEPT
ALL both ways) and ``lifetime rebuild`` replaces the state with one; a source that deletes rows
runs with ``lifetime_mode = "full"`` or schedules the rebuild (docs/operations.md, "Lifetime state").

The first run on an empty state (or for a month start no snapshot covers) builds the snapshot with
one full GROUP BY, streamed like every extract. A run whose period is a whole month stores its
result as the snapshot at the next month start, which the next nightly runs start from.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from psycopg import sql

from include.customer_performance.period import add_months
from include.customer_performance.schemas import CUSTOMER_HISTORY, TRANSACTION_STATUS, TRANSACTIONS, Dataset, _cols

log = logging.getLogger(__name__)

# The incremental state probes the source by these leading index columns; without one of them a
# probe would scan the whole table, and the run computes the summary in full instead.
REQUIRED_INDEXES = ("order_date", "customer_id", "updated_at", "transaction_id")
# The summary as the state keeps it (and the staged customer_history): with the greatest id key.
LIFETIME = Dataset(
    name=CUSTOMER_HISTORY.name,
    source_table=TRANSACTIONS.source_table,
    event_column="last_purchase",
    columns=CUSTOMER_HISTORY.columns + _cols("id_key_max:text"),
)
# The period's summary, with the least id key too.
LIFETIME_DELTA = Dataset(
    name="lifetime_delta",
    source_table=TRANSACTIONS.source_table,
    event_column="last_purchase",
    columns=LIFETIME.columns + _cols("id_key_min:text"),
)
# Both as the source gives them (summary_query): per currency, with the purchase days listed.
LIFETIME_SOURCE = Dataset(
    name="lifetime_source",
    source_table=TRANSACTIONS.source_table,
    event_column="last_purchase",
    columns=CUSTOMER_HISTORY.columns + _cols("sale_days:text", "id_key_max:text"),
)
LIFETIME_DELTA_SOURCE = Dataset(
    name="lifetime_delta_source",
    source_table=TRANSACTIONS.source_table,
    event_column="last_purchase",
    columns=LIFETIME_SOURCE.columns + _cols("id_key_min:text"),
)
CUSTOMER_IDS = Dataset(
    name="lifetime_changed",
    source_table=TRANSACTIONS.source_table,
    event_column="",
    columns=_cols("customer_id:integer"),
)
# Changed customers beyond this share of the snapshot's (and this many) are cheaper to recompute in
# one GROUP BY than one by one through the customer index.
RECOMPUTE_MAX_SHARE = 0.10
RECOMPUTE_MIN = 1000
RECOMPUTE_BATCH = 500
SUMMARY_COLUMNS = LIFETIME.column_names
ID_KEY_MAX_CHARS = 64  # a longer id is weighed by its first 64 characters (more recomputed, never fewer)


@dataclass(frozen=True)
class Snapshot:
    snapshot_id: int
    as_of: date
    watermark: datetime
    customers: int


def summary_query(
    end: date,
    start: date | None = None,
    customers: list[int] | tuple[int, ...] = (),
    key_min: bool = False,
    *,
    key: str,
    part: tuple[int, int] | None = None,
) -> tuple[str, tuple]:
    """The lifetime summary per customer and currency of the sales with ``start <= order_date <
    end`` (``start`` None: all before ``end``), of ``customers`` only when given, as one aggregate in
    the sales database. A sale's amount has the period's definition (``int_transactions_latest``):
    of the versions of a transaction id (its bytes) in the window that the period's gate would let
    through (no amount of 0 or below, a currency, a known status byte for byte; a row without an
    id never), the latest counts (by ``updated_at``, then the tie-breaks ``VERSION_ORDER`` names, as
    the period's DISTINCT ON), a completed one as a purchase and ``+ amount``, a refunded one as
    ``- amount``, a pending or cancelled one not at all. Currencies group by their bytes, as
    PostgreSQL compares them downstream. ``sale_days`` lists the purchase days
    (``TO_DAYS``) so that the all-currency row can be built without the source's ROLLUP
    (``totals_sql``: a latin1 column's ROLLUP row keeps a currency on MariaDB 10.11).
    ``id_key_max`` is the greatest id key (``key``: ``id_key(src)``) of the row's sales;
    ``key_min`` adds ``id_key_min``, the least. ``part`` ``(i, n)``: only the customers whose id
    is ``i`` modulo ``n`` (a negative id's remainder is negative: ``i - n``), one of ``n`` queries
    that together give the whole summary; each ranks the whole window's
    versions (a later version may be another customer's)."""
    from include.customer_performance.extract.sales_db import _select_list, _text_columns

    sale, refund = TRANSACTION_STATUS["sale"], TRANSACTION_STATUS["refund"]
    table = f"`{TRANSACTIONS.source_table}`"
    # the versions the period's gate would let through (quality/suites.py: an id, no amount of 0
    # or below, a currency, a status it knows, compared byte for byte as PostgreSQL does): the
    # latest of these counts
    # (a NULL amount is not quarantined: a sale of no amount, as the period ranks it; a NULL
    # currency is: currency.known. A currency the rates table lacks is quarantined in the period
    # but unknown here: such a version still ranks; its amount counts in no revenue either way)
    statuses = list(TRANSACTION_STATUS.values())
    window = [
        "t.`order_date` < %s",
        "t.`transaction_id` IS NOT NULL",
        "(t.`amount` > 0 OR t.`amount` IS NULL)",
        "t.`currency` IS NOT NULL",
        f"CAST(t.`status` AS BINARY) IN ({', '.join(['%s'] * len(statuses))})",
    ]
    window_params = [end, *statuses]
    if start is not None:
        window.append("t.`order_date` >= %s")
        window_params.append(start)
    where, params = list(window), list(window_params)
    outer, outer_params = [], []
    if customers:
        # every version of these customers' ids, whoever holds the latest
        marks = ", ".join(["%s"] * len(customers))
        inner = " AND ".join(w.replace("t.", "s.") for w in window)
        where.append(
            f"t.`transaction_id` IN (SELECT s.`transaction_id` FROM {table} AS s WHERE {inner}"
            f" AND s.`customer_id` IN ({marks}))"
        )
        params += [*window_params, *(int(c) for c in customers)]
        outer.append(f"v.customer_id IN ({marks})")
        outer_params.extend(int(c) for c in customers)
    if part is not None and part[1] > 1:
        i, n = part
        outer.append("MOD(v.customer_id, %s) IN (%s, %s)")
        outer_params.extend((n, i, i - n))
    keys = ", HEX(MAX(v.k)) AS id_key_max" + (", HEX(MIN(v.k)) AS id_key_min" if key_min else "")
    dataset = LIFETIME_DELTA_SOURCE if key_min else LIFETIME_SOURCE
    query = (
        f"SELECT {_select_list(dataset.column_names, _text_columns(dataset))} FROM ("
        " SELECT v.customer_id AS customer_id, v.cur AS currency,"
        " MIN(CASE WHEN v.sale THEN v.order_date END) AS first_purchase,"
        " MAX(CASE WHEN v.sale THEN v.order_date END) AS last_purchase,"
        " SUM(v.sale) AS purchases,"
        " COUNT(DISTINCT CASE WHEN v.sale THEN DATE(v.order_date) END) AS purchase_days,"
        " SUM(CASE WHEN v.sale THEN v.amount ELSE -v.amount END) AS monetary,"
        " GROUP_CONCAT(DISTINCT CASE WHEN v.sale THEN TO_DAYS(v.order_date) END) AS sale_days"
        f"{keys} FROM ("
        "  SELECT t.`customer_id` AS customer_id, CAST(t.`currency` AS BINARY) AS cur,"
        "  t.`order_date` AS order_date, t.`amount` AS amount, CAST(t.`status` AS BINARY) = %s AS sale,"
        "  CAST(t.`status` AS BINARY) = %s AS refund,"
        f"  {key} AS k, ROW_NUMBER() OVER (PARTITION BY CAST(t.`transaction_id` AS BINARY) ORDER BY {VERSION_ORDER})"
        f"  AS version FROM {table} AS t WHERE {' AND '.join(where)}"
        f" ) AS v WHERE v.version = 1 AND (v.sale OR v.refund){''.join(' AND ' + o for o in outer)}"
        " GROUP BY v.customer_id, v.cur"
        ") AS h"
    )
    return query, (sale, refund, *params, *outer_params)


# The order of a transaction id's versions, latest first, at the source; int_transactions_latest
# orders the period's alike (updated_at DESC NULLS LAST, then amount, status, currency, customer).
VERSION_ORDER = (
    "t.`updated_at` DESC, t.`amount` DESC, CAST(t.`status` AS BINARY) DESC,"
    " CAST(t.`currency` AS BINARY) DESC, t.`customer_id` DESC"
)


def totals_sql(raw: sql.Composable, target: sql.Composable, key_min: bool = False) -> sql.Composed:
    """``raw`` (summary_query's rows, one per customer and currency) into ``target`` with the
    all-currency row of each customer (currency NULL): first and last purchase, purchases and id
    keys over its currencies, the distinct purchase days of their ``sale_days`` together (a day
    bought in two currencies counts once), no amount (amounts add up per currency only)."""
    dataset = LIFETIME_DELTA if key_min else LIFETIME
    cols = sql.SQL(", ").join(map(sql.Identifier, dataset.column_names))
    low = sql.SQL(', min(id_key_min COLLATE "C")') if key_min else sql.SQL("")
    return sql.SQL(
        "INSERT INTO {target} ({cols}) SELECT {cols} FROM {raw}"
        " UNION ALL SELECT customer_id, NULL, min(first_purchase), max(last_purchase), sum(purchases),"
        " CASE WHEN count(*) = 1 THEN max(purchase_days) ELSE (SELECT count(DISTINCT d)"
        "  FROM unnest(string_to_array(string_agg(sale_days, ','), ',')) AS d) END,"
        ' NULL, max(id_key_max COLLATE "C"){low} FROM {raw} GROUP BY customer_id'
    ).format(target=target, cols=cols, raw=raw, low=low)


def check_sale_days(cur, raw: sql.Composable) -> None:
    """Every row's ``sale_days`` lists its purchase days: a list the source cut short (its
    ``group_concat_max_len``) would undercount the all-currency row's days."""
    cur.execute(
        sql.SQL(
            "SELECT count(*) FROM {} WHERE purchase_days <> coalesce(cardinality(string_to_array(sale_days, ',')), 0)"
        ).format(raw)
    )
    (short,) = cur.fetchone()
    if short:
        raise RuntimeError(
            f"the sales database cut {short} customers' list of purchase days short (group_concat_max_len):"
            " raise it for the connection's user"
        )


# -- the source --------------------------------------------------------------------------------


def _one(src, query: str, params: tuple = ()):
    cur = src.cursor()
    try:
        cur.execute(query, params)
        return cur.fetchall()
    finally:
        cur.close()


def source_name(src) -> str:
    """The sales database a snapshot summarises: a snapshot of another source is never used."""
    host, port, db = _one(src, "SELECT @@hostname, @@port, DATABASE()")[0]
    return f"{_text(host)}:{port}/{_text(db)}"


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes | bytearray) else str(value)


def id_key(src) -> str:
    """The SQL of a transaction id's key at ``src``, the bytes the source compares ids by: a
    character id's collation weights with the id padded to its column's length (``AS CHAR(n)``),
    as a PAD SPACE collation compares, so that ids the source holds equal (another case, trailing
    spaces, or any character the collation weighs as a space, like U+00A0 under a Unicode
    collation) have one key. Under a NO PAD collation ids differing only in trailing spaces get one
    key too, which makes more customers recomputed, never fewer. An id of another type: its text."""
    rows = _one(
        src,
        "SELECT data_type, character_maximum_length FROM information_schema.columns"
        " WHERE table_schema = DATABASE() AND table_name = %s AND column_name = 'transaction_id'",
        (TRANSACTIONS.source_table,),
    )
    kind, length = (_text(rows[0][0]).lower(), rows[0][1]) if rows else ("", None)
    if kind in ("char", "varchar", "tinytext", "text", "mediumtext", "longtext") and length:
        return f"WEIGHT_STRING(t.`transaction_id` AS CHAR({min(int(length), ID_KEY_MAX_CHARS)}))"
    return "CAST(CAST(t.`transaction_id` AS CHAR) AS BINARY)"


def missing_indexes(src) -> list[str]:
    """The REQUIRED_INDEXES columns no index of the source table starts with."""
    rows = _one(
        src,
        "SELECT DISTINCT column_name FROM information_schema.statistics"
        " WHERE table_schema = DATABASE() AND table_name = %s AND seq_in_index = 1",
        (TRANSACTIONS.source_table,),
    )
    leading = {_text(r[0]).lower() for r in rows}
    return [c for c in REQUIRED_INDEXES if c not in leading]


def source_watermark(src) -> datetime:
    """The newest ``updated_at`` at the source, read before the run reads anything (an index end
    probe), but never later than the source's clock: one row stamped in the future must not hide
    every change made until then."""
    (row,) = _one(
        src,
        f"SELECT LEAST(COALESCE(MAX(`updated_at`), UTC_TIMESTAMP()), UTC_TIMESTAMP())"
        f" FROM `{TRANSACTIONS.source_table}`",
    )
    return _as_datetime(row[0])


def _as_datetime(value) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(_text(value))


def changed_customers(src, since: datetime, before: date) -> list[int]:
    """Customers with a sale before ``before`` updated at or after ``since``, and the customers of
    the other versions before ``before`` of those sales' ids (a new version may take a sale from
    one customer to another): their snapshot is stale (at, too: a change in the watermark's own
    second may have committed after it was read). The changed rows through the ``updated_at``
    index (the period's own sales are not looked up), their ids through ``transaction_id``."""
    table = f"`{TRANSACTIONS.source_table}`"
    rows = _one(
        src,
        f"SELECT DISTINCT o.`customer_id` FROM (SELECT DISTINCT c.`transaction_id` FROM {table} AS c"
        f" WHERE c.`updated_at` >= %s AND c.`order_date` < %s) AS c"
        f" JOIN {table} AS o ON o.`transaction_id` = c.`transaction_id`"
        " WHERE o.`order_date` < %s AND o.`customer_id` IS NOT NULL",
        (since, before, before),
    )
    return sorted(int(r[0]) for r in rows)


# -- the state ---------------------------------------------------------------------------------


def _state(schema: str, table: str) -> sql.Identifier:
    return sql.Identifier(schema, table)


def find_snapshot(cur, schema: str, source: str, as_of: date) -> Snapshot | None:
    cur.execute(
        sql.SQL("SELECT snapshot_id, as_of, watermark, customers FROM {} WHERE source = %s AND as_of = %s").format(
            _state(schema, "lifetime_snapshots")
        ),
        (source, as_of),
    )
    row = cur.fetchone()
    return Snapshot(*row) if row else None


def _lock(cur, source: str, as_of: date) -> None:
    cur.execute(
        "SELECT pg_advisory_xact_lock(hashtext(%s))", (f"customer_performance:lifetime:{source}:{as_of.isoformat()}",)
    )


def new_partition(cur, schema: str) -> tuple[int, sql.Identifier]:
    """A fresh, empty table shaped like ``customer_lifetime`` for a snapshot id not yet used; its
    rows get the id by default. ``publish_snapshot`` attaches it."""
    registry = _state(schema, "lifetime_snapshots").as_string(cur)
    cur.execute("SELECT nextval(pg_get_serial_sequence(%s, 'snapshot_id'))", (registry,))
    snapshot_id = cur.fetchone()[0]
    part = _state(schema, f"customer_lifetime_{snapshot_id}")
    cur.execute(
        sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING DEFAULTS)").format(part, _state(schema, "customer_lifetime"))
    )
    cur.execute(
        sql.SQL("ALTER TABLE {} ALTER COLUMN snapshot_id SET DEFAULT {}").format(part, sql.Literal(snapshot_id))
    )
    # the partition bound as a constraint: ATTACH need not scan the rows to prove it
    cur.execute(
        sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} CHECK (snapshot_id IS NOT NULL AND snapshot_id = {})").format(
            part, sql.Identifier(f"customer_lifetime_{snapshot_id}_bound"), sql.Literal(snapshot_id)
        )
    )
    return snapshot_id, part


def fill_partition(cur, part: sql.Identifier, source_table: sql.Composable) -> None:
    cols = sql.SQL(", ").join(map(sql.Identifier, SUMMARY_COLUMNS))
    cur.execute(sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {}").format(part, cols, cols, source_table))


def publish_snapshot(
    cur,
    schema: str,
    source: str,
    as_of: date,
    snapshot_id: int,
    part: sql.Identifier,
    watermark: datetime,
    method: str,
    run_id: str | None,
) -> None:
    """Make the filled partition the snapshot of ``(source, as_of)``, replacing the one before, in
    the caller's transaction (under a lock per snapshot: two runs of one month take turns)."""
    _lock(cur, source, as_of)
    drop_snapshots(cur, schema, sql.SQL("source = %s AND as_of = %s"), (source, as_of))
    cur.execute(
        sql.SQL("ALTER TABLE {} ATTACH PARTITION {} FOR VALUES IN ({})").format(
            _state(schema, "customer_lifetime"), part, sql.Literal(snapshot_id)
        )
    )
    cur.execute(
        sql.SQL("SELECT count(*) FILTER (WHERE currency IS NULL), count(*) FROM {}").format(part),
    )
    customers, rows = cur.fetchone()
    cur.execute(
        sql.SQL(
            "INSERT INTO {} (snapshot_id, source, as_of, watermark, method, customers, rows, run_id)"
            " OVERRIDING SYSTEM VALUE VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
        ).format(_state(schema, "lifetime_snapshots")),
        (snapshot_id, source, as_of, watermark, method, customers, rows, run_id),
    )
    cur.execute(sql.SQL("ANALYZE {}").format(part))


def drop_snapshots(cur, schema: str, where: sql.Composable, params: tuple) -> int:
    """Drop the snapshots matching ``where`` (on lifetime_snapshots) with their partitions."""
    cur.execute(
        sql.SQL("DELETE FROM {} WHERE {} RETURNING snapshot_id").format(_state(schema, "lifetime_snapshots"), where),
        params,
    )
    ids = [r[0] for r in cur.fetchall()]
    for snapshot_id in ids:
        cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(_state(schema, f"customer_lifetime_{snapshot_id}")))
    return len(ids)


def prune(cur, schema: str, keep: int) -> int:
    """Keep the ``keep`` snapshots built last (a backfill's too; of any source: a source renamed by
    a failover leaves its old snapshots to age out), drop the rest, and any partition a build left
    unregistered (it failed between filling and publishing, or a migration emptied the registry).
    Under the state lock: no build is in flight."""
    where = sql.SQL(
        "snapshot_id NOT IN (SELECT snapshot_id FROM {} ORDER BY built_at DESC, snapshot_id DESC LIMIT %s)"
    ).format(_state(schema, "lifetime_snapshots"))
    dropped = drop_snapshots(cur, schema, where, (keep,))
    cur.execute(
        sql.SQL(
            "SELECT c.relname FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace"
            " WHERE n.nspname = %s AND c.relkind = 'r'"
            " AND c.relname ~ '^(src_)?customer_lifetime_[0-9]+$'"
            " AND substring(c.relname FROM '[0-9]+$')::bigint NOT IN (SELECT snapshot_id FROM {})"
        ).format(_state(schema, "lifetime_snapshots")),
        (schema,),
    )
    for (name,) in cur.fetchall():
        cur.execute(sql.SQL("DROP TABLE {}").format(_state(schema, name)))
    # and the comparison table of a `lifetime verify` that died (a live one holds the state lock)
    cur.execute(
        "SELECT c.relname FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %s AND c.relkind = 'r' AND c.relname ~ '^(src_)?lifetime_verify_[0-9a-f]+$'",
        (schema,),
    )
    for (name,) in cur.fetchall():
        cur.execute(sql.SQL("DROP TABLE {}").format(_state(schema, name)))
    return dropped


@contextlib.contextmanager
def state_lock(dst, schema: str):
    """The lifetime state of ``schema``, one run (or command) at a time, held across ``dst``'s
    commits (db.held_lock: a transaction of its own holds it), so that no snapshot is replaced or
    pruned while another run reads it and two runs needing the same missing snapshot build it once."""
    from include.customer_performance.db import held_lock

    dst.commit()
    try:
        with held_lock(dst, f"customer_performance:lifetime:{schema}", f"lifetime state of {schema}"):
            yield
    finally:
        dst.rollback()


def merge_sql(
    target: sql.Composable,
    snapshot: sql.Composable,
    delta: sql.Composable,
    changed: sql.Composable,
    recomputed: sql.Composable,
    part: tuple[int, int] | None = None,
) -> sql.Composed:
    """snapshot + delta for the customers not changed, the recomputed rows for those changed. The
    join key keeps the all-currency row (currency NULL) apart from a '' currency. ``part``
    ``(i, n)``: only the customers whose id is ``i`` modulo ``n`` (as in summary_query)."""
    cols = sql.SQL(", ").join(map(sql.Identifier, SUMMARY_COLUMNS))
    if part is not None and part[1] > 1:
        i, n = part
        of_part = sql.SQL(" AND mod(x.customer_id, {}) IN ({}, {})").format(
            sql.Literal(n), sql.Literal(i), sql.Literal(i - n)
        )
    else:
        of_part = sql.SQL("")
    return sql.SQL(
        "INSERT INTO {target} ({cols})"
        " SELECT coalesce(s.customer_id, d.customer_id), coalesce(s.currency, d.currency),"
        " least(s.first_purchase, d.first_purchase), greatest(s.last_purchase, d.last_purchase),"
        " coalesce(s.purchases, 0) + coalesce(d.purchases, 0),"
        " coalesce(s.purchase_days, 0) + coalesce(d.purchase_days, 0),"
        " CASE WHEN s.monetary IS NULL AND d.monetary IS NULL THEN NULL"
        " ELSE coalesce(s.monetary, 0) + coalesce(d.monetary, 0) END,"
        ' greatest(s.id_key_max COLLATE "C", d.id_key_max COLLATE "C")'
        " FROM (SELECT x.*, x.currency IS NULL AS total, coalesce(x.currency, '') AS cur FROM {snapshot} AS x"
        "       WHERE NOT EXISTS (SELECT FROM {changed} AS c WHERE c.customer_id = x.customer_id){part}) AS s"
        " FULL JOIN (SELECT x.*, x.currency IS NULL AS total, coalesce(x.currency, '') AS cur FROM {delta} AS x"
        "       WHERE NOT EXISTS (SELECT FROM {changed} AS c WHERE c.customer_id = x.customer_id){part}) AS d"
        "   ON d.customer_id = s.customer_id AND d.total = s.total AND d.cur = s.cur"
        " UNION ALL SELECT {cols} FROM {recomputed} AS x WHERE true{part}"
    ).format(
        target=target,
        cols=cols,
        snapshot=snapshot,
        delta=delta,
        changed=changed,
        recomputed=recomputed,
        part=of_part,
    )


def overlap_sql(delta: sql.Composable, snapshot: sql.Composable) -> sql.Composed:
    """The customers whose least period id key is not after their history's greatest: one of
    their period sales may repeat an id sold to them before (the others' cannot). A history with
    purchases but no key (a snapshot written by a build without keys) counts as overlapping."""
    return sql.SQL(
        "SELECT d.customer_id FROM {delta} AS d JOIN {snapshot} AS s"
        " ON s.customer_id = d.customer_id AND s.currency IS NULL"
        ' WHERE d.currency IS NULL AND (d.id_key_min COLLATE "C" <= s.id_key_max COLLATE "C"'
        " OR (s.id_key_max IS NULL AND s.purchases > 0))"
    ).format(delta=delta, snapshot=snapshot)


# -- a run -------------------------------------------------------------------------------------


def stream_summary(
    pairs: list[tuple],
    target: sql.Identifier,
    dataset: Dataset,
    chunk: int,
    end: date,
    start: date | None = None,
    *,
    key: str,
    customers: list[int] | tuple[int, ...] = (),
) -> int:
    """The summary of ``summary_query(end, start, customers)`` (with ``id_key_min`` when
    ``dataset`` is LIFETIME_DELTA) appended to ``target`` (a table shaped like ``dataset``,
    committed) with the all-currency rows (``totals_sql``), and analysed: one query per (source,
    analytics) connection pair of ``pairs``, side by side, each over a class of customer ids modulo
    their number (``part``), into a table of the source's rows beside ``target`` (``src_<name>``,
    dropped after). The source runs each query on a core of its own: worth it only for a source
    with cores and buffer pool to spare (on this machine two were slower than one: docs/
    performance.md; ``lifetime_source_queries``). Commits each pair's analytics connection.
    Returns the rows added."""
    from include.customer_performance.extract.sales_db import stream
    from include.customer_performance.staging import analyze, recreate_table

    key_min = dataset is LIFETIME_DELTA
    raw, shape = source_table(target), LIFETIME_DELTA_SOURCE if key_min else LIFETIME_SOURCE
    n = len(pairs)
    dst = pairs[0][1]
    with dst.cursor() as cur:
        recreate_table(cur, raw, shape)
    dst.commit()

    def one(i: int) -> int:
        src, conn = pairs[i]
        query, params = summary_query(end, start, customers, key_min=key_min, key=key, part=(i, n) if n > 1 else None)
        return stream(src, query, params, conn, raw, shape, chunk, replace=False, analyse=False)

    try:
        _side_by_side(pairs, one, raw)
        with dst.cursor() as cur:
            check_sale_days(cur, raw)
            cur.execute(totals_sql(raw, target, key_min))
            rows = cur.rowcount
            analyze(cur, target)
        dst.commit()
    finally:
        dst.rollback()
        with dst.cursor() as cur:
            cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(raw))
        dst.commit()
    return rows


def source_table(target: sql.Identifier) -> sql.Identifier:
    """Where the source's rows for ``target`` land before ``totals_sql``: ``src_<name>`` beside it
    (a staged table's name keeps its run key at the end, so the staging retention drops a
    leftover; ``prune`` drops the state's)."""
    *schema, name = target._obj  # psycopg's Identifier keeps its parts here (no public accessor)
    return sql.Identifier(*schema, f"src_{name}")


def _side_by_side(pairs: list[tuple], one, target: sql.Composable) -> int:
    """``one(i)`` for each connection pair, the first here and the others on threads, then
    ``target`` analysed on the first pair's analytics connection; the rows summed."""
    from include.customer_performance.staging import analyze

    with ThreadPoolExecutor(max_workers=max(len(pairs) - 1, 1), thread_name_prefix="lifetime-part") as pool:
        others = [pool.submit(one, i) for i in range(1, len(pairs))]
        rows = one(0) + sum(f.result() for f in others)
    dst = pairs[0][1]
    with dst.cursor() as cur:
        analyze(cur, target)
    dst.commit()
    return rows


def merge(pairs: list[tuple], target, snapshot, delta, changed, recomputed) -> int:
    """merge_sql into ``target`` (empty, committed), a class of customer ids per connection pair's
    analytics connection, side by side; analysed. Commits them. Returns the rows."""
    n = len(pairs)

    def one(i: int) -> int:
        dst = pairs[i][1]
        with dst.cursor() as cur:
            cur.execute(merge_sql(target, snapshot, delta, changed, recomputed, part=(i, n)))
            rows = cur.rowcount
        dst.commit()
        return rows

    return _side_by_side(pairs, one, target)


def build_snapshot(
    pairs: list[tuple],
    schema: str,
    source: str,
    as_of: date,
    watermark: datetime,
    run_id: str | None,
    chunk: int,
    key: str,
):
    """The snapshot at ``as_of`` by one full GROUP BY (one per connection pair, side by side:
    stream_summary), streamed into a new partition; committed."""
    dst = pairs[0][1]
    with dst.cursor() as cur:
        snapshot_id, part = new_partition(cur, schema)
    dst.commit()  # the other pairs' connections fill it too
    stream_summary(pairs, part, LIFETIME, chunk, as_of, key=key)
    with dst.cursor() as cur:
        publish_snapshot(cur, schema, source, as_of, snapshot_id, part, watermark, "full", run_id)
        snapshot = find_snapshot(cur, schema, source, as_of)
    dst.commit()
    log.info("lifetime state: built the snapshot of %s at %s in full (watermark %s)", source, as_of, watermark)
    return snapshot


def inexact(src) -> str:
    """Why the source cannot be summarised incrementally, or '': an index a probe needs is missing
    (the probe would scan the table), or ``amount`` is a floating-point type (sums of monthly
    partial sums differ from one sum in the last bits)."""
    missing = missing_indexes(src)
    if missing:
        return f"no index of {TRANSACTIONS.source_table} starts with {', '.join(missing)}"
    rows = _one(
        src,
        "SELECT data_type FROM information_schema.columns"
        " WHERE table_schema = DATABASE() AND table_name = %s AND column_name = 'amount'",
        (TRANSACTIONS.source_table,),
    )
    kind = _text(rows[0][0]).lower() if rows else ""
    if kind in ("float", "double", "real"):
        return f"{TRANSACTIONS.source_table}.amount is {kind}, whose sums are not exact"
    return ""


def stage(src, dst, run, settings, helpers: list[tuple] = ()) -> dict:
    """Stage ``customer_history`` (the lifetime summary to the period end) for ``run``, from the
    state where it can (module docstring), and store it as the next month's snapshot when the
    period is a whole month. ``helpers``: more (source, analytics) connection pairs, each running
    a part of the source's GROUP BY beside ``src``'s (stream_summary). Commits ``dst``. Returns
    what it did, for the task's log and XCom."""
    from include.customer_performance.migrations import migrate

    schema = settings.analytics_schema
    with state_lock(dst, schema):
        with dst.cursor() as cur:  # the state's tables, under its lock (a migration may empty it)
            migrate(cur, schema)
        dst.commit()
        info = _stage([(src, dst), *helpers], run, settings)
    log.info("lifetime state: %s", info)
    return info


def _stage(pairs: list[tuple], run, settings) -> dict:
    from include.customer_performance.staging import analyze, recreate_table

    src, dst = pairs[0]
    schema, chunk = settings.analytics_schema, settings.copy_chunk_rows
    target = run.table(CUSTOMER_HISTORY.name)
    end, as_of = run.period.end, run.period.month_start
    source = source_name(src)
    watermark = source_watermark(src)  # before anything is read: a later change is looked at again
    key = id_key(src)
    info: dict = {"source": source, "method": settings.lifetime_mode, "as_of": as_of.isoformat()}
    why = inexact(src) if settings.lifetime_mode == "incremental" else ""
    if why:
        info.update(method="full", why=why)
        log.warning(
            "lifetime state: %s, so the lifetime summary is computed in full, reading every sale before the"
            " period end (docs/operations.md, 'Lifetime state': the source needs an index starting with each of %s)",
            why,
            ", ".join(REQUIRED_INDEXES),
        )
    if info["method"] == "incremental":
        with dst.cursor() as cur:
            snapshot = find_snapshot(cur, schema, source, as_of)
        dst.commit()
        if snapshot is None:
            snapshot = build_snapshot(pairs, schema, source, as_of, watermark, run.run_id, chunk, key)
            info["bootstrapped"] = True
        known = snapshot.customers
        limit = max(RECOMPUTE_MIN, RECOMPUTE_MAX_SHARE * known)
        changed = set(
            changed_customers(src, snapshot.watermark - timedelta(hours=settings.lifetime_lookback_hours), as_of)
        )
        info.update(snapshot_id=snapshot.snapshot_id, changed=len(changed))
        overlap: set[int] = set()
        delta = run.table(LIFETIME_DELTA.name)
        part = _state(schema, f"customer_lifetime_{snapshot.snapshot_id}")
        if len(changed) <= limit:  # else the period's summary is not needed: the run goes full
            with dst.cursor() as cur:
                recreate_table(cur, delta, LIFETIME_DELTA)
            dst.commit()
            info["period_rows"] = stream_summary(pairs, delta, LIFETIME_DELTA, chunk, end, as_of, key=key)
            with dst.cursor() as cur:
                cur.execute(overlap_sql(delta, part))
                overlap = {r[0] for r in cur.fetchall()}
            info["id_overlap"] = len(overlap)
        dirty = sorted(changed | overlap)
        if len(dirty) > limit:
            info.update(method="full", why=f"{len(dirty)} of {known} customers changed since the snapshot")
            log.info("lifetime state: %s: computing the summary in full", info["why"])
        else:
            ids, recomputed = run.table(CUSTOMER_IDS.name), run.table("lifetime_recomputed")
            with dst.cursor() as cur:
                recreate_table(cur, ids, CUSTOMER_IDS)
                with cur.copy(sql.SQL("COPY {} (customer_id) FROM STDIN").format(ids)) as copy:
                    for c in dirty:
                        copy.write_row((c,))
                recreate_table(cur, recomputed, LIFETIME)
            dst.commit()
            for i in range(0, len(dirty), RECOMPUTE_BATCH):
                batch = dirty[i : i + RECOMPUTE_BATCH]
                stream_summary([(src, dst)], recomputed, LIFETIME, chunk, end, key=key, customers=batch)
            with dst.cursor() as cur:
                analyze(cur, ids)
                recreate_table(cur, target, LIFETIME)
            dst.commit()
            info["rows"] = merge(pairs, target, part, delta, ids, recomputed)
    if info["method"] == "full":
        with dst.cursor() as cur:
            recreate_table(cur, target, LIFETIME)
        dst.commit()
        info["rows"] = stream_summary(pairs, target, LIFETIME, chunk, end, key=key)
    if run.period.is_complete_month and run.period.start == as_of:
        # the whole month: its summary is the snapshot the next month's runs start from
        nxt = add_months(as_of, 1)
        with dst.cursor() as cur:
            snapshot_id, part = new_partition(cur, schema)
            fill_partition(cur, part, target)
            publish_snapshot(cur, schema, source, nxt, snapshot_id, part, watermark, info["method"], run.run_id)
            prune(cur, schema, settings.lifetime_snapshots_kept)
        dst.commit()
        info["stored_as_of"] = nxt.isoformat()
    return info


# -- operations (``python -m include.customer_performance lifetime ...``) ---------------------


def snapshots(cur, schema: str) -> list[dict]:
    cur.execute(
        sql.SQL(
            "SELECT snapshot_id, source, as_of, watermark, method, customers, rows, built_at, run_id FROM {}"
            " ORDER BY source, as_of"
        ).format(_state(schema, "lifetime_snapshots"))
    )
    names = [d.name for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def verify(src, dst, schema: str, as_of: date | None = None, lookback_hours: float = 24.0) -> dict:
    """Compare the snapshot of this source at ``as_of`` (default: its newest) with a full
    recomputation, EXCEPT ALL both ways: ``missing`` rows the snapshot lacks, ``extra`` rows it
    has that the source no longer gives. The customers changed since its watermark (``changed``:
    the next run recomputes them, as it should) are left out of both sides."""
    source = source_name(src)
    with state_lock(dst, schema), dst.cursor() as cur:
        if as_of is None:
            cur.execute(
                sql.SQL("SELECT max(as_of) FROM {} WHERE source = %s").format(_state(schema, "lifetime_snapshots")),
                (source,),
            )
            as_of = cur.fetchone()[0]
        snapshot = find_snapshot(cur, schema, source, as_of) if as_of else None
        if snapshot is None:
            raise LookupError(f"no lifetime snapshot of {source} in {schema}" + (f" at {as_of}" if as_of else ""))
        changed = changed_customers(src, snapshot.watermark - timedelta(hours=lookback_hours), as_of)
        cols = sql.SQL(", ").join(map(sql.Identifier, SUMMARY_COLUMNS))
        part = _state(schema, f"customer_lifetime_{snapshot.snapshot_id}")
        # a table of the state's schema, not a TEMP one: the stream commits, and behind a
        # transaction-pooling PgBouncer the next transaction may be another server session's
        full = _state(schema, f"lifetime_verify_{uuid.uuid4().hex[:12]}")
        cur.execute(sql.SQL("CREATE UNLOGGED TABLE {} AS SELECT {} FROM {} WITH NO DATA").format(full, cols, part))
        dst.commit()
        try:
            stream_summary([(src, dst)], full, LIFETIME, 50_000, as_of, key=id_key(src))
            out = {"source": source, "as_of": as_of.isoformat(), "snapshot_id": snapshot.snapshot_id}
            out["changed"] = len(changed)
            for key, a, b in (("missing", full, part), ("extra", part, full)):
                cur.execute(
                    sql.SQL(
                        "SELECT count(*) FROM (SELECT {c} FROM {a} EXCEPT ALL SELECT {c} FROM {b}) AS d"
                        " WHERE NOT (d.customer_id = ANY(%s))"
                    ).format(c=cols, a=a, b=b),
                    (changed,),
                )
                out[key] = cur.fetchone()[0]
        finally:
            dst.rollback()
            cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(full))
            dst.commit()
    return out


def rebuild(src, dst, schema: str, as_of: date, run_id: str | None = None, helpers: list[tuple] = ()) -> Snapshot:
    """Build the snapshot of this source at ``as_of`` in full (``helpers``: as in ``stage``), then
    drop its other snapshots."""
    from include.customer_performance.migrations import migrate

    source = source_name(src)
    with state_lock(dst, schema):
        with dst.cursor() as cur:
            migrate(cur, schema)
        dst.commit()
        watermark = source_watermark(src)
        snapshot = build_snapshot([(src, dst), *helpers], schema, source, as_of, watermark, run_id, 50_000, id_key(src))
        with dst.cursor() as cur:
            where = sql.SQL("source = %s AND snapshot_id <> %s")
            dropped = drop_snapshots(cur, schema, where, (source, snapshot.snapshot_id))
        dst.commit()
    log.info("lifetime state: rebuilt %s at %s; dropped its %s other snapshot(s)", source, as_of, dropped)
    return snapshot
