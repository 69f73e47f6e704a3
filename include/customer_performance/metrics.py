"""The defaults of every weight and threshold of the per-customer metrics, in one place.

A deployment changes them in its scorecard file (``scorecard.json`` in the package lists every key
with these values; the setting ``scorecard_config`` points at the deployment's own, which may give
only the keys it changes). ``scorecard.py`` reads and validates that file; the formulas in
``sql/customer_metrics.sql`` and ``churn.py`` read its values as bound parameters. The README's
metrics table documents the same definitions with their edge cases.
"""

from __future__ import annotations

DEFAULTS: dict[str, dict] = {
    # Engagement score 0-100: weighted percentile ranks (among the period's customers) of these
    # activity measures; a part is NULL when its source had no rows at all for the period, and the
    # weights are then re-normalised over the parts that remain.
    "engagement": {"weights": {"logins": 0.30, "features": 0.25, "session_minutes": 0.25, "interactions": 0.20}},
    # Activity level: high = engagement >= high_engagement and at least high_min_purchases
    # purchases in the period; low = engagement < low_engagement and no purchase; medium otherwise.
    "activity": {"high_engagement": 60.0, "high_min_purchases": 2, "low_engagement": 30.0},
    # Health score 0-100: weighted parts, re-normalised over the non-NULL ones:
    #   engagement    the engagement score
    #   retention     100 x (1 - churn probability)
    #   satisfaction  average satisfaction on its 1-10 scale mapped to 0-100
    #   support       100 x (1 - escalation rate)
    # Bands: green >= bands.green, yellow >= bands.yellow, red below. Trend: |score - last
    # month's| below trend_delta is "flat".
    "health": {
        "weights": {"engagement": 0.35, "retention": 0.30, "satisfaction": 0.20, "support": 0.15},
        "bands": {"green": 70.0, "yellow": 40.0},
        "trend_delta": 5.0,
    },
    # The one vocabulary of risk: a customer is "high risk" when its churn probability is at least
    # high_risk_churn (the KPI high_risk_customers); the "at-risk" segment is the high-risk customers
    # who have bought before and are not new; "likely to renew" is churn below renewal_likely_churn.
    # The red health band is a different, broader signal (engagement, satisfaction, support too).
    # The save list ("who to call"): the save_list_size high-risk customers still active (silent since
    # their last purchase for at most active_gaps times their usual gap between purchases, or
    # active_days, whichever is longer, and in the product within the last active_login_days; no
    # login on record: by the purchases alone) with the largest expected loss, each with at least 1
    # (reporting currency) to lose; the win-back list: the win_back_list_size high-risk customers no
    # longer active (most likely gone already) with the largest value if won back.
    "risk": {
        "high_risk_churn": 0.6,
        "renewal_likely_churn": 0.3,
        "active_gaps": 1.5,
        "active_days": 7,
        "active_login_days": 7,
        "save_list_size": 50,
        "win_back_list_size": 50,
    },
    # Segments, in order of precedence (the first that applies wins): new (registered inside the
    # report month), at-risk (above), VIP (the top vip_share of the period's customers by revenue,
    # revenue > 0), regular (everyone else).
    "segments": {"vip_share": 0.05},
    # Pareto: the top share of the customers who bought (revenue > 0) by revenue, and the share of
    # the positive revenue they hold (KPI top20_revenue_share).
    "pareto": {"top_share": 0.2},
    # Churn and lifetime value (churn.py, churn_model.py). The churn probability is the probability
    # of no completed purchase in the no_purchase_days after the period. horizon_days of expected
    # purchases and CLV; the MBG/NBD fit needs min_repeat_customers customers with repeat purchases,
    # else (or when the fit fails) the recency ratio, with fallback_gap_days as the usual gap of a
    # one-time buyer; penalizer is the fit's L2 penalty. The gradient-boosted model trains on the
    # last training_months published months whose outcome is known (at least min_training_rows
    # rows, at most max_training_rows sampled), else the BTYD probability is published.
    "churn": {
        "no_purchase_days": 90,
        "horizon_days": 365,
        "min_repeat_customers": 50,
        "fallback_gap_days": 30.0,
        "penalizer": 0.001,
        "training_months": 6,
        "min_training_rows": 2000,
        "max_training_rows": 400000,
    },
}

# Currency conversion: the last rate published on or before the transaction's date, if it is at
# most this many days old (weekends and holidays); a sale needing an older one fails the run (fx.py).
# The default; the setting fx_max_staleness_days overrides it.
FX_MAX_STALENESS_DAYS = 7

# Alerts (defaults; a deployment overrides them in the settings, CUSTOMER_PERFORMANCE_ALERT_*).
ALERT_REGION_REVENUE_DROP = 0.20  # a region's revenue down more than 20 % against last month, prorated
ALERT_REVENUE_AT_RISK_SHARE = 0.25  # more than 25 % of the period's revenue at risk
ALERT_COMPLETENESS_MIN = 0.95  # a required field filled in fewer than 95 % of rows

# Satisfaction scale; scores outside it are ignored in averages (the quality gate reports them).
SATISFACTION_MIN, SATISFACTION_MAX = 1, 10

# The back-test (sql/backtest.sql) scores the predictions published this many months before the
# report month against what the customers did since: the following month, and the following three.
BACKTEST_HORIZONS_MONTHS = (1, 3)
