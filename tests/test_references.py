"""The performance tricks against their plain versions (docs/performance.md): each fast model's
output equals, EXCEPT ALL both ways, what the plain SQL it replaces gives on the July run of the
session."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import sql

from dev.stack import pg_dsn
from include.customer_performance import scorecard
from include.customer_performance.config import settings
from include.customer_performance.schemas import TRANSACTIONS, value_params
from include.customer_performance.sql import _text, model, placeholders
from include.customer_performance.staging import Run, make_run
from include.customer_performance.transform.calculate import previous_health
from tests.conftest import LOGICAL_DATE


@pytest.fixture(scope="module")
def run(july_run) -> Run:
    return make_run(LOGICAL_DATE, july_run["run_id"], None, settings().staging_schema)


def differences(cur, fast: sql.Composable, plain: sql.Composable, params=None) -> tuple[int, int, int]:
    """(rows, rows only in fast, rows only in plain): EXCEPT ALL both ways."""
    counts = []
    for a, b in ((fast, plain), (plain, fast)):
        cur.execute(sql.SQL("SELECT count(*) FROM (({}) EXCEPT ALL ({})) AS d").format(a, b), params)
        counts.append(cur.fetchone()[0])
    cur.execute(sql.SQL("SELECT count(*) FROM ({}) AS f").format(fast), params)
    return cur.fetchone()[0], *counts


def test_latest_versions_equal_a_plain_distinct_on(stack, run):
    """int_transactions_latest takes out only the repeated ids, ranks them and puts the latest back;
    the plain version sorts every row with DISTINCT ON."""
    cols = [*TRANSACTIONS.column_names, "fx_rate", "amount_reporting", "discount_reporting", "tax_reporting"]
    cols += ["revenue_amount", "is_sale", "is_refund"]  # version_conflict aside: the plain version has none
    listed = sql.SQL(", ").join(map(sql.Identifier, cols))
    converted = model("int_transactions", run)
    plain = sql.SQL(
        "SELECT {cols} FROM (SELECT DISTINCT ON (transaction_id) * FROM ({converted}) AS c"
        " ORDER BY transaction_id, updated_at DESC NULLS LAST) AS l WHERE quarantine_reason IS NULL"
    ).format(cols=listed, converted=converted)
    fast = sql.SQL("SELECT {} FROM {}").format(listed, run.table("int_transactions"))
    with psycopg.connect(pg_dsn(stack.analytics_db), options="-c TimeZone=UTC") as conn, conn.cursor() as cur:
        rows, only_fast, only_plain = differences(cur, fast, plain, value_params())
        cur.execute(sql.SQL("SELECT count(*) FROM {}").format(run.table("repeated_transaction_ids")))
        repeated = cur.fetchone()[0]
    assert rows > 0 and repeated > 0  # the fixture has ids in several versions: the trick is exercised
    assert (only_fast, only_plain) == (0, 0)


def test_flags_of_calculate_equal_the_gates_own_pass(stack, run):
    """calculate flags the transactions in the pass that converts them (flag_and_convert) and the
    gate judges those flags: they equal the gate's own flagging pass over the staged rows, and
    int_transactions equals the plain DISTINCT ON over the conversion of vld_transactions. The
    flag pass runs here, in a transaction rolled back after (an earlier test's rerun of the gate
    replaces calculate's flags with the gate's own)."""
    from include.customer_performance.quality.flagging import suite_checks, with_failed_rules
    from include.customer_performance.quality.suites import TRANSACTIONS as SUITE
    from include.customer_performance.transform.calculate import convert_transactions

    cols = [*TRANSACTIONS.column_names, "fx_rate", "amount_reporting", "discount_reporting", "tax_reporting"]
    cols += ["revenue_amount", "is_sale", "is_refund"]
    listed = sql.SQL(", ").join(map(sql.Identifier, cols))
    with psycopg.connect(pg_dsn(stack.analytics_db), options="-c TimeZone=UTC") as conn, conn.cursor() as cur:
        checks = tuple(c for c in suite_checks(SUITE, run, cur) if c.bad_rows)
        plain_flags = sql.SQL("SELECT * FROM {} AS f WHERE failed_rules IS NOT NULL").format(
            with_failed_rules(cur, run, SUITE, checks)
        )
        plain_converted = sql.SQL(
            "SELECT {cols} FROM (SELECT DISTINCT ON (transaction_id) * FROM ({converted}) AS c"
            " ORDER BY transaction_id, updated_at DESC NULLS LAST) AS l WHERE quarantine_reason IS NULL"
        ).format(cols=listed, converted=model("int_transactions", run))
        try:
            convert_transactions(cur, run, "USD", source="vld", flag=True)
            fast_flags = sql.SQL("SELECT * FROM {}").format(run.table("dq_flagged_transactions"))
            flagged = differences(cur, fast_flags, plain_flags)
            converted = differences(
                cur,
                sql.SQL("SELECT {} FROM {}").format(listed, run.table("int_transactions")),
                plain_converted,
                value_params(),
            )
            cur.execute(
                sql.SQL("SELECT count(*) FROM {} WHERE failed_rules && %s::text[]").format(
                    run.table("dq_flagged_transactions")
                ),
                ([c.rule for c in checks if c.severity == "warning"],),
            )
            warned = cur.fetchone()[0]
        finally:
            conn.rollback()
    assert warned > 0  # rows the warning rules take out of int_transactions
    assert flagged[0] > warned and flagged[1:] == (0, 0)
    assert converted[0] > 0 and converted[1:] == (0, 0)


def test_sales_split_by_parity_equal_one_pass(stack, run):
    """int_customer_sales is filled by two connections, half the customers each (by id parity)."""
    plain = model("int_customer_sales", run)  # over all of int_transactions, in one statement
    fast = sql.SQL("SELECT * FROM {}").format(run.table("int_customer_sales"))
    with psycopg.connect(pg_dsn(stack.analytics_db), options="-c TimeZone=UTC") as conn, conn.cursor() as cur:
        rows, only_fast, only_plain = differences(cur, fast, plain)
    assert rows > 500 and (only_fast, only_plain) == (0, 0)  # the month's buyers, both parities


def test_customer_metrics_fences_change_no_value(stack, run):
    """customer_metrics fences two CTEs with OFFSET 0 so their scores are computed once per row;
    without the fences PostgreSQL inlines them. A fence changes the plan, never a row: this pins
    that the fenced model and its plain text agree, and that the fences are where the docs say."""
    text = _text("customer_metrics")
    fences = text.count("OFFSET 0  -- noqa: AM09")
    assert fences == 2
    plain_text = text.replace("OFFSET 0  -- noqa: AM09", "")
    with psycopg.connect(pg_dsn(stack.analytics_db), options="-c TimeZone=UTC") as conn, conn.cursor() as cur:
        tables = {p: run.table(p) for p in placeholders("customer_metrics") - {"previous"}}
        tables["previous"] = previous_health(cur, run, settings().analytics_schema)
        params = {**scorecard.current().sql_params(), **run.period.as_params()}
        fast = sql.SQL("SELECT * FROM {}").format(run.table("customer_metrics"))
        plain = sql.SQL(plain_text).format(**tables)
        rows, only_fast, only_plain = differences(cur, fast, plain, params)
    assert rows > 1000 and (only_fast, only_plain) == (0, 0)


def test_active_customers_by_bitmask_equal_a_plain_distinct_count(stack, run):
    """performance_trends counts the active customers of each day and week from one bitmask per
    customer of its buying days; the plain version counts distinct buyers per bucket."""
    plain = sql.SQL(
        "WITH days AS ("
        "  SELECT d::date AS day FROM generate_series(%(period_start)s::timestamp,"
        "   %(period_end)s::timestamp - interval '1 day', '1 day') AS d"
        "), buckets AS ("
        "  SELECT day, 'day' AS grain, day AS bucket_start FROM days"
        "  UNION ALL SELECT day, 'week', day - (extract(isodow FROM day)::int - 1) FROM days"
        "), buyers AS ("
        "  SELECT b.grain, b.bucket_start, m.region, t.customer_id FROM {int_transactions} AS t"
        "  JOIN {customer_metrics} AS m USING (customer_id)"
        "  JOIN buckets AS b ON b.day = (t.order_date AT TIME ZONE 'UTC')::date WHERE t.is_sale"
        ")"
        " SELECT grain, bucket_start, 'all' AS scope, NULL::text AS region, count(DISTINCT customer_id)"
        " FROM buyers GROUP BY 1, 2"
        " UNION ALL"
        " SELECT grain, bucket_start, 'region', region, count(DISTINCT customer_id) FROM buyers GROUP BY 1, 2, 4"
    ).format(int_transactions=run.table("int_transactions"), customer_metrics=run.table("customer_metrics"))
    fast = sql.SQL(
        "SELECT grain, bucket_start, scope, region, active_customers FROM {} WHERE active_customers > 0"
    ).format(run.table("performance_trends"))
    with psycopg.connect(pg_dsn(stack.analytics_db), options="-c TimeZone=UTC") as conn, conn.cursor() as cur:
        rows, only_fast, only_plain = differences(cur, fast, plain, run.period.as_params())
    assert rows > 30 and (only_fast, only_plain) == (0, 0)


@pytest.mark.parametrize(
    ("rule", "plain"),
    [
        (
            "transactions.probable_duplicate",
            "(customer_id, amount, currency, order_date) IN (SELECT customer_id, amount, currency, order_date"
            " FROM {flt} GROUP BY 1, 2, 3, 4 HAVING count(DISTINCT transaction_id) > 1)",
        ),
        (
            "transactions.transaction_id.unique",
            "transaction_id IN (SELECT transaction_id FROM {flt} GROUP BY 1 HAVING count(*) > 1)",
        ),
    ],
)
def test_byte_order_aggregates_flag_what_a_plain_group_by_flags(stack, run, rule, plain):
    """Two of the gate's row rules group 10M ids in byte order (COLLATE "C", a sort) rather than
    by the database's collation (a hash aggregate that spills); the plain GROUP BY flags the same
    rows."""
    flt = run.table("flt_transactions")
    fast = sql.SQL("SELECT transaction_id FROM {} WHERE failed_rules @> ARRAY[%(rule)s]").format(
        run.table("dq_flagged_transactions")
    )
    reference = sql.SQL("SELECT transaction_id FROM {} WHERE " + plain).format(flt, flt=flt)
    with psycopg.connect(pg_dsn(stack.analytics_db), options="-c TimeZone=UTC") as conn, conn.cursor() as cur:
        rows, only_fast, only_plain = differences(cur, fast, reference, {"rule": rule})
    assert rows > 10 and (only_fast, only_plain) == (0, 0)  # the month has them planted


def test_top_shares_from_the_cut_off_equal_ranking_every_customer(stack, run):
    """customer_metrics finds the Pareto and VIP sets from the customer at each share's rank (a sort
    bounded to that many rows); the plain version ranks every customer."""
    card = scorecard.current()
    plain = sql.SQL(
        "SELECT customer_id, revenue > 0 AND row_number() OVER (ORDER BY revenue DESC, customer_id)"
        "   <= greatest(ceil(%(pareto)s * count(*) FILTER (WHERE revenue > 0) OVER ()), 1) AS is_top_20pct,"
        " revenue > 0 AND row_number() OVER (ORDER BY revenue DESC, customer_id)"
        "   <= greatest(ceil(%(vip)s * count(*) OVER ()), 1) AS is_vip"
        " FROM {}"
    ).format(run.table("customer_metrics"))
    fast = sql.SQL(
        "SELECT customer_id, is_top_20pct, segment = 'VIP' FROM {} WHERE segment NOT IN ('new', 'at-risk')"
    ).format(run.table("customer_metrics"))
    reference = sql.SQL(
        "SELECT p.customer_id, p.is_top_20pct, p.is_vip FROM ({}) AS p JOIN {} AS m USING (customer_id)"
        " WHERE m.segment NOT IN ('new', 'at-risk')"
    ).format(plain, run.table("customer_metrics"))
    params = {"pareto": card.get("pareto.top_share"), "vip": card.get("segments.vip_share")}
    with psycopg.connect(pg_dsn(stack.analytics_db), options="-c TimeZone=UTC") as conn, conn.cursor() as cur:
        rows, only_fast, only_plain = differences(cur, fast, reference, params)
        cur.execute(
            sql.SQL(
                "SELECT count(*) FILTER (WHERE is_top_20pct), count(*) FILTER (WHERE segment = 'VIP') FROM {}"
            ).format(run.table("customer_metrics"))
        )
        top, vip = cur.fetchone()
    assert rows > 500 and top > 10 and vip > 10 and (only_fast, only_plain) == (0, 0)


# regional_summary's category part before the transactions were read once (session 12): the
# customers per category from one pass, the transactions and revenue from a second one joined to
# the customers, the two added up
REGIONAL_CATEGORIES_BEFORE = """WITH categories AS (
    SELECT customer_id, product_category, bool_or(is_sale) AS active
    FROM {int_transactions}
    GROUP BY customer_id, product_category
),
category_customers AS (
    SELECT m.region, m.segment, c.product_category, count(*) AS customers,
           count(*) FILTER (WHERE c.active) AS active_customers
    FROM {customer_metrics} AS m
    LEFT JOIN categories AS c USING (customer_id)
    GROUP BY 1, 2, 3
),
category_sales AS (
    SELECT m.region, m.segment, t.product_category,
           count(*) FILTER (WHERE t.is_sale) AS transactions,
           coalesce(sum(t.revenue_amount), 0) AS revenue
    FROM {int_transactions} AS t
    JOIN {customer_metrics} AS m USING (customer_id)
    GROUP BY 1, 2, 3
),
by_category AS (
    SELECT region, segment, product_category, customers, active_customers, 0 AS transactions, 0 AS revenue
    FROM category_customers
    UNION ALL
    SELECT region, segment, product_category, 0, 0, transactions, revenue
    FROM category_sales
)
"""


def test_regional_categories_in_one_pass_equal_two(stack, run):
    """regional_summary sums the transactions once per customer and category and joins those sums
    to the customers; before, it counted the customers per category in one pass and summed the
    transactions joined to the customers in another. The rows agree as text too (a revenue of 0
    and one of 0.00 would publish differently)."""
    text = _text("regional_summary")
    from include.customer_performance import market

    body = text[text.index("\ngeography AS (") + 1 :]  # the model after its category CTEs
    tables = {
        "int_transactions": run.table("int_transactions"),
        "customer_metrics": run.table("customer_metrics"),
        "market_size": market.relation({}),
    }
    plain = sql.SQL("SELECT r::text FROM (" + REGIONAL_CATEGORIES_BEFORE.rstrip() + ",\n" + body + ") AS r").format(
        **tables
    )
    fast = sql.SQL("SELECT r::text FROM {} AS r").format(run.table("regional_summary"))
    with psycopg.connect(pg_dsn(stack.analytics_db), options="-c TimeZone=UTC") as conn, conn.cursor() as cur:
        rows, only_fast, only_plain = differences(cur, fast, plain)
        cur.execute(
            sql.SQL("SELECT count(*) FROM {} WHERE product_category IS NOT NULL").format(run.table("regional_summary"))
        )
        categories = cur.fetchone()[0]
    assert rows > 50 and categories > 10 and (only_fast, only_plain) == (0, 0)


@pytest.mark.parametrize(
    ("key", "plain"),
    [
        (
            "repeated_transaction_ids",
            'SELECT transaction_id COLLATE "C" FROM {t} GROUP BY 1 HAVING count(*) > 1',
        ),
        (
            "probable_duplicate_keys",
            'SELECT customer_id, amount, currency COLLATE "C", order_date FROM {t} GROUP BY 1, 2, 3, 4'
            ' HAVING count(DISTINCT transaction_id COLLATE "C") > 1',
        ),
    ],
)
def test_key_tables_by_hash_equal_a_plain_group_by_on_hostile_rows(stack, run, key, plain):
    """The key tables find candidates by 64-bit hash, then group the candidates by the key itself:
    on rows with missing ids and keys, amounts equal as numbers but not as text (1.5, 1.50), case
    and trailing-space variants of an id, they give what the plain GROUP BY gives."""
    rows = [
        ("T1", 1, "2025-07-01 10:00", "1.5", "USD"),
        ("T2", 1, "2025-07-01 10:00", "1.50", "USD"),  # a probable duplicate of T1: 1.5 = 1.50
        ("T1", 1, "2025-07-01 11:00", "1.5", "USD"),  # T1 again
        ("t1", 2, "2025-07-02 10:00", "2", "usd"),  # other bytes: not T1
        ("T1 ", 2, "2025-07-02 10:00", "2", "USD"),
        (None, 3, "2025-07-03 10:00", "3", None),
        (None, 3, "2025-07-03 10:00", "3", None),  # missing ids group together, as GROUP BY does
        ("T3", None, None, None, None),
        ("T4", None, None, None, None),  # a NULL key groups together too
        ("T5", 4, "2025-07-04 10:00", "4", "EUR"),
    ]
    with psycopg.connect(pg_dsn(stack.analytics_db), options="-c TimeZone=UTC") as conn, conn.cursor() as cur:
        cur.execute(
            "CREATE TEMP TABLE hostile (transaction_id text, customer_id integer, order_date timestamp,"
            " amount numeric, currency text)"
        )
        cur.executemany("INSERT INTO hostile VALUES (%s, %s, %s, %s, %s)", rows)
        t = sql.Identifier("hostile")
        fast = model(key, run, flt_transactions=t)
        reference = sql.SQL(plain).format(t=t)
        found, only_fast, only_plain = differences(cur, fast, reference)
    assert found >= 2 and (only_fast, only_plain) == (0, 0)
