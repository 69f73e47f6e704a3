"""Every weight and threshold of the per-customer metrics, in one place.

The formulas live in ``sql/customer_metrics.sql`` (and, for churn and CLV, in ``churn.py``); they
read these values as bound parameters, so changing a number here changes the metric everywhere.
The README's metrics table documents the same definitions with their edge cases.
"""

from __future__ import annotations

# Engagement score 0-100: weighted percentile ranks (among the period's customers) of these
# activity measures; a part is NULL when its source had no rows at all for the period, and the
# weights are then re-normalised over the parts that remain.
ENGAGEMENT_WEIGHTS = {"logins": 0.30, "features": 0.25, "session_minutes": 0.25, "interactions": 0.20}

# Activity level from engagement and purchases.
ACTIVITY_HIGH_ENGAGEMENT = 60.0  # high: engagement >= 60 and at least 2 purchases in the period
ACTIVITY_HIGH_MIN_PURCHASES = 2
ACTIVITY_LOW_ENGAGEMENT = 30.0  # low: engagement < 30 and no purchase; medium otherwise

# Churn and lifetime value.
CHURN_MIN_REPEAT_CUSTOMERS = 50  # fewer customers with repeat purchases: use the fallback
CHURN_PENALIZER = 0.001  # L2 penalty of the MBG/NBD fit (lifetimes)
CHURN_FALLBACK_GAP_DAYS = 30.0  # typical gap between purchases when a customer has none of its own
CLV_HORIZON_DAYS = 365

# Segments, in order of precedence (the first that applies wins):
#   new      registered inside the report month
#   at-risk  has purchased before and churn probability >= SEGMENT_AT_RISK_CHURN
#   VIP      in the top SEGMENT_VIP_SHARE of the period's customers by revenue (revenue > 0)
#   regular  everyone else
SEGMENT_AT_RISK_CHURN = 0.6
SEGMENT_VIP_SHARE = 0.05

# Health score 0-100: weighted parts, re-normalised over the non-NULL ones:
#   engagement    the engagement score
#   retention     100 x (1 - churn probability)
#   satisfaction  average satisfaction on its 1-10 scale mapped to 0-100
#   support       100 x (1 - escalation rate)
HEALTH_WEIGHTS = {"engagement": 0.35, "retention": 0.30, "satisfaction": 0.20, "support": 0.15}
HEALTH_GREEN = 70.0  # green >= 70, yellow >= 40, red below
HEALTH_YELLOW = 40.0
HEALTH_TREND_DELTA = 5.0  # |score - previous month's| below this is "flat"

# Customers with churn below this are "likely to renew" (the KPI's renewal signal); at or above
# SEGMENT_AT_RISK_CHURN they count as high risk.
RENEWAL_LIKELY_CHURN = 0.3

# Pareto: the top share of the customers who bought (revenue > 0) by revenue, and the share of the
# positive revenue they hold (KPI top20_revenue_share).
PARETO_TOP_SHARE = 0.2

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


def sql_params() -> dict[str, float | str]:
    """The values above as named parameters for the SQL models, with the sources' status and type
    values (schemas.value_params)."""
    from include.customer_performance.schemas import value_params

    params = {f"engagement_w_{k}": v for k, v in ENGAGEMENT_WEIGHTS.items()} | value_params()
    params |= {f"health_w_{k}": v for k, v in HEALTH_WEIGHTS.items()}
    params |= {
        "activity_high_engagement": ACTIVITY_HIGH_ENGAGEMENT,
        "activity_high_min_purchases": ACTIVITY_HIGH_MIN_PURCHASES,
        "activity_low_engagement": ACTIVITY_LOW_ENGAGEMENT,
        "segment_at_risk_churn": SEGMENT_AT_RISK_CHURN,
        "segment_vip_share": SEGMENT_VIP_SHARE,
        "health_green": HEALTH_GREEN,
        "health_yellow": HEALTH_YELLOW,
        "health_trend_delta": HEALTH_TREND_DELTA,
        "renewal_likely_churn": RENEWAL_LIKELY_CHURN,
        "pareto_top_share": PARETO_TOP_SHARE,
        "satisfaction_min": SATISFACTION_MIN,
        "satisfaction_max": SATISFACTION_MAX,
    }
    return params
