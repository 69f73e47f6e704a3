"""`make demo`: seed July 2025, start the stand-ins, run the run that closes July with
`airflow dags test`, and print what reached each destination.

A second run reuses the generated sources (same seed and size) and the Airflow metadata DB, and
replaces the month in every destination: the counts it prints stay the same.
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

LOGICAL_DATE = "2025-08-01T02:00:00+00:00"  # the 02:00 run on 1 August closes July 2025


def airflow(args: list[str], env: dict, log: Path) -> int:
    with log.open("ab") as fh:
        return subprocess.call(
            [str(Path(sys.executable).parent / "airflow"), *args],
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )


def dag_run_state(env: dict) -> str:
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
    mine = [r for r in runs if str(r.get("logical_date", "")).startswith("2025-08-01")]
    return mine[0]["state"] if mine else "missing"


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
    wanted = {"customers": a.customers, "seed": a.seed, "month": "2025-07"}
    previous = json.loads(marker.read_text()) if marker.exists() else {}
    if previous.get("params") != wanted or not stack.crm_store.exists():
        print(f"[demo] generating sources: {a.customers} customers, July 2025 plus 3 months of history (seed {a.seed})")
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
        print(f"[demo] airflow dags test customer_performance {LOGICAL_DATE}  (log: {log.relative_to(ROOT)})")
        airflow(["dags", "test", "customer_performance", LOGICAL_DATE], env, log)
        state = dag_run_state(env)
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
