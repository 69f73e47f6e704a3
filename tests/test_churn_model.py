"""The gradient-boosted churn model (churn_model.py) on a published history in a real PostgreSQL:
which months it trains on, how it labels them (the 90 days after each month end, read from the
months published after it), that it must beat the BTYD probability on the held-out month to be
published, the reasons in words, the lists, and the fallback when the history is too short.

The history is simulated here: customers buy at their own rate until they leave (a date of their
own, or never); in the 60 days before leaving they barely log in. Days since the last purchase says
little about who leaves within 90 days of a month end; the logins say much: a model that learns
from the history must find them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np
import psycopg
import pytest

from include.customer_performance import churn_model, glossary
from include.customer_performance.churn import DEFAULT_SETTINGS
from include.customer_performance.period import add_months

COLUMNS = (
    "customer_id bigint, report_month date, period_end date, first_purchase timestamptz, transaction_count bigint,"
    " purchase_days bigint, revenue numeric, refunds numeric, lifetime_first_purchase timestamptz,"
    " lifetime_purchases bigint, lifetime_revenue numeric, days_since_last_purchase integer,"
    " churn_probability_btyd numeric, p_alive numeric, expected_purchases_3m numeric, login_count bigint,"
    " session_minutes numeric, features_used bigint, days_since_last_login integer, engagement_score numeric,"
    " interaction_count bigint, ticket_count bigint, escalation_rate numeric, avg_satisfaction numeric"
)
NAMES = [c.split()[0] for c in COLUMNS.split(", ")]
START = date(2024, 12, 1)


@dataclass
class Period:
    report_month: date
    end: date


@dataclass
class FakeRun:
    period: Period


def simulate(customers: int, months: list[date], seed: int = 3) -> tuple[dict[date, list[tuple]], dict]:
    """Per month, the rows a month-close run would have published; and each customer's purchases."""
    rng = np.random.default_rng(seed)
    horizon = (add_months(months[-1], 1) - START).days + 200
    leave = np.where(rng.random(customers) < 0.5, rng.integers(30, horizon, customers), 10**6)
    rate = rng.uniform(1, 8, customers) / 30
    buys = {}
    for c in range(customers):
        days = np.cumsum(rng.exponential(1 / rate[c], 200)).astype(int)
        buys[c + 1] = sorted({0, *[int(d) for d in days if d < min(leave[c], horizon)]})  # day 0: the first
    out = {}
    for m in months:
        lo, hi = (m - START).days, (add_months(m, 1) - START).days
        rows = []
        for c in range(customers):
            cid = c + 1
            inside = [d for d in buys[cid] if lo <= d < hi]
            before = [d for d in buys[cid] if d < hi]
            leaving_soon = 0 <= leave[c] - hi < 60
            logins = int(rng.poisson(1 if leaving_soon or leave[c] < hi else 10))
            since = hi - 1 - before[-1]
            btyd = 1 - math.exp(-since / 40)  # a recency-only probability, as the BTYD one is
            first = datetime.combine(START + timedelta(days=inside[0]), datetime.min.time(), UTC) if inside else None
            rows.append(
                (cid, m, add_months(m, 1), first, len(inside), len(inside), 10.0 * len(inside), 0,
                 datetime.combine(START, datetime.min.time(), UTC), len(before), 10.0 * len(before), since,
                 round(btyd, 4), round(1 - btyd, 4), None, logins, None, None, None, None, None, None, None, None)
            )  # fmt: skip
        out[m] = rows
    return out, buys


def load(conn, schema: str, table: str, rows: list[tuple]) -> None:
    with conn.cursor() as cur, cur.copy(f"COPY {schema}.{table} ({', '.join(NAMES)}) FROM STDIN") as copy:
        for r in rows:
            copy.write_row(r)


@pytest.fixture
def history(pg_db):
    """January to June 2025 published closed, July's customer_metrics staged (schema stage)."""
    months = [date(2025, m, 1) for m in range(1, 8)]
    rows, buys = simulate(3000, months)
    with psycopg.connect(pg_db) as conn:
        conn.execute("CREATE SCHEMA analytics; CREATE SCHEMA stage")
        conn.execute(f"CREATE TABLE analytics.customer_performance ({COLUMNS})")
        conn.execute(f"CREATE TABLE stage.customer_metrics ({COLUMNS})")
        for m in months[:-1]:
            load(conn, "analytics", "customer_performance", rows[m])
        load(conn, "stage", "customer_metrics", rows[months[-1]])
        conn.commit()
    return pg_db, buys


def bought_within(buys: dict, month: date, days: int, through: date) -> set[int]:
    """Worked out here: the customers with a purchase in [month end, month end + days), seen through ``through``."""
    lo = (add_months(month, 1) - START).days
    hi = min(lo + days, (through - START).days)
    return {c for c, ds in buys.items() if any(lo <= d < hi for d in ds)}


def test_only_months_whose_outcome_is_known_are_trained_on():
    months = [date(2025, m, 1) for m in range(1, 7)]
    # 90 days after the end of April (1 May) is 30 July, inside July: known by 1 August; May's is not
    assert churn_model.matured(months, date(2025, 7, 1), date(2025, 8, 1), 90) == months[:4]
    # a month missing in between: the months before it cannot be labelled
    assert churn_model.matured([*months[:2], *months[3:]], date(2025, 7, 1), date(2025, 8, 1), 90) == [date(2025, 4, 1)]


