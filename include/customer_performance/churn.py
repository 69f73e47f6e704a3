"""The buy-till-you-die (BTYD) figures per customer from the lifetime history: the probability of
no completed purchase in the next ``churn.no_purchase_days`` (the churn event), P(alive), expected
purchases and the 12-month CLV. The published churn probability is the gradient-boosted model's
(churn_model.py) when it has history to learn from; this one is its fallback, its baseline and one
of its inputs.

Model: the modified beta-geometric/NBD (MBG/NBD, ``lifetimes.ModifiedBetaGeoFitter``), fitted on
(frequency x = repeat purchase days, recency = days from first to last purchase, T = days from first
purchase to the period end). Unlike BG/NBD, MBG/NBD lets a one-time buyer be dead, so its P(alive)
is not stuck at 1. A customer alive makes no purchase in the next t days with probability
((alpha + T) / (alpha + T + t))^(r + x) (its gamma-Poisson rate, updated by its history), and a
customer drops out only after a purchase, so

    P(no purchase in t days) = (1 - P(alive)) + P(alive) x ((alpha + T) / (alpha + T + t))^(r + x).

Expected purchases (purchase days) over the scorecard's ``churn.horizon_days`` times the customer's
lifetime revenue per purchase day is the CLV; divided by P(alive) (a customer gone buys nothing,
so E[X] = P(alive) x E[X | alive]) it is the value if kept. The expected purchases over the next month and the next
three (``HORIZONS``) are what the back-test scores.

Fallback (fewer than ``churn.min_repeat_customers`` repeat buyers, a failed or degenerate fit): the
recency ratio. With the customer's typical gap between purchase days g (recency / frequency, or
``churn.fallback_gap_days`` for one-time buyers) and s days of silence since the last purchase,
r = s / g and P(alive) = 1 / (1 + r): 0.5 after exactly one usual gap of silence. Expected purchases
over h days = P(alive) x h / g, and P(no purchase in t days) = (1 - P(alive)) + P(alive) x exp(-t / g).
Customers who never bought have no churn probability (NULL) and a CLV of 0.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field

import numpy as np

from include.customer_performance import metrics

log = logging.getLogger(__name__)

DAYS_PER_MONTH = 365.25 / 12
# the expected-purchases horizons the back-test scores: name -> days
HORIZONS = {"expected_purchases_1m": DAYS_PER_MONTH, "expected_purchases_3m": 3 * DAYS_PER_MONTH}


@dataclass(frozen=True)
class ChurnSettings:
    """The scorecard's ``churn`` keys (metrics.DEFAULTS explains them)."""

    no_purchase_days: int
    horizon_days: int
    min_repeat_customers: int
    fallback_gap_days: float
    penalizer: float
    training_months: int
    min_training_rows: int
    max_training_rows: int

    @classmethod
    def of(cls, card) -> ChurnSettings:
        return cls(**card.get("churn"))


DEFAULT_SETTINGS = ChurnSettings(**metrics.DEFAULTS["churn"])


@dataclass
class Fit:
    """A fit's outputs per customer, and how it was made."""

    alive: np.ndarray  # P(alive)
    no_purchase: np.ndarray  # P(no completed purchase in the next no_purchase_days)
    expected: dict[str, np.ndarray]  # "expected_purchases_12m" and HORIZONS' names -> per customer
    method: str
    params: dict[str, float] = field(default_factory=dict)  # the MBG/NBD's r, alpha, a, b
    reason: str | None = None  # why the fallback ran


def _horizons(cfg: ChurnSettings) -> dict[str, float]:
    return {"expected_purchases_12m": float(cfg.horizon_days), **HORIZONS}


