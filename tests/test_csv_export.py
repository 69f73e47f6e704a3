"""CSV export on real PostgreSQL: formula injection neutralised, PII opt-in, stable files."""

import csv
from datetime import datetime
from decimal import Decimal

import psycopg

from include.customer_performance.export.csv_email import file_names, storage_path, write_csvs
from include.customer_performance.staging import make_run


def staged(dsn):
    run = make_run(datetime(2025, 8, 1, 2), "csv_test", None, "cp_staging")
    with psycopg.connect(dsn) as conn:
        conn.execute("CREATE SCHEMA cp_staging")
        conn.execute(
            f"CREATE TABLE cp_staging.{run.table_name('customer_metrics')} AS SELECT * FROM (VALUES"
            " (1, '=HYPERLINK(\"http://x\")', 'a@example.com', -12.5::numeric, '+1-555'),"
            " (2, '@SUM(A1)', NULL, 0::numeric, 'plain, \"quoted\"\nnew line'),"
            " (3, 'Zoë', 'z@example.com', 7::numeric, '-minus')"
            ") AS t (customer_id, name, email, revenue, note)"
        )
        conn.execute(
            f"CREATE TABLE cp_staging.{run.table_name('regional_summary')} (grouping_level text, region text,"
            " country text, state text, segment text, product_category text, customers bigint,"
            " active_customers bigint, transactions bigint, revenue numeric, revenue_at_risk numeric,"
            " avg_health_score numeric, avg_churn_probability numeric, addressable_market bigint,"
            " market_penetration numeric, penetration_base text)"
        )
        for part in ("dq_results", "dq_aggregates"):  # the quality report: validate's and aggregate's parts
            conn.execute(
                f"CREATE TABLE cp_staging.{run.table_name(part)} (suite text, table_name text, column_name text,"
                " rule text, expectation text, severity text, rows_checked bigint, failing_rows bigint,"
                " success boolean, examples jsonb, quarantined_rows bigint, score numeric)"
            )
        conn.execute(
            f"CREATE TABLE cp_staging.{run.table_name('period_comparison')} (grouping_level text, label text,"
            " revenue numeric)"
        )
        conn.execute(
            f"CREATE TABLE cp_staging.{run.table_name('interaction_summary')} (grouping_level text,"
            " interaction_type text, department text, priority text, resolution_status text, interactions bigint)"
        )
    return run