def test_labels_are_the_90_days_after_each_month_end(history):
    dsn, buys = history
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        for m in (date(2025, 1, 1), date(2025, 4, 1)):
            until = datetime.combine(add_months(m, 1) + timedelta(days=90), datetime.min.time(), UTC)
            got = churn_model._bought(
                cur, "analytics", m, until, psycopg.sql.SQL("stage.customer_metrics"), date(2025, 7, 1)
            )
            assert got == bought_within(buys, m, 90, date(2025, 8, 1)), m


def test_the_model_learns_what_recency_misses_and_says_why(history):
    dsn, _ = history
    run = FakeRun(Period(date(2025, 7, 1), date(2025, 8, 1)))
    with psycopg.connect(dsn) as conn:
        out = churn_model.train_and_score(
            conn, run, "analytics", DEFAULT_SETTINGS, psycopg.sql.SQL("stage.customer_metrics")
        )
    assert out["method"] == "gradient_boosting", out
    assert out["training_months"] == ["2025-01-01", "2025-02-01", "2025-03-01", "2025-04-01"]
    held = out["holdout"]
    assert held["month"] == "2025-04-01"
    assert held["model_auc"] > held["btyd_auc"] + 0.03 and held["model_auc"] > held["recency_auc"] + 0.03
    assert "login_count" in out["top_features"][:2]
    ids, p, booster, x = out["scores"]
    assert len(ids) == 3000 and np.all((p >= 0) & (p <= 1))
    # the customers barely logging in are the risky ones, and their reason says so in words
    logins = x[:, churn_model.NAMES.index("login_count")]
    assert p[logins <= 2].mean() > p[logins >= 8].mean() + 0.3
    rows = np.flatnonzero((p > 0.6) & (logins <= 2))[:20]
    said = churn_model.reasons(booster, x, rows)
    assert all(s and "login" in s for s in said), said
    assert not any(any(ch.isdigit() and "." in s for ch in s) and "churn" in s for s in said)  # never the score


def test_a_short_history_publishes_the_btyd_probability(history):
    dsn, _ = history
    with psycopg.connect(dsn) as conn:
        conn.execute("DELETE FROM analytics.customer_performance WHERE report_month < '2025-04-01'")
        conn.commit()
        run = FakeRun(Period(date(2025, 7, 1), date(2025, 8, 1)))
        out = churn_model.train_and_score(
            conn, run, "analytics", DEFAULT_SETTINGS, psycopg.sql.SQL("stage.customer_metrics")
        )
    assert out["method"] == "btyd" and "scores" not in out
    assert out["fallback_reason"] == "1 published month(s) with a known outcome (needs 2)"


def test_the_lists():
    churn = np.array([0.9, 0.7, 0.65, 0.2, 0.95, 0.99, 0.61, 0.1])
    # still active: silent for at most 1.5 usual gaps, or 7 days (NaN: never bought), and a login
    # within 7 days (NaN: none on record, judged by the purchases alone)
    logins = np.array([0, np.nan, 7, 3, 1, 2, 5, 1.0])
    active = churn_model.still_active(
        np.array([5, 40, 3, 2, 200, 95, 44, 300.0]), np.array([2, 30, 1, 1, 45, 30, 30, 90]), logins, 1.5, 7, 7
    )
    assert active.tolist() == [True, True, True, True, False, False, True, False]
    nan2 = np.array([np.nan, np.nan])
    assert churn_model.still_active(np.array([np.nan, 8.0]), nan2, nan2, 1.5, 7, 7).tolist() == [False, False]
    # bought within its rhythm but away from the product for 8 days: no longer active
    assert churn_model.still_active(np.array([5.0]), np.array([10.0]), np.array([8.0]), 1.5, 7, 7).tolist() == [False]
    assert glossary.active_text(1.5, 7, 7) == (
        "silent since the last purchase for at most 1.5 times the usual gap between purchases, or 7 days,"
        " and in the product within the last 7 days"
    )
    assert glossary.active_text(2, 10, None) == (
        "silent since the last purchase for at most 2 times the usual gap between purchases, or 10 days"
    )
    value = np.array([100.0, 500.0, 1.0, 900.0, 50.0, 700.0, 300.0, 80.0])
    loss, name, rank = churn_model.lists(churn, active, value, high_risk=0.6, save_size=2, win_back_size=5)
    assert loss.tolist() == pytest.approx([90, 350, 0.65, 180, 47.5, 693, 183, 8])
    # save: active, high risk, at least 1 to lose (not #3), the largest loss first, two of them
    assert [(i, name[i], rank[i]) for i in np.flatnonzero(name == "save")] == [(1, "save", 1), (6, "save", 2)]
    # win back: high risk and no longer active, the most valuable first (#7 is low risk)
    assert [(i, rank[i]) for i in np.flatnonzero(name == "win-back")] == [(4, 2), (5, 1)]
    assert name[0] is None and name[3] is None and name[7] is None  # 0: third by loss; 3, 7: low risk
