"""`make bench-churn`: does the published churn probability beat what a team would use without it?
Scored against the generator's ground truth (dev/generate.sql: lives that are not the model's own
process), which the pipeline never reads.

    python bench/churn.py --customers 100000

In one run it
1. generates N customers acquired over two years, with their lives (July 2025 and 24 months of
   history; the ground truth covers 120 days after July), reusing the sources when N and the seed
   match;
2. runs the DAG for July 2024 to July 2025 with `airflow dags test`, as a deployment that
   backfilled a year would have published them: July's run trains the gradient-boosted model on
   the last six months whose 90 days after are known by then (November to April) and publishes its
   churn probability;
3. scores July's published figures against the truth, over the customers who had bought by the end
   of July, for the event "no completed purchase in the 90 days after July", side by side for the
   published churn probability, the BTYD probability of the same event (churn_probability_btyd),
   plain recency (days since the last purchase) and the health score (lower is riskier): ROC AUC on
   all customers and on those truly active at the prediction date (not dropped out, or back),
   expected calibration error (deciles; the two probabilities), and the save list's precision (the
   share of its customers who made no purchase), the share of it already gone at the prediction
   date and the share of the expected loss it holds; the BTYD probability's own save list is drawn
   by the same rule (churn_model.lists) for comparison. Goals: the published score beats recency by
   0.05 AUC among active customers and 0.02 on all; calibration error <= 0.05; at most 10 % of the
   save list already gone.
Also: expected purchases over the next 91 days against the purchase days really made then.
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

from dev.churn_eval import calibration, calibration_error, ground_truth, roc_auc  # noqa: E402
from dev.stack import Stack, checkout_name, pg_dsn  # noqa: E402
from include.customer_performance import churn_model, metrics  # noqa: E402

# July 2024 to July 2025, as a deployment that backfilled a year would have published them
LOGICAL_DATES = tuple(f"{2024 + (m > 12)}-{(m - 1) % 12 + 1:02d}-01T02:00:00+00:00" for m in range(8, 21))
PERIOD_END = date(2025, 8, 1)
GOALS = {"auc_active": 0.05, "auc_all": 0.02, "ece": 0.05, "gone": 0.10}


def run_dag(stack: Stack, env: dict, logical_date: str) -> float:
    airflow = str(Path(sys.executable).parent / "airflow")
    t0 = time.monotonic()
    out = subprocess.run(
        [airflow, "dags", "test", "customer_performance", logical_date],
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


COLUMNS = (
    "churn_probability",
    "churn_probability_btyd",
    "days_since_last_purchase",
    "health_score",
    "p_alive",
    "value_if_kept",
    "expected_loss",
    "churn_list",
    "expected_purchases_3m",
    "churn_method",
    "usual_gap_days",
    "days_since_last_login",
)


def published(stack: Stack) -> tuple[dict[int, dict], dict]:
    import psycopg

    with psycopg.connect(pg_dsn(stack.analytics_db)) as conn:
        rows = conn.execute(
            "SELECT customer_id, " + ", ".join(COLUMNS) + " FROM analytics.customer_performance"
            " WHERE report_month = '2025-07-01' AND churn_probability IS NOT NULL"
        ).fetchall()
        (model,) = conn.execute(
            "SELECT churn_model FROM analytics.pipeline_runs WHERE report_month = '2025-07-01'"
            " ORDER BY period_end DESC LIMIT 1"
        ).fetchone()
    return {r[0]: dict(zip(COLUMNS, r[1:], strict=True)) for r in rows}, model


def truth(stack: Stack) -> dict[int, tuple[bool, int, bool]]:
    import psycopg

    with psycopg.connect(pg_dsn(stack.customer_db)) as conn:
        return ground_truth(conn, PERIOD_END)


def _f(rows: list[dict], key: str, default: float = np.nan) -> np.ndarray:
    return np.array([default if r[key] is None else float(r[key]) for r in rows])


def score(pub: dict[int, dict], real: dict[int, tuple[bool, int, bool]], card: dict) -> dict:
    ids = [c for c in pub if c in real]
    rows = [pub[c] for c in ids]
    event = np.array([real[c][0] for c in ids])
    bought = np.array([real[c][1] for c in ids], dtype=float)
    gone = np.array([real[c][2] for c in ids])
    active = ~gone
    scores = {
        "published": _f(rows, "churn_probability"),
        "BTYD": _f(rows, "churn_probability_btyd"),
        "recency": _f(rows, "days_since_last_purchase", 1e6),
        "health score": -_f(rows, "health_score", 0.0),
    }
    out = {"customers": len(ids), "event": int(event.sum()), "gone": int(gone.sum()), "active": int(active.sum())}
    value = _f(rows, "value_if_kept", 0.0)
    risk = card["risk"]
    still = churn_model.still_active(
        _f(rows, "days_since_last_purchase"),
        _f(rows, "usual_gap_days"),
        _f(rows, "days_since_last_login"),
        risk["active_gaps"],
        risk["active_days"],
        risk.get("active_login_days", metrics.DEFAULTS["risk"]["active_login_days"]),
    )
    for name, s in scores.items():
        r = {"auc_all": roc_auc(s, event), "auc_active": roc_auc(s[active], event[active])}
        if name in ("published", "BTYD"):
            r["ece"] = calibration_error(s, event)
            r["calibration"] = calibration(s, event)
            loss, lists_, _ = churn_model.lists(
                s, still, value, risk["high_risk_churn"], risk["save_list_size"], risk["win_back_list_size"]
            )
            on = lists_ == "save"
            r["save_list"] = int(on.sum())
            r["precision"] = float(event[on].mean()) if on.any() else float("nan")
            r["already_gone"] = float(gone[on].mean()) if on.any() else float("nan")
            r["loss_share"] = float(loss[on].sum() / loss.sum()) if loss.sum() else float("nan")
            # the same rule with a list four times as long: how far down the list holds
            _, longer, _ = churn_model.lists(
                s, still, value, risk["high_risk_churn"], 4 * risk["save_list_size"], risk["win_back_list_size"]
            )
            on = longer == "save"
            r["longer_list"] = {
                "size": int(on.sum()),
                "precision": float(event[on].mean()) if on.any() else float("nan"),
                "already_gone": float(gone[on].mean()) if on.any() else float("nan"),
            }
        out[name] = r
    expected = _f(rows, "expected_purchases_3m")
    out["expected_purchases"] = {
        "expected": float(np.nansum(expected)),
        "actual": float(bought.sum()),
        "mae": float(np.nanmean(np.abs(expected - bought))),
    }
    out["methods"] = sorted({r["churn_method"] for r in rows})
    return out


def _n(v, f: str = ".3f") -> str:
    return "n/a" if v is None or (isinstance(v, float) and np.isnan(v)) else format(v, f)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--customers", type=int, default=100_000)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--score-only", action="store_true", help="score what the last run published, without running")
    p.add_argument(
        "--months",
        type=int,
        default=len(LOGICAL_DATES),
        help="publish only the last MONTHS up to July (5: March to July, the fewest July's model trains on)",
    )
    a = p.parse_args()
    work = ROOT / ".bench-churn"
    stack = Stack(checkout_name("cp_bchurn"), work)
    work.mkdir(exist_ok=True)
    marker = work / "generated.json"
    wanted = {"customers": a.customers, "seed": a.seed, "generator": "lives-6"}
    previous = json.loads(marker.read_text()) if marker.exists() else {}
    if a.score_only:
        planted = previous["planted"]
    elif previous.get("params") != wanted or not stack.crm_store.exists():
        print(f"[churn] generating {a.customers:,} customers with their lives (July 2025, 24 months of history)...")
        stack.create_databases()
        planted = stack.generate(a.customers, "2025-07", seed=a.seed)
        marker.write_text(json.dumps({"params": wanted, "planted": planted}))
        print(f"[churn] generated in {planted['seconds']:.0f}s", flush=True)
    else:
        planted = previous["planted"]
        stack.create_databases(keep_sources=True)  # a fresh analytics database: the months published anew
    lives = planted["lives"]
    print(
        f"[churn] sources: {lives['buyers']:,} buyers by the end of July, {lives['gone_at_period_end']:,} gone by"
        f" then, {lives['no_purchase_next_90_days']:,} without a purchase in the 90 days after",
        flush=True,
    )
    real = truth(stack)
    seconds = {}
    if not a.score_only:
        env = stack.prepare_airflow(work / "airflow")
        stack.start_services()
    try:
        for logical_date in () if a.score_only else LOGICAL_DATES[-a.months :]:
            print(f"[churn] running the DAG for {logical_date[:7]} (the month before)...", flush=True)
            seconds[logical_date[:7]] = run_dag(stack, env, logical_date)
    finally:
        if not a.score_only:
            stack.stop_services()
    pub, model = published(stack)
    card = model.get("scorecard") or metrics.DEFAULTS
    r = score(pub, real, card)
    m = model.get("model") or {}
    print()
    print(f"Churn benchmark: {a.customers:,} customers, July 2025 (seed {a.seed}); methods published: {r['methods']}")
    print(
        f"event: no completed purchase in the 90 days after July; scored: {r['customers']:,} customers who had"
        f" bought by then, {r['event']:,} ({r['event'] / r['customers']:.1%}) without a purchase; {r['active']:,}"
        f" truly active at the prediction date, {r['gone']:,} already gone"
    )
    if m:
        print(
            f"model: {m.get('method')}, trained on {m.get('training_rows') or 0:,} rows of"
            f" {', '.join(m.get('training_months') or [])}; held-out {m.get('holdout', {}).get('month')}: AUC"
            f" {m.get('holdout', {}).get('model_auc')} (BTYD {m.get('holdout', {}).get('btyd_auc')}, recency"
            f" {m.get('holdout', {}).get('recency_auc')}); training {m.get('training_seconds')} s, scoring"
            f" {m.get('scoring_seconds')} s, reasons {m.get('reasons_seconds')} s"
            + (f"; fallback: {m['fallback_reason']}" if m.get("fallback_reason") else "")
        )
    print(
        f"\n{'':14}{'AUC all':>9}{'AUC active':>12}{'calib. err':>12}{'save list':>11}{'precision':>11}"
        f"{'gone':>7}{'loss share':>12}"
    )
    for name in ("published", "BTYD", "recency", "health score"):
        x = r[name]
        print(
            f"{name:<14}{_n(x['auc_all']):>9}{_n(x['auc_active']):>12}{_n(x.get('ece')):>12}"
            f"{_n(x.get('save_list'), 'd') if 'save_list' in x else 'n/a':>11}{_n(x.get('precision'), '.1%'):>11}"
            f"{_n(x.get('already_gone'), '.1%'):>7}{_n(x.get('loss_share'), '.2%'):>12}"
        )
    pu, rec = r["published"], r["recency"]
    checks = {
        f"published beats recency by >= {GOALS['auc_active']} AUC among active customers": pu["auc_active"]
        - rec["auc_active"]
        >= GOALS["auc_active"],
        f"published beats recency by >= {GOALS['auc_all']} AUC on all": pu["auc_all"] - rec["auc_all"]
        >= GOALS["auc_all"],
        f"calibration error <= {GOALS['ece']}": pu["ece"] <= GOALS["ece"],
        f"at most {GOALS['gone']:.0%} of the save list already gone": pu["already_gone"] <= GOALS["gone"],
    }
    print()
    for what, ok in checks.items():
        print(f"  [{'met' if ok else 'NOT MET'}] {what}")
    longer = pu["longer_list"]
    print(
        f"  (a save list of {longer['size']} by the same rule: precision {_n(longer['precision'], '.1%')},"
        f" already gone {_n(longer['already_gone'], '.1%')})"
    )
    print("\nreliability of the published probability (decile: mean predicted -> observed):")
    print("  " + ", ".join(f"{p_:.2f}->{o:.2f}" for _, p_, o in pu["calibration"]))
    e = r["expected_purchases"]
    print(
        f"expected purchase days over the next 91 days: {e['expected']:,.0f} against {e['actual']:,.0f} made"
        f" ({e['expected'] / e['actual']:.2f}), MAE {e['mae']:.2f} per customer"
    )
    print("DAG run seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in seconds.items()))
    (work / "result.json").write_text(
        json.dumps({"customers": a.customers, "results": r, "model": m, "seconds": seconds}, indent=2, default=str)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
