"""CSV export on real PostgreSQL: formula injection neutralised, PII opt-in, stable files."""

import csv
from datetime import datetime

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
            " country text, state text, segment text, product_category text, revenue numeric)"
        )
        for part in ("dq_results", "dq_aggregates"):  # the quality report: validate's and aggregate's parts
            conn.execute(
                f"CREATE TABLE cp_staging.{run.table_name(part)} (suite text, table_name text, rule text,"
                " expectation text, column_name text, success boolean)"
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
    assert [r["revenue"] for r in rows] == ["-12.5", "0", "7"]  # a negative number is not a formula


def test_pii_is_opt_in_and_empty_tables_still_have_headers(pg_db, tmp_path):
    run = staged(pg_db)
    with psycopg.connect(pg_db) as conn:
        files = write_csvs(conn, run, storage_path(str(tmp_path)), include_pii=True)
    with open(files["customer_performance"]["path"], encoding="utf-8") as fh:
        assert next(csv.reader(fh)) == ["customer_id", "name", "email", "revenue", "note"]
    with open(files["regional_summary"]["path"], encoding="utf-8") as fh:
        assert fh.read() == "grouping_level,region,country,state,segment,product_category,revenue\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(file_names(run).values())


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
