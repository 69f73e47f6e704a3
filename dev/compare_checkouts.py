"""Do two checkouts publish the same month? The refactoring check.

Runs the demo (dev/demo.py: the same seed and size, each checkout on a stack of its own) in both
checkouts, then compares what reached every destination for July 2025: each analytics table's rows
as multisets (EXCEPT ALL both ways, the run's id and load time left out; of the run record, the
KPIs, the gate's summary and the task counts), each BI table's current rows, and the bytes of the
three CSV files (the email's body is the KPIs and the files, both compared; not the message
itself). Prints the differences and exits 1 if there are any.

    python dev/compare_checkouts.py /path/to/old/checkout /path/to/new/checkout [--customers 5000]

Both checkouts use the Python environment this script runs in (neither is set up again).
"""

from __future__ import annotations

import argparse
import json
import re
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dev.stack import pg_dsn  # noqa: E402

TABLES = ("customer_performance", "regional_summary", "performance_trends", "data_quality_results", "alerts")
SKIP = {"run_id", "loaded_at"}


def demo(checkout: Path, customers: int) -> str:
    """Run the demo in ``checkout``; returns its analytics database's name."""
    out = subprocess.run(
        [sys.executable, "dev/demo.py", "--customers", str(customers)],
        cwd=checkout,
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise SystemExit(f"the demo failed in {checkout}:\n{out.stdout[-3000:]}{out.stderr[-3000:]}")
    for line in out.stdout.splitlines():
        if "analytics DB  postgresql://" in line:
            return line.split("5432/")[1].split(",")[0]
    raise SystemExit(f"the demo in {checkout} did not say where its analytics database is")


def analytics_rows(dbname: str, checkout: Path) -> dict[str, Counter]:
    import psycopg

    out = {}
    with psycopg.connect(pg_dsn(dbname)) as conn:
        for table in TABLES:
            cur = conn.execute(f"SELECT * FROM analytics.{table} WHERE report_month = '2025-07-01'")
            keep = [i for i, d in enumerate(cur.description) if d.name not in SKIP]
            out[table] = Counter(tuple(json.dumps(row[i], default=str, sort_keys=True) for i in keep) for row in cur)
        # the run record: what the run reported (its KPIs, the gate's summary, each task's counts),
        # without what names the run (its key, its checkout's folder) or says how long it took
        cur = conn.execute(
            "SELECT period_start, period_end, kpis, quality, row_counts FROM analytics.pipeline_runs"
            " WHERE report_month = '2025-07-01'"
        )
        out["pipeline_runs"] = Counter(
            re.sub(r"\d{8}t\d{6}_[0-9a-f]{6}", "<run>", json.dumps(row, default=str, sort_keys=True)).replace(
                str(checkout), "<checkout>"
            )
            for row in cur
        )
    return out


def bi_rows(checkout: Path) -> dict[str, Counter]:
    with sqlite3.connect(checkout / ".demo" / "bi.sqlite") as conn:
        rows = conn.execute(
            "SELECT b.tbl, b.payload FROM batches AS b JOIN current AS c USING (dataset, version, tbl)"
            " WHERE c.report_month = '2025-07'"
        ).fetchall()
    out: dict[str, Counter] = {}
    for table, payload in rows:
        out.setdefault(table, Counter()).update(json.dumps(r, sort_keys=True) for r in json.loads(payload))
    return out


def csv_files(checkout: Path) -> dict[str, bytes]:
    folder = checkout / ".demo" / "exports" / "2025-07"
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.csv"))}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("old", type=Path)
    p.add_argument("new", type=Path)
    p.add_argument("--customers", type=int, default=5000)
    a = p.parse_args()
    found = {}
    for name, checkout in (("old", a.old), ("new", a.new)):
        db = demo(checkout.resolve(), a.customers)
        found[name] = {
            "analytics": analytics_rows(db, checkout.resolve()),
            "bi": bi_rows(checkout),
            "csv": csv_files(checkout),
        }
    differences = 0
    for part in ("analytics", "bi"):
        old, new = found["old"][part], found["new"][part]
        for table in sorted(set(old) | set(new)):
            only_old = old.get(table, Counter()) - new.get(table, Counter())  # EXCEPT ALL
            only_new = new.get(table, Counter()) - old.get(table, Counter())
            rows = sum(old.get(table, Counter()).values())
            status = "same" if not only_old and not only_new else "DIFFERENT"
            differences += status != "same"
            print(
                f"{part:9} {table:22} {rows:7} rows  {status}  (old only {sum(only_old.values())}, new only"
                f" {sum(only_new.values())})"
            )
    old, new = found["old"]["csv"], found["new"]["csv"]
    for name in sorted(set(old) | set(new)):
        same = old.get(name) == new.get(name)
        differences += not same
        print(f"csv       {name:40} {len(old.get(name, b'')):9} bytes  {'same' if same else 'DIFFERENT'}")
    print("identical" if not differences else f"{differences} difference(s)")
    return 1 if differences else 0


if __name__ == "__main__":
    sys.exit(main())