def test_formula_cells_are_neutralised_and_numbers_kept(pg_db, tmp_path):
    run = staged(pg_db)
    with psycopg.connect(pg_db) as conn:
        files = write_csvs(conn, run, storage_path(str(tmp_path)))
    assert files["customer_performance"]["rows"] == 3
    with open(files["customer_performance"]["path"], newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["customer_id", "name", "revenue", "note"]  # email left out by default
    assert [r["name"] for r in rows] == ['\'=HYPERLINK("http://x")', "'@SUM(A1)", "Zoë"]
    assert [r["note"] for r in rows] == ["'+1-555", 'plain, "quoted"\nnew line', "'-minus"]
    assert [r["revenue"] for r in rows] == ["-12.50", "0.00", "7.00"]  # cents; a negative number is no formula


def test_pii_is_opt_in_and_empty_tables_still_have_headers(pg_db, tmp_path):
    run = staged(pg_db)
    with psycopg.connect(pg_db) as conn:
        files = write_csvs(conn, run, storage_path(str(tmp_path)), include_pii=True)
    with open(files["customer_performance"]["path"], encoding="utf-8") as fh:
        assert next(csv.reader(fh)) == ["customer_id", "name", "email", "revenue", "note"]
    with open(files["regional_summary_region"]["path"], encoding="utf-8") as fh:
        assert fh.read() == (
            "region,customers,active_customers,market_penetration,penetration_base,addressable_market,transactions,"
            "revenue,revenue_at_risk,avg_health_score,avg_churn_probability\n"
        )
    with open(files["regional_summary_segment_product_category"]["path"], encoding="utf-8") as fh:
        assert fh.read() == "segment,product_category,customers,active_customers,transactions,revenue\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(file_names(run).values())


def test_a_spreadsheet_takes_the_files_as_they_are(pg_db, tmp_path):
    """Money to cents and every other fraction to 4 decimals; one regional file per grouping level,
    whose column sums are the month's (no level counted twice); an empty group label written
    unknown; the quality report one row per check, its scores in a file of their own."""
    run = staged(pg_db)
    regional = run.table_name("regional_summary")
    dq = run.table_name("dq_results")
    with psycopg.connect(pg_db) as conn:
        conn.execute(
            f"INSERT INTO cp_staging.{regional} (grouping_level, region, segment, product_category, customers,"
            " active_customers, revenue, market_penetration, avg_churn_probability) VALUES"
            " ('total', NULL, NULL, NULL, 5, 3, 100.004999, 0.6, 0.333333333),"
            " ('region', 'EU', NULL, NULL, 3, 2, 60.005, 0.666666666666, 0.25),"
            " ('region', NULL, NULL, NULL, 2, 1, 39.999999, 0.5, NULL),"
            " ('segment', NULL, 'VIP', NULL, 5, 3, 100.004999, 0.6, 0.333333333),"
            " ('product_category', NULL, NULL, 'books', 4, 3, 100.004999, NULL, NULL)"
        )
        conn.execute(
            f"INSERT INTO cp_staging.{dq} VALUES"
            " ('transactions', 'transactions', 'amount', 'transactions.amount.positive', 'x', 'warning', 10, 1,"
            " false, '[]', 1, NULL),"
            " ('transactions', 'transactions', NULL, 'transactions.completeness', 'completeness_score', 'info',"
            " NULL, NULL, true, '[]', 0, 0.987654321)"
        )
        files = write_csvs(conn, run, storage_path(str(tmp_path)))

    def read(name: str) -> list[dict]:
        with open(files[name]["path"], newline="", encoding="utf-8") as fh:
            return list(csv.DictReader(fh))

    regions = read("regional_summary_region")
    assert [(r["region"], r["revenue"], r["market_penetration"], r["avg_churn_probability"]) for r in regions] == [
        ("EU", "60.01", "0.6667", "0.2500"),
        ("unknown", "40.00", "0.5000", ""),
    ]
    total = read("regional_summary_total")
    assert list(total[0]) == [
        "customers",
        "active_customers",
        "market_penetration",
        "penetration_base",
        "addressable_market",
        "transactions",
        "revenue",
        "revenue_at_risk",
        "avg_health_score",
        "avg_churn_probability",
    ]
    # the region file's sum is the month's revenue (to the cent of its rounding)
    assert sum(Decimal(r["revenue"]) for r in regions) == Decimal(total[0]["revenue"]) + Decimal("0.01")
    assert [r["product_category"] for r in read("regional_summary_product_category")] == ["books"]
    assert [r["rule"] for r in read("data_quality_report")] == ["transactions.amount.positive"]
    assert "score" not in read("data_quality_report")[0]
    assert read("data_quality_scores") == [
        {
            "table_name": "transactions",
            "rule": "transactions.completeness",
            "expectation": "completeness_score",
            "score": "0.9877",
        }
    ]


def test_attachments_are_text_csv_byte_for_byte(tmp_path):
    import email

    from include.customer_performance.export.csv_email import mime_message

    data = "region,revenue\r\nZoë,1.50\nEU,2.00\n".encode()
    (tmp_path / "a.csv").write_bytes(data)
    (tmp_path / "b.csv.gz").write_bytes(b"\x1f\x8b")
    msg = mime_message("a@x", ["b@x"], "s", "<p>h</p>", "t", [str(tmp_path / "a.csv"), str(tmp_path / "b.csv.gz")], {})
    parsed = email.message_from_bytes(msg.as_bytes())
    parts = {p.get_filename(): p for p in parsed.walk() if p.get_filename()}
    assert parts["a.csv"].get_content_type() == "text/csv" and parts["a.csv"].get_content_charset() == "utf-8"
    assert parts["a.csv"].get_payload(decode=True) == data
    assert parts["b.csv.gz"].get_content_type() == "application/gzip"


def test_large_exports_are_compressed_then_linked(tmp_path):
    import gzip

    from include.customer_performance.export.csv_email import attachments

    small = tmp_path / "small.csv"
    small.write_text("a,b\n1,2\n")
    big = tmp_path / "big.csv"
    big.write_text("customer_id,revenue\n" + "".join(f"{i},{i % 97}.50\n" for i in range(200_000)))
    files = {"small": {"path": str(small)}, "big": {"path": str(big)}}
    size = small.stat().st_size + big.stat().st_size

    assert attachments(files, size, tmp_path) == ([str(small), str(big)], [])  # fits: attached as is
    attached, linked = attachments(files, size // 2, tmp_path)  # compresses well: attached gzipped
    assert attached == [str(small) + ".gz", str(big) + ".gz"] and linked == []
    assert gzip.decompress((tmp_path / "big.csv.gz").read_bytes()) == big.read_bytes()
    attached, linked = attachments(files, 10, tmp_path)  # too large even compressed: linked
    assert attached == [] and linked == [str(small) + ".gz", str(big) + ".gz"]


def test_relay_passes_every_row_in_order_to_every_sink():
    """COPY data is passed on in chunks (db.relay): every byte arrives, in order, at each sink,
    the last partial chunk too, and no chunk is much over the size asked for."""
    from include.customer_performance.db import relay

    rows = [f"{i}\tname {i}\n".encode() for i in range(1000)]
    first, second = [], []
    relay(iter(rows), first.append, second.append, chunk_bytes=100)
    assert b"".join(first) == b"".join(second) == b"".join(rows)
    assert len(first) > 100 and all(len(c) < 100 + 20 for c in first)
    relay(iter([]), first.append)  # nothing to pass on: nothing written
    assert len(first) == len(second)