def recency_ratio(frequency, recency, T, cfg: ChurnSettings = DEFAULT_SETTINGS) -> Fit:  # noqa: N803
    """The fallback."""
    gap = np.where(frequency > 0, recency / np.maximum(frequency, 1), cfg.fallback_gap_days)
    gap = np.maximum(gap, 1.0)
    ratio = np.maximum(T - recency, 0) / gap
    alive = 1 / (1 + ratio)
    no_purchase = (1 - alive) + alive * np.exp(-cfg.no_purchase_days / gap)
    expected = {k: alive * days / gap for k, days in _horizons(cfg).items()}
    return Fit(alive, no_purchase, expected, "recency_ratio")


def mbg_nbd(frequency, recency, T, cfg: ChurnSettings = DEFAULT_SETTINGS) -> Fit:  # noqa: N803
    """MBG/NBD; raises if the fit fails.

    Fitted and evaluated once per distinct (frequency, recency, T), weighted by the number of
    customers with it (Fader and Hardie's condensed RFM matrix): the same likelihood, the same
    parameters, in a fraction of the time (whole days give a few thousand patterns per million
    customers)."""
    from lifetimes import ModifiedBetaGeoFitter

    patterns, inverse, counts = np.unique(
        np.column_stack([frequency, recency, T]), axis=0, return_inverse=True, return_counts=True
    )
    f, r, t = patterns.T
    model = ModifiedBetaGeoFitter(penalizer_coef=cfg.penalizer)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(f, r, t, weights=counts)
        alive = np.asarray(model.conditional_probability_alive(f, r, t), dtype=float)
        expected = {
            k: np.asarray(model.conditional_expected_number_of_purchases_up_to_time(days, f, r, t), dtype=float)
            for k, days in _horizons(cfg).items()
        }
    params = {k: float(v) for k, v in dict(model.params_).items()}
    quiet = ((params["alpha"] + t) / (params["alpha"] + t + cfg.no_purchase_days)) ** (params["r"] + f)
    no_purchase = (1 - alive) + alive * quiet
    finite = all(np.all(np.isfinite(v)) for v in (list(params.values()), alive, no_purchase, *expected.values()))
    if not finite:
        raise ValueError(f"degenerate MBG/NBD fit: {params}")
    inverse = inverse.reshape(-1)
    each = {k: v[inverse] for k, v in expected.items()}
    return Fit(alive[inverse], no_purchase[inverse], each, "mbg_nbd", params)


def fit(frequency, recency, T, cfg: ChurnSettings = DEFAULT_SETTINGS) -> Fit:  # noqa: N803
    """The model for customers with at least one purchase: MBG/NBD, or the recency ratio."""
    repeat_buyers = int(np.sum(frequency > 0))
    if repeat_buyers < cfg.min_repeat_customers:
        reason = f"{repeat_buyers} repeat buyers (< {cfg.min_repeat_customers})"
        log.info("churn: %s: using the recency ratio", reason)
        out = recency_ratio(frequency, recency, T, cfg)
    else:
        try:
            return _clipped(mbg_nbd(frequency, recency, T, cfg))
        except Exception as exc:  # any fit failure falls back, with the reason in the log
            reason = f"MBG/NBD fit failed ({type(exc).__name__}: {exc})"[:300]
            log.warning("churn: %s; using the recency ratio", reason)
            out = recency_ratio(frequency, recency, T, cfg)
    out.reason = reason
    return _clipped(out)


def _clipped(out: Fit) -> Fit:
    out.alive = np.clip(out.alive, 0.0, 1.0)
    out.no_purchase = np.clip(out.no_purchase, 0.0, 1.0)
    return out


def value_if_kept(expected_12m: np.ndarray, alive: np.ndarray, order_value: np.ndarray) -> np.ndarray:
    """The value a customer brings over the CLV horizon if it stays: E[purchases | alive] x its
    revenue per purchase day (``order_value``), E[purchases | alive] = E[purchases] / P(alive)
    (P(alive) floored at 0.001, where the ratio is all noise)."""
    return expected_12m / np.maximum(alive, 1e-3) * order_value
