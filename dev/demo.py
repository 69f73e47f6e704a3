"""`make demo`: seed July 2025 with two years of customer lives, start the stand-ins, run the runs
that close June and then July with `airflow dags test` (so that July's run back-tests June's
predictions), and print what reached each destination, the back-test, and how the predictions
compare with the generator's ground truth (which the pipeline never reads).

A second run reuses the generated sources (same seed and size) and the Airflow metadata DB, and
replaces both months in every destination: the counts it prints stay the same.
"""

from __future__ import annotations

import argparse
import email
import json
import os
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dev.stack import Stack, checkout_name, pg_dsn  # noqa: E402
from include.customer_performance.period import add_months  # noqa: E402

# the 02:00 runs on 1 July and 1 August close June and July 2025
LOGICAL_DATES = tuple(f"2025-{m:02d}-01T02:00:00+00:00" for m in range(4, 9))  # March to July: the churn model
# trains on the months whose 90 days after are known by the end of July (March and April)


def airflow(args: list[str], env: dict, log: Path) -> int:
    with log.open("ab") as fh:
        return subprocess.call(
            [str(Path(sys.executable).parent / "airflow"), *args],
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )


def dag_run_state(env: dict, logical_date: str) -> str:
    out = subprocess.run(
        [str(Path(sys.executable).parent / "airflow"), "dags", "list-runs", "customer_performance", "-o", "json"],
        env=env,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    start = out.stdout.find("[{")
    if start < 0:
        return "missing"
    runs = json.loads(out.stdout[start:].splitlines()[0])
    mine = [r for r in runs if str(r.get("logical_date", "")).startswith(logical_date[:10])]
    return mine[0]["state"] if mine else "missing"


def ground_truth_summary(stack: Stack, period_end: date) -> str:
    """July's published predictions against the generator's ground truth (the customer database's
    ground_truth table; the pipeline never reads it): who made no completed purchase in the 90 days
    after July, the event the churn probability predicts; the probability beside plain recency; the
    save list's precision and its share already gone."""
    import psycopg

    from dev.churn_eval import calibration_error, ground_truth, roc_auc

    with psycopg.connect(pg_dsn(stack.customer_db)) as conn:
        truth = ground_truth(conn, period_end)
    with psycopg.connect(pg_dsn(stack.analytics_db)) as conn:
        rows = conn.execute(
            "SELECT customer_id, churn_probability::float8, days_since_last_purchase, churn_list, health_band"
            " FROM analytics.customer_performance WHERE report_month = %s AND churn_probability IS NOT NULL",
            (add_months(period_end, -1),),
        ).fetchall()
    scored = [(truth[c], p, d, lst, band) for c, p, d, lst, band in rows if c in truth]
    if not scored:
        return "GROUND TRUTH: no customer with a purchase to compare"
    event = [t[0] for t, *_ in scored]
    active = [(t[0], p, d) for t, p, d, *_ in scored if not t[2]]
    save = [t for t, _, _, lst, _ in scored if lst == "save"]
    rate = {}
    for band in ("green", "yellow", "red"):
        members = [t[0] for t, *_, b in scored if b == band]
        rate[band] = (sum(members) / len(members) if members else float("nan"), len(members))

    def auc(pairs) -> str:
        return (
            f"{roc_auc([p for _, p, _ in pairs], [e for e, _, _ in pairs]):.3f}"
            f" (days since the last purchase alone: {roc_auc([d for _, _, d in pairs], [e for e, _, _ in pairs]):.3f})"
        )

    return "\n".join(
        [
            "GROUND TRUTH (the generator's; the pipeline never reads it)",
            f"Customers with a purchase by the period end: {len(scored):,}; {sum(event):,}"
            f" ({sum(event) / len(scored):.1%}) made no completed purchase in the 90 days after it",
            f"Churn probability against that: ROC AUC {auc([(t[0], p, d) for t, p, d, *_ in scored])},"
            f" calibration error {calibration_error([p for _, p, *_ in scored], event):.3f}",
            f"Among the {len(active):,} still active then: ROC AUC {auc(active)}",
            f"Save list: {len(save)} customers, {sum(t[0] for t in save)} of them made no purchase,"
            f" {sum(t[2] for t in save)} had already gone",
            "No purchase in the 90 days, by health band: "
            + ", ".join(f"{b} {r:.1%} of {n:,}" for b, (r, n) in rate.items()),
        ]
    )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--customers", type=int, default=5000)
    p.add_argument("--seed", type=int, default=42)
    a = p.parse_args()
    t0 = time.monotonic()
    work = ROOT / ".demo"
    stack = Stack(checkout_name("cp_demo"), work)
    work.mkdir(exist_ok=True)
    log = work / "demo.log"
    log.write_text("")

    marker = work / "generated.json"
    wanted = {
        "customers": a.customers,
        "seed": a.seed,
        "month": "2025-07",
        "generator": "lives-6",
    }  # lives-2: security incidents
    previous = json.loads(marker.read_text()) if marker.exists() else {}
    if previous.get("params") != wanted or not stack.crm_store.exists():
        print(
            f"[demo] generating sources: {a.customers} customers acquired over two years, July 2025 and its"
            f" 24 months of history (seed {a.seed})"
        )
        stack.create_databases(keep_analytics=True)
        planted = stack.generate(a.customers, "2025-07", seed=a.seed)
        marker.write_text(json.dumps({"params": wanted, "planted": planted}, indent=2))
    else:
        planted = previous["planted"]
        print("[demo] sources already generated with the same seed and size; reusing them")
    if stack.reset_unversioned_analytics():
        print("[demo] dropped the analytics schema of a build before versioned migrations")
    rows = planted["rows_in_month"]
    print(
        f"[demo] July 2025 at the sources: {rows['customers']} customers, {rows['transactions']} transactions, "
        f"{rows['interactions']} CRM interactions, {rows['activity']} sessions"
    )
    print("[demo] defects planted: " + ", ".join(f"{k} {v['rows']}" for k, v in planted["defects"].items()))

    airflow_home = ROOT / ".airflow"
    env = {**os.environ, **stack.airflow_env(airflow_home)}
    steps = [["pools", "import", str(ROOT / "pools.json")]]
    if not (airflow_home / "airflow.db").exists():
        print("[demo] initialising Airflow's metadata DB (SQLite) in .airflow/")
        steps.insert(0, ["db", "migrate"])
    for args in steps:
        if airflow(args, env, log) != 0:
            print(f"[demo] airflow {' '.join(args)} failed; see {log}")
            return 1

    stack.start_services()
    try:
        print(f"[demo] stand-ins up: CRM API :{stack.crm_port}, BI API :{stack.bi_port}, SMTP sink :{stack.smtp_port}")
        for logical_date in LOGICAL_DATES:
            print(f"[demo] airflow dags test customer_performance {logical_date}  (log: {log.relative_to(ROOT)})")
            airflow(["dags", "test", "customer_performance", logical_date], env, log)
            state = dag_run_state(env, logical_date)
            if state != "success":
                print(f"[demo] the DAG run ended '{state}'; the last lines of {log}:")
                print("".join(log.read_text().splitlines(keepends=True)[-40:]))
                return 1
        bi = stack.bi_rows()
    finally:
        stack.stop_services()

    import psycopg

    from include.customer_performance.report import breakdowns, executive_dashboard, month_summary

    with psycopg.connect(pg_dsn(stack.analytics_db)) as conn:
        s = month_summary(conn, "analytics", date(2025, 7, 1))
        parts = breakdowns(conn, "analytics", date(2025, 7, 1))
    mail = stack.mails()[-1]
    msg = email.message_from_bytes(mail.read_bytes())
    attachments = [part.get_filename() for part in msg.walk() if part.get_filename()]
    print()
    print(executive_dashboard(s, parts, "USD"))
    print()
    print(ground_truth_summary(stack, date(2025, 8, 1)))
    print()
    print("Where the outputs are:")
    print(
        f"  analytics DB  postgresql://127.0.0.1:5432/{stack.analytics_db}, schema analytics: "
        + ", ".join(f"{t} {n}" for t, n in s["row_counts"].items())
        + " rows for 2025-07"
    )
    print(
        f"  BI API        {stack.bi_store.relative_to(ROOT)}: "
        + ", ".join(f"{t} {n}" for t, n in sorted(bi.items()))
        + " rows"
    )
    print(
        f"  email         {mail.relative_to(ROOT)}: '{msg['Subject']}' to {msg['To']},"
        f" attachments {', '.join(attachments)}"
    )
    print(f"  CSV files     {stack.export_dir.relative_to(ROOT)}/2025-07/")
    print(f"\n[demo] done in {time.monotonic() - t0:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
