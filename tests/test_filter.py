"""The filter engine: validation before any data moves, and compiled SQL on real PostgreSQL."""

from datetime import date

import psycopg
import pytest
from psycopg import sql

from include.customer_performance.config import PACKAGE_DIR
from include.customer_performance.period import ReportPeriod
from include.customer_performance.schemas import TRANSACTIONS
from include.customer_performance.staging import recreate_table
from include.customer_performance.transform.filter import (
    FilterConfigError,
    apply_filter,
    load_filters,
    parse_dataset_filter,
)

JULY = ReportPeriod(date(2025, 7, 1), date(2025, 8, 1))


def tx_filter(conditions, **extra):
    return parse_dataset_filter(TRANSACTIONS, {"conditions": conditions, **extra}, JULY, "test")


def test_shipped_configuration_is_valid_and_templated():
    filters = load_filters(PACKAGE_DIR / "filters.json", JULY)
    assert set(filters) == {"customers", "customer_activity", "transactions", "interactions"}
    tx = filters["transactions"]
    assert [(c.field, c.operator) for c in tx.conditions] == [
        ("order_date", "greater_equal"),
        ("order_date", "less_than"),
    ]
    assert [str(c.value) for c in tx.conditions] == ["2025-07-01 00:00:00", "2025-08-01 00:00:00"]


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        ({"field": "nope", "operator": "equals", "value": "x"}, "condition 1: unknown field 'nope'"),
        ({"field": "status", "operator": "like", "value": "x"}, "condition 1: unknown operator 'like'"),
        ({"field": "amount", "operator": "greater", "value": "ten"}, "condition 1: value 'ten' must be a number"),
        ({"field": "order_date", "operator": "less", "value": "yesterday"}, "not an ISO date"),
        ({"field": "status", "operator": "between", "value": ["a"]}, "needs a list of two values"),
        ({"field": "amount", "operator": "contains", "value": "1"}, "applies to text fields"),
        ({"field": "status", "operator": "equals", "value": "x", "logic": "XOR"}, "logic must be AND or OR"),
        ({"field": "status", "operator": "equals", "value": "{{ tomorrow }}"}, "unknown template variable"),
    ],
)
def test_invalid_condition_is_rejected_naming_it(condition, message):
    with pytest.raises(FilterConfigError, match=message) as err:
        tx_filter([condition])
    assert "test: transactions" in str(err.value)


def test_bad_top_level_options_are_rejected():
    with pytest.raises(FilterConfigError, match="nullHandling"):
        tx_filter([], nullHandling="drop")
    with pytest.raises(FilterConfigError, match="caseSensitive"):
        tx_filter([], caseSensitive="no")


ROWS = [
    # transaction_id, status, amount, currency, order_date
    ("t1", "completed", 10, "USD", "2025-07-01 00:00:00"),
    ("t2", "Completed", 20, "EUR", "2025-07-31 23:59:59"),
    ("t3", "refunded", 30, "usd", "2025-08-01 00:00:00"),
    ("t4", None, 40, None, "2025-06-30 23:59:59"),
    ("t5", "pending", None, "GBP", "2025-07-15 12:00:00"),
    ("t6", "o'brien%_", 60, "USD", "2025-07-15 12:00:00"),
]


@pytest.fixture
def staged(pg_db):
    with psycopg.connect(pg_db) as conn, conn.cursor() as cur:
        cur.execute("SET TIME ZONE 'UTC'")
        src = sql.Identifier("public", "raw_tx")
        recreate_table(cur, src, TRANSACTIONS)
        for tid, status, amount, currency, when in ROWS:
            cur.execute(
                "INSERT INTO raw_tx (transaction_id, status, amount, currency, order_date) VALUES (%s,%s,%s,%s,%s)",
                (tid, status, amount, currency, when),
            )
        yield cur, src


def run(staged, conditions, **opts):
    cur, src = staged
    flt = tx_filter(conditions, **opts)
    stats = apply_filter(cur, flt, src, sql.Identifier("public", "flt_tx"))
    cur.execute("SELECT transaction_id FROM flt_tx ORDER BY 1")
    return [r[0] for r in cur.fetchall()], stats


def test_period_window_counts_what_each_condition_removed(staged):
    kept, stats = run(
        staged,
        [
            {"field": "order_date", "operator": "greater_equal", "value": "{{ period_start }}"},
            {"field": "order_date", "operator": "less_than", "value": "{{ period_end }}"},
        ],
    )
    assert kept == ["t1", "t2", "t5", "t6"]
    assert stats["rows_in"] == 6 and stats["rows_out"] == 4
    assert [c["removed"] for c in stats["conditions"]] == [1, 1]


def test_case_insensitive_by_default_and_sensitive_on_request(staged):
    cond = [{"field": "status", "operator": "equals", "value": "COMPLETED"}]
    assert run(staged, cond)[0] == ["t1", "t2"]
    assert run(staged, cond, caseSensitive=True)[0] == []


