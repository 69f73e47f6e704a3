"""Churn probability and 12-month CLV per customer from the lifetime purchase history.

Model: the modified beta-geometric/NBD (MBG/NBD, ``lifetimes.ModifiedBetaGeoFitter``), fitted on
(frequency = repeat purchase days, recency = days from first to last purchase, T = days from first
purchase to the period end). Unlike BG/NBD, MBG/NBD lets a one-time buyer be dead, so its
P(alive) is not stuck at 1. churn = 1 - P(alive); expected purchases over ``CLV_HORIZON_DAYS``
times the customer's lifetime average order value is the CLV.

Fallback (too few repeat buyers, a failed or degenerate fit): the recency ratio. With the
customer's typical gap between purchase days g (recency / frequency, or ``CHURN_FALLBACK_GAP_DAYS``
for one-time buyers) and s days of silence since the last purchase, r = s / g and
churn = r / (1 + r): 0.5 after exactly one usual gap of silence, towards 1 as silence grows.
Expected purchases = (1 - churn) x horizon / g. Customers who never bought have no churn
probability (NULL) and a CLV of 0.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np

from include.customer_performance.metrics import (
    CHURN_FALLBACK_GAP_DAYS,
    CHURN_MIN_REPEAT_CUSTOMERS,
    CHURN_PENALIZER,
    CLV_HORIZON_DAYS,
)

log = logging.getLogger(__name__)


def recency_ratio(frequency: np.ndarray, recency: np.ndarray, T: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # noqa: N803
    """The fallback: (churn probability, expected purchases over the horizon)."""
    gap = np.where(frequency > 0, recency / np.maximum(frequency, 1), CHURN_FALLBACK_GAP_DAYS)
    gap = np.maximum(gap, 1.0)
    ratio = np.maximum(T - recency, 0) / gap
    churn = ratio / (1 + ratio)
    return churn, (1 - churn) * CLV_HORIZON_DAYS / gap


def mbg_nbd(frequency: np.ndarray, recency: np.ndarray, T: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # noqa: N803
    """MBG/NBD: (churn probability, expected purchases over the horizon); raises if the fit fails.

    Fitted and evaluated once per distinct (frequency, recency, T), weighted by the number of
    customers with it (Fader and Hardie's condensed RFM matrix): the same likelihood, the same
    parameters, in a fraction of the time (whole days give a few thousand patterns per million
    customers)."""
    from lifetimes import ModifiedBetaGeoFitter

    patterns, inverse, counts = np.unique(
        np.column_stack([frequency, recency, T]), axis=0, return_inverse=True, return_counts=True
    )
    f, r, t = patterns.T
    model = ModifiedBetaGeoFitter(penalizer_coef=CHURN_PENALIZER)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(f, r, t, weights=counts)
        alive = np.asarray(model.conditional_probability_alive(f, r, t), dtype=float)
        expected = np.asarray(
            model.conditional_expected_number_of_purchases_up_to_time(CLV_HORIZON_DAYS, f, r, t), dtype=float
        )
    params = np.asarray(list(model.params_.values), dtype=float)
    if not (np.all(np.isfinite(params)) and np.all(np.isfinite(alive)) and np.all(np.isfinite(expected))):
        raise ValueError(f"degenerate MBG/NBD fit: {dict(model.params_)}")
    inverse = inverse.reshape(-1)
    return 1 - alive[inverse], expected[inverse]


def churn_and_clv(
    frequency: np.ndarray,
    recency: np.ndarray,
    T: np.ndarray,  # noqa: N803
    avg_order_value: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """(churn, expected purchases, CLV, method) for customers with at least one purchase."""
    repeat_buyers = int(np.sum(frequency > 0))
    method = "mbg_nbd"
    if repeat_buyers < CHURN_MIN_REPEAT_CUSTOMERS:
        method = "recency_ratio"
        log.info("churn: %s repeat buyers (< %s): using the recency ratio", repeat_buyers, CHURN_MIN_REPEAT_CUSTOMERS)
        churn, expected = recency_ratio(frequency, recency, T)
    else:
        try:
            churn, expected = mbg_nbd(frequency, recency, T)
        except Exception as exc:  # any fit failure falls back, with the reason in the log
            log.warning("churn: MBG/NBD fit failed (%s); using the recency ratio", exc)
            method = "recency_ratio"
            churn, expected = recency_ratio(frequency, recency, T)
    churn = np.clip(churn, 0.0, 1.0)
    return churn, expected, expected * avg_order_value, method
