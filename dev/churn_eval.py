"""How well churn predictions match the truth: the figures the churn benchmark, the demo summary and
the tests compute, independently of the pipeline's SQL (bench/churn.py, dev/demo.py,
tests/test_churn.py).

``roc_auc`` is the Mann-Whitney statistic with average ranks for ties (the probability that a
churned customer is scored above a retained one, ties counting half), the same definition as
scikit-learn's ``roc_auc_score``; ``features`` reads the lifetime purchase summary the pipeline
fits on, straight from the sales database, so that the fallback and the model can be scored on the
same customers.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np

from include.customer_performance import churn_model


def roc_auc(scores, labels) -> float:
    """ROC AUC of ``scores`` for the boolean ``labels`` (NaN when one class is empty): the package's
    own (churn_model.roc_auc, which the churn model's held-out check uses), so the benchmarks and the
    tests measure as the pipeline does; the SQL back-test is checked against it."""
    auc = churn_model.roc_auc(np.asarray(scores, dtype=float), np.asarray(labels, dtype=bool))
    return float("nan") if auc is None else auc


def calibration(scores, labels, bins: int = 10) -> list[tuple[int, float, float]]:
    """Per decile of ``scores`` (ties broken by position): (customers, mean score, observed rate)."""
    s = np.asarray(scores, dtype=float)
    y = np.asarray(labels, dtype=float)
    order = np.argsort(s, kind="stable")
    return [(len(part), float(s[part].mean()), float(y[part].mean())) for part in np.array_split(order, bins)]


def ground_truth(conn, period_end: date) -> dict[int, tuple[bool, int, bool]]:
    """From the generator's ``ground_truth`` table (``conn``: the customer database), per customer
    who had bought before ``period_end``: (made no completed purchase in the 90 days after
    ``period_end``, the days it bought on in the 91 days after it, gone at ``period_end``: dropped
    out before it and not back by then)."""
    rows = conn.execute(
        "SELECT customer_id, no_purchase_next_90d, purchase_days_next_91d,"
        " coalesce(dropout_at < %s AND (back_at IS NULL OR back_at >= %s), false)"
        " FROM ground_truth WHERE first_purchase < %s",
        (period_end, period_end, period_end),
    ).fetchall()
    return {c: (bool(event), int(days), bool(gone)) for c, event, days, gone in rows}


def calibration_error(scores, labels, bins: int = 10) -> float:
    """Expected calibration error: over deciles of ``scores``, |mean score - observed rate| weighted
    by the decile's size."""
    parts = calibration(scores, labels, bins)
    n = sum(k for k, _, _ in parts)
    return float(sum(k * abs(p - o) for k, p, o in parts) / n) if n else float("nan")


def features(mysql_kwargs: dict, period_end: date) -> dict[int, tuple[float, float, float]]:
    """Per customer with a completed purchase before ``period_end``: (frequency, recency, T) in
    days, as the pipeline computes them (repeat purchase days, first to last purchase, first
    purchase to the period's last day)."""
    import MySQLdb

    conn = MySQLdb.connect(**mysql_kwargs)
    try:
        cur = conn.cursor()
        cur.execute(
            "SELECT customer_id, COUNT(DISTINCT DATE(order_date)) - 1, DATEDIFF(MAX(order_date), MIN(order_date)),"
            " DATEDIFF(%s, MIN(order_date)) FROM transactions WHERE order_date < %s AND status = 'completed'"
            " GROUP BY customer_id",
            (period_end - timedelta(days=1), period_end),
        )
        return {int(c): (float(f), float(r), float(t)) for c, f, r, t in cur.fetchall()}
    finally:
        conn.close()
