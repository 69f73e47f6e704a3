"""Market penetration's reference file (market.py), and the Data Docs' retention
(export/artifacts.prune_data_docs)."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg import sql

from include.customer_performance import market
from include.customer_performance.config import Settings
from include.customer_performance.export.artifacts import PUBLISHED_MARK, prune_data_docs
from include.customer_performance.staging import make_run


def test_the_market_file_is_checked_line_by_line(tmp_path):
    good = tmp_path / "market.csv"
    good.write_text("region,addressable_customers\nEurope,1200\nNorth America , 800\n\n")
    assert market.read(good) == {"Europe": 1200, "North America": 800}
    for text, error in (
        ("area,size\nEurope,1\n", "the first line must be region,addressable_customers"),
        ("region,addressable_customers\nEurope,12.5\n", "line 2: addressable_customers of 'Europe' must be a whole"),
        ("region,addressable_customers\nEurope,0\n", "must be a whole number above 0"),
        ("region,addressable_customers\nEurope,\u00b2\n", "must be a whole number above 0"),
        ("region,addressable_customers\nEurope,5\nEurope,6\n", "line 3: region 'Europe' is listed twice"),
        ("region,addressable_customers\n,5\n", "line 2: the region is empty"),
        ("region,addressable_customers\nEurope,5,6\n", "line 2: two values expected, got 3"),
    ):
        bad = tmp_path / "bad.csv"
        bad.write_text(text)
        with pytest.raises(market.MarketSizeError, match=error):
            market.read(bad)
    with pytest.raises(market.MarketSizeError, match="No such file"):
        market.read(tmp_path / "missing.csv")


def test_market_penetration_is_over_the_market_where_given_else_the_customer_base(pg_db):
    """The regional summary's SQL on a small customer table: a region with an addressable market
    is measured against it, the others against their customers; a value from the file is bound,
    never spliced (a quote in a region name is data)."""
    from include.customer_performance.sql import model

    run = make_run(datetime(2025, 8, 1, 2), "market_test", None, "cp_staging")
    with psycopg.connect(pg_db) as conn, conn.cursor() as cur:
        cur.execute("CREATE SCHEMA cp_staging")
        cur.execute(
            f"CREATE TABLE cp_staging.{run.table_name('customer_metrics')} AS SELECT * FROM (VALUES"
            " (1, 'Europe', 'DE', 'BY', 'VIP', 2, 10.0, 1.0, 50.0, 0.1),"
            " (2, 'Europe', 'DE', 'BY', 'regular', 0, 0.0, 0.0, 40.0, 0.5),"
            " (3, 'O''Brien Isles', 'IE', NULL, 'regular', 1, 5.0, 0.0, 60.0, 0.2),"
            " (4, NULL, NULL, NULL, 'new', 0, 0.0, 0.0, NULL, NULL)"
            ") AS t (customer_id, region, country, state, segment, transaction_count, revenue, revenue_at_risk,"
            " health_score, churn_probability)"
        )
        cur.execute(
            f"CREATE TABLE cp_staging.{run.table_name('int_transactions')} (customer_id bigint,"
            " product_category text, is_sale boolean, revenue_amount numeric)"
        )
        sizes = market.relation({"Europe": 40, "O'Brien Isles": 4})
        cur.execute(
            sql.SQL(
                "SELECT grouping_level, region, addressable_market, market_penetration::float, penetration_base"
                " FROM ({}) AS r WHERE grouping_level IN ('region', 'total')"
            ).format(model("regional_summary", run, market_size=sizes))
        )
        found = {(r[0], r[1]): r[2:] for r in cur.fetchall()}
    assert found["region", "Europe"] == (40, 0.025, "addressable_market")  # 1 of a market of 40
    assert found["region", "O'Brien Isles"] == (4, 0.25, "addressable_market")
    assert found["region", None] == (None, 0.0, "customer_base")
    assert found["total", None] == (None, 0.5, "customer_base")  # 2 of the 4 customers bought


def test_data_docs_of_old_runs_are_dropped_but_the_published_and_recent_kept(pg_db, tmp_path):
    cfg = dataclasses.replace(Settings(), export_location=str(tmp_path), analytics_schema="analytics")
    run = make_run(datetime(2025, 8, 1, 2), "docs_now", None, "cp_staging")
    docs = tmp_path / "2025-07" / "data_docs"
    now = datetime(2025, 8, 20, tzinfo=UTC)
    june = tmp_path / "2025-06" / "data_docs"  # a month no run touches again
    for where, name, age in (
        (docs, "old", 30),
        (docs, "recent", 2),
        (docs, "published", 40),
        (docs, "unmarked", None),
        (docs, run.key, 50),
        (june, "june_old", 30),
        (june, "june_published", 60),
    ):
        (where / name / "sources").mkdir(parents=True)
        (where / name / "sources" / "index.html").write_text("<html></html>")
        if age is not None:
            (where / name / PUBLISHED_MARK).write_text((now - timedelta(days=age)).isoformat())
    with psycopg.connect(pg_db) as conn, conn.cursor() as cur:
        cur.execute(
            "CREATE SCHEMA analytics; CREATE TABLE analytics.pipeline_runs (report_month date, period_end date,"
            " loaded_at timestamptz, quality jsonb)"
        )
        for month, end, folder in (
            ("2025-07-01", "2025-08-01", docs / "published"),
            ("2025-06-01", "2025-07-01", june / "june_published"),
        ):
            cur.execute(
                "INSERT INTO analytics.pipeline_runs VALUES (%s, %s, now(), %s)",
                (month, end, json.dumps({"data_docs": str(folder)})),
            )
        dropped = prune_data_docs(cur, run, cfg, now=now)
    assert sorted(dropped) == ["2025-06/june_old", "2025-07/old"]
    assert sorted(p.name for p in docs.iterdir()) == sorted(["recent", "published", "unmarked", run.key])
    assert [p.name for p in june.iterdir()] == ["june_published"]
    # a folder from before the marks is marked when first seen, and ages from then
    assert (docs / "unmarked" / PUBLISHED_MARK).read_text() == now.isoformat()
