"""`make bench-churn`: do the churn model and the health bands predict? Scored against the
generator's ground truth (each customer's true dropout date, dev/generate.sql), which the pipeline
never reads.

    python bench/churn.py --customers 100000

In one run it
1. generates N customers acquired over two years, with their lives (July 2025 and 24 months of
   history; the ground truth covers 120 days after July), reusing the sources when N and the seed
   match;
2. runs the DAG for July twice with `airflow dags test`: with the package's scorecard (MBG/NBD),
   then with a scorecard that forces the fallback (`churn.min_repeat_customers` out of reach), and
   reads what each published;
3. scores each against the truth, over the customers who had bought by the end of July:
   ROC AUC of churn_probability for "made its last purchase by the end of July or within the 90 days
   after it" (goal >= 0.80), the red band's dropout rate over the green band's (goal >= 3x), and
   the expected purchases over the next 91 days (expected_purchases_3m) against the completed
   purchases the customers really made then (total and mean absolute error per customer), beside
   a constant (every customer the same churn probability, and the population's average repeat
   purchase rate from the history). Purchases are counted in days with a completed purchase, as
   the model counts them.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dev.churn_eval import features, ground_truth, roc_auc  # noqa: E402
from dev.stack import MYSQL, Stack, checkout_name, pg_dsn  # noqa: E402
from include.customer_performance.churn import DAYS_PER_MONTH  # noqa: E402

LOGICAL_DATE = "2025-08-01T02:00:00+00:00"
PERIOD_END = date(2025, 8, 1)
HORIZON_DAYS = 90


def run_dag(stack: Stack, env: dict) -> float:
    airflow = str(Path(sys.executable).parent / "airflow")
    t0 = time.monotonic()
    out = subprocess.run(
        [airflow, "dags", "test", "customer_performance", LOGICAL_DATE],
        env=env,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    (stack.workdir / "dag_test.log").write_text(out.stdout + out.stderr)
    db = sqlite3.connect(Path(env["AIRFLOW_HOME"]) / "airflow.db")
    (state,) = db.execute(
        "SELECT state FROM dag_run WHERE dag_id = 'customer_performance' ORDER BY id DESC LIMIT 1"
    ).fetchone()
    if state != "success":
        raise SystemExit(f"the DAG run ended {state}; see {stack.workdir / 'dag_test.log'}")
    return time.monotonic() - t0


def published(stack: Stack) -> dict[int, tuple]:
    import psycopg

    with psycopg.connect(pg_dsn(stack.analytics_db)) as conn:
        rows = conn.execute(
            "SELECT customer_id, churn_probability::float8, health_band, expected_purchases_3m::float8, churn_method"
            " FROM analytics.customer_performance WHERE report_month = '2025-07-01' AND churn_probability IS NOT NULL"
        ).fetchall()
    return {r[0]: r[1:] for r in rows}


def truth(stack: Stack) -> dict[int, tuple[bool, int]]:
    import psycopg

    with psycopg.connect(pg_dsn(stack.customer_db)) as conn:
        return ground_truth(conn, PERIOD_END, HORIZON_DAYS)


def score(pub: dict[int, tuple], real: dict[int, tuple[bool, int]]) -> dict:
    ids = [c for c in pub if c in real]
    churn = np.array([pub[c][0] for c in ids])
    band = np.array([pub[c][1] or "" for c in ids])
    expected = np.array([pub[c][2] if pub[c][2] is not None else np.nan for c in ids])
    dropped = np.array([real[c][0] for c in ids])
    bought = np.array([real[c][1] for c in ids], dtype=float)
    rates = {b: float(dropped[band == b].mean()) if (band == b).any() else float("nan") for b in ("green", "red")}
    return {
        "customers": len(ids),
        "dropped": int(dropped.sum()),
        "auc": roc_auc(churn, dropped),
        "red_rate": rates["red"],
        "green_rate": rates["green"],
        "red_over_green": rates["red"] / rates["green"] if rates["green"] else float("inf"),
        "expected_total": float(np.nansum(expected)),
        "actual_total": float(bought.sum()),
        "mae": float(np.nanmean(np.abs(expected - bought))),
        "method": sorted({pub[c][3] for c in ids}),
        "_arrays": (dropped, bought),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--customers", type=int, default=100_000)
    p.add_argument("--seed", type=int, default=42)
    a = p.parse_args()
    work = ROOT / ".bench-churn"
    stack = Stack(checkout_name("cp_bchurn"), work)
    work.mkdir(exist_ok=True)
    marker = work / "generated.json"
    wanted = {"customers": a.customers, "seed": a.seed, "generator": "lives-5"}
    previous = json.loads(marker.read_text()) if marker.exists() else {}
    if previous.get("params") != wanted or not stack.crm_store.exists():
        print(f"[churn] generating {a.customers:,} customers with their lives (July 2025, 24 months of history)...")
        stack.create_databases()
        planted = stack.generate(a.customers, "2025-07", seed=a.seed)
        marker.write_text(json.dumps({"params": wanted, "planted": planted}))
        print(f"[churn] generated in {planted['seconds']:.0f}s", flush=True)
    else:
        planted = previous["planted"]
        stack.create_databases(keep_analytics=True, keep_sources=True)
    rows, lives = planted["rows_in_month"], planted["lives"]
    print(
        f"[churn] sources: {rows['customers']:,} customers, {rows['transactions']:,} transactions in July;"
        f" {lives['buyers']:,} buyers, {lives['dropped_by_period_end']:,} dropped out by the end of July,"
        f" {lives['dropping_within_90_days']:,} within 90 days after",
        flush=True,
    )
    env = stack.prepare_airflow(work / "airflow")
    fallback_card = work / "scorecard-fallback.json"
    fallback_card.write_text(json.dumps({"churn": {"min_repeat_customers": 1_000_000_000}}))

    real = truth(stack)
    results = {}
    stack.start_services()
    try:
        for name, extra in (
            ("MBG/NBD", {}),
            ("recency ratio", {"CUSTOMER_PERFORMANCE_SCORECARD_CONFIG": str(fallback_card)}),
        ):
            print(f"[churn] running the DAG for July ({name})...", flush=True)
            seconds = run_dag(stack, {**env, **extra})
            results[name] = score(published(stack), real)
            results[name]["seconds"] = seconds
    finally:
        stack.stop_services()

    dropped, bought = results["MBG/NBD"].pop("_arrays")
    results["recency ratio"].pop("_arrays")
    # the constant: one churn probability for everyone, and everyone buying at the population's
    # average repeat rate (all repeat purchase days over all days since first purchases, history only)
    history = features({**MYSQL, "db": stack.sales_db}, PERIOD_END)
    rate = sum(f for f, _, _ in history.values()) / max(sum(t for _, _, t in history.values()), 1)
    each = rate * 3 * DAYS_PER_MONTH
    results["constant"] = {
        "customers": len(dropped),
        "auc": roc_auc(np.full(len(dropped), float(dropped.mean())), dropped),
        "red_over_green": float("nan"),
        "expected_total": each * len(bought),
        "actual_total": float(bought.sum()),
        "mae": float(np.abs(each - bought).mean()),
    }
    m = results["MBG/NBD"]
    print()
    print(f"Churn benchmark: {a.customers:,} customers, July 2025 (seed {a.seed})")
    print(
        f"scored: {m['customers']:,} customers who had bought by the end of July; {m['dropped']:,}"
        f" ({m['dropped'] / m['customers']:.1%}) made their last purchase by then or within {HORIZON_DAYS} days"
    )
    print(f"\n{'':16}{'ROC AUC':>9}{'red/green':>11}{'purchases next 91 d':>34}")
    print(f"{'':16}{'(>= 0.80)':>9}{'(>= 3x)':>11}{'expected / actual (ratio), MAE':>34}")
    for name in ("MBG/NBD", "recency ratio", "constant"):
        r = results[name]
        lift = "n/a" if np.isnan(r["red_over_green"]) else f"{r['red_over_green']:.1f}x"
        ratio = r["expected_total"] / r["actual_total"] if r["actual_total"] else float("nan")
        print(
            f"{name:<16}{r['auc']:9.3f}{lift:>11}"
            f"{r['expected_total']:>14,.0f} / {r['actual_total']:>7,.0f} ({ratio:4.2f}), {r['mae']:5.2f}"
        )
    print(
        f"\nred band dropout rate {m['red_rate']:.1%}, green {m['green_rate']:.1%} (MBG/NBD run);"
        f" methods published: {', '.join(m['method'])} / {', '.join(results['recency ratio']['method'])}"
    )
    (work / "result.json").write_text(json.dumps({"customers": a.customers, "results": results}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
