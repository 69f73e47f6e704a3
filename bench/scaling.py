"""`make bench-scaling`: how the nightly run's cost grows with customers and with history.

    python bench/scaling.py --sizes 100000,300000,1000000 --history-months 24

For each size, `bench/run.py` on its own sources (databases named per size, kept and reused, so a
second run of a size skips the generation): the nightly July run with one month and with
``--history-months`` of sales history. Prints, per size, the whole DAG's wall time for both, the
sales database rows read, the worker's peak RSS, the floor and the ratios; each size's full
output is in ``.bench/cp_bench_<size>/bench.log``. Sizes run smallest first, each with
``--skip-naive --skip-full`` (the scaling run measures the pipeline, not the baselines). The
sources take room: about 3.2 GB per 100,000 customers with 24 months of history once made (31 GB
at 1,000,000: the sales table 20.5 GB with its indexes, the customer database 6.5 GB, the CRM
store 4.3 GB), and the generator needs up to about 18 GB more than that while it runs (its
stages' work tables and sorts): 1M took 56 minutes and at most 49 GB at its peak on this
machine. 3M would need about 150 GB.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="100000,300000,1000000,3000000", help="customers, comma-separated")
    p.add_argument("--history-months", type=int, default=24)
    a = p.parse_args()
    sizes = sorted(int(x) for x in a.sizes.split(","))
    rows = []
    for n in sizes:
        name = f"cp_bench_{n}"
        work = ROOT / ".bench" / name
        work.mkdir(parents=True, exist_ok=True)
        print(f"[scaling] {n:,} customers, {a.history_months} months of history...", flush=True)
        t0 = time.monotonic()
        with (work / "bench.log").open("w") as log:
            subprocess.run(
                [
                    sys.executable,
                    str(ROOT / "bench" / "run.py"),
                    "--customers",
                    str(n),
                    "--history-months",
                    str(a.history_months),
                    "--stack",
                    name,
                    "--skip-naive",
                    "--skip-full",
                ],
                check=True,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
            )
        result = json.loads((work / "result.json").read_text())
        result["bench_seconds"] = time.monotonic() - t0
        rows.append(result)
        print(f"[scaling] {n:,} done in {result['bench_seconds']:.0f} s", flush=True)

    print(f"\nNightly July run by size, 1 month and {a.history_months} months of sales history (airflow dags test)")
    head = f"  {'customers':>11} {'DAG 1 mo':>10} {'DAG ' + str(a.history_months) + ' mo':>10} {'ratio':>6}"
    head += f" {'rows read 1 mo':>15} {'rows read ' + str(a.history_months) + ' mo':>16} {'peak RSS':>9} {'floor':>8}"
    head += f" {'DAG/floor':>9} {'s per 100k':>10}"
    print(head)
    for r in rows:
        by = {int(k): v for k, v in r["by_history"].items()}
        one, many = by.get(1, r["dag"]), r["dag"]
        floor = sum(v for v in r["floor"].values())
        print(
            f"  {r['customers']:>11,} {one['wall']:>8.1f} s {many['wall']:>8.1f} s {many['wall'] / one['wall']:>5.2f}x"
            f" {one['source_rows_read']:>15,} {many['source_rows_read']:>16,} {many['peak_rss_mb']:>6.0f} MB"
            f" {floor:>6.1f} s {many['wall'] / floor:>8.2f}x {many['wall'] / r['customers'] * 100_000:>8.1f} s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