def test_null_handling_exclude_and_include(staged):
    cond = [{"field": "currency", "operator": "in", "value": ["USD", "EUR"]}]
    assert run(staged, cond)[0] == ["t1", "t2", "t3", "t6"]
    assert run(staged, cond, nullHandling="include")[0] == ["t1", "t2", "t3", "t4", "t6"]


def test_or_logic_folds_left_to_right(staged):
    kept, _ = run(
        staged,
        [
            {"field": "amount", "operator": "less_equal", "value": 10},
            {"field": "amount", "operator": "greater", "value": 50, "logic": "OR"},
        ],
    )
    assert kept == ["t1", "t6"]


@pytest.mark.parametrize(
    ("operator", "value", "expected"),
    [
        ("not_equals", "completed", ["t3", "t5", "t6"]),
        ("between", [20, 40], ["t2", "t3", "t4"]),
        ("not_in", ["USD"], ["t2", "t5"]),
        ("contains", "%_", ["t6"]),
        ("starts_with", "ref", ["t3"]),
        ("ends_with", "ING", ["t5"]),
        ("is_null", None, ["t4"]),
        ("is_not_null", None, ["t1", "t2", "t3", "t5", "t6"]),
    ],
)
def test_operators(staged, operator, value, expected):
    field = "amount" if operator == "between" else "currency" if operator == "not_in" else "status"
    assert run(staged, [{"field": field, "operator": operator, "value": value}])[0] == expected


def test_values_are_bound_not_spliced(staged):
    kept, _ = run(staged, [{"field": "status", "operator": "equals", "value": "x' OR '1'='1"}])
    assert kept == []
    kept, _ = run(staged, [{"field": "status", "operator": "equals", "value": "o'brien%_"}])
    assert kept == ["t6"]


def test_housekeeping_drops_only_expired_runs(pg_db):
    from datetime import datetime

    from include.customer_performance.staging import drop_expired, make_run, register_run

    old = make_run(datetime(2025, 7, 1, 2), "old", None, "cp_staging")
    new = make_run(datetime(2025, 8, 1, 2), "new", None, "cp_staging")
    with psycopg.connect(pg_db) as conn, conn.cursor() as cur:
        for run in (old, new):
            register_run(cur, run)
            for stage in ("transactions", "customer_metrics"):
                cur.execute(sql.SQL("CREATE TABLE {} (x int)").format(run.table(stage)))
        cur.execute("UPDATE cp_staging._runs SET created_at = now() - interval '8 days' WHERE run_id = 'old'")
        cur.execute("CREATE TABLE cp_staging.unrelated_table (x int)")
        dropped = drop_expired(cur, new, retention_days=7)
        cur.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'cp_staging' ORDER BY 1")
        left = [r[0] for r in cur.fetchall()]
    assert sorted(dropped) == sorted(old.table_name(s) for s in ("transactions", "customer_metrics"))
    assert left == sorted(
        ["_runs", "unrelated_table", *(new.table_name(s) for s in ("transactions", "customer_metrics"))]
    )


def test_an_invalid_configuration_stops_the_extracts_before_any_data_moves(tmp_path):
    import dataclasses
    import json as _json
    from datetime import datetime

    from include.customer_performance import pipeline
    from include.customer_performance.config import Settings
    from include.customer_performance.staging import make_run

    bad = tmp_path / "filters.json"
    bad.write_text(
        _json.dumps({"transactions": {"conditions": [{"field": "amount", "operator": "bigger", "value": 1}]}})
    )
    cfg = dataclasses.replace(Settings(), filter_config=bad, sales_db_conn_id="no_such_connection")
    run = make_run(datetime(2025, 8, 1, 2), "r", None, "cp_staging")
    # the configuration is checked first: the (unreachable) source is never contacted
    with pytest.raises(FilterConfigError, match="transactions condition 1: unknown operator 'bigger'"):
        pipeline.extract_sales_db(run, cfg)


def test_a_filter_that_removes_nothing_is_a_view_and_reruns_switch_cleanly(staged):
    cur, src = staged
    target = sql.Identifier("public", "flt_tx")

    def kind():
        cur.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass('public.flt_tx')")
        return cur.fetchone()[0]

    keep_all = tx_filter([{"field": "transaction_id", "operator": "is_not_null"}])
    stats = apply_filter(cur, keep_all, src, target)
    assert (stats["rows_in"], stats["rows_out"], kind()) == (6, 6, "v")
    cur.execute("SELECT count(*) FROM flt_tx")
    assert cur.fetchone()[0] == 6
    # the same run filtered again with a filter that removes rows: the view becomes a table
    stats = apply_filter(cur, tx_filter([{"field": "amount", "operator": "greater", "value": 25}]), src, target)
    assert (stats["rows_out"], kind()) == (3, "r")
    # and back; then an extract rerun empties the raw table in place: the view stays valid and
    # shows what the extract writes now (the later stages need not be rerun to find it)
    apply_filter(cur, keep_all, src, target)
    recreate_table(cur, src, TRANSACTIONS)
    assert kind() == "v"
    cur.execute("SELECT count(*) FROM flt_tx")
    assert cur.fetchone()[0] == 0
    assert apply_filter(cur, keep_all, src, target)["rows_in"] == 0
