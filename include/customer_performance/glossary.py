"""One name, one label, one meaning: every figure and field the package publishes.

Each published name (a column of an analytics table, a CSV header, a BI payload field, a KPI, a
field of the dashboard's API) has one entry: the label people read (the dashboard, the email, the
report CLI take it from here), its unit (which also sets its rounding in the CSV files and the BI
payloads: ``EXPORT_DECIMALS``) and its definition. ``docs/glossary.md`` is written from this
module (``python -m include.customer_performance glossary``) and a test keeps it current; another
walks every surface's labels against it (tests/test_glossary.py).

Words with one meaning here: *active* is a customer with a completed sale in the period (never
the source's account status, ``status``); *segment* is the computed value segment (VIP, regular,
new, at-risk), the CRM's own is *CRM segment* (``crm_segment``); a *check* is one rule of the
quality gate (per-table scores are not checks); a *share* is a fraction of 1, shown as a percent
with one decimal.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

# unit -> decimals in the CSV files and BI payloads (None: not rounded: whole numbers, text, dates)
EXPORT_DECIMALS = {
    "money": 2,
    "share": 4,
    "probability": 4,
    "score": 4,
    "number": 4,
    "hours": 4,
    "count": None,
    "days": None,
    "text": None,
    "date": None,
    "timestamp": None,
    "flag": None,
    "id": None,
    "json": None,
}
MISSING_LABEL = "unknown"  # a grouping value the source left empty, written out in files and charts


@dataclass(frozen=True)
class Term:
    name: str
    label: str
    unit: str
    definition: str

    def __post_init__(self) -> None:
        if self.unit not in EXPORT_DECIMALS:
            raise ValueError(f"{self.name}: unknown unit {self.unit!r}")


def _terms(*rows: tuple[str, str, str, str]) -> dict[str, Term]:
    out: dict[str, Term] = {}
    for row in rows:
        term = Term(*row)
        if term.name in out:
            raise ValueError(f"{term.name} is defined twice in the glossary")
        out[term.name] = term
    return out


# fmt: off
TERMS = _terms(
    # -- the period and the run ------------------------------------------------------------------
    ("report_month", "Report month", "date", "The first day of the month reported (the partition key)."),
    ("period", "Period", "text", "The period's first to last day, both included."),
    ("period_start", "Period start", "date", "The first day of the period reported."),
    ("period_end", "Period end (exclusive)", "date", "The day after the period's last day."),
    ("previous_period_end", "Previous period end (exclusive)", "date", "The day after the last day of the month compared with."),
    ("run_id", "Run", "id", "The Airflow run that computed and published the row."),
    ("loaded_at", "Loaded at", "timestamp", "When the run published the row to the analytics database."),
    ("row_counts", "Rows per task", "json", "What each task returned: tables and rows."),
    ("source", "Source", "text", "The system rows come from: the customer database, the CRM API or the sales database."),
    ("rows_change", "Change in rows", "share", "A source's rows this month against the month before, as a share of those."),
    ("tasks", "Task figures", "json", "Per task: rows in, rows out, seconds."),
    ("delivered", "Delivered to", "json", "Per destination: where the period's results went, by which run."),
    ("quality", "Quality summary", "json", "The gate's summary: checks, failures, quarantined rows, scores."),
    ("kpis", "KPIs", "json", "The period's KPI row."),
    ("churn_model", "Churn model", "json", "The churn model fitted in the run and its back-test summary."),
    # -- the customer -------------------------------------------------------------------------------
    ("customer_id", "Customer", "id", "The customer's id in the customer database."),
    ("name", "Name", "text", "The customer's name."),
    ("email", "Email", "text", "The customer's email (in the CSV file only when PII is enabled)."),
    ("phone", "Phone", "text", "The customer's phone (in the CSV file only when PII is enabled)."),
    ("status", "Account status (source)", "text", "The customer database's own account status (active, inactive, suspended), as the source keeps it. Not whether the customer bought: that is Active customers."),
    ("region", "Region", "text", "The customer's region; unknown when the source has none."),
    ("country", "Country", "text", "The customer's country; unknown when the source has none."),
    ("state", "State", "text", "The customer's state or province; unknown when the source has none."),
    ("crm_segment", "CRM segment", "text", "The segment the customer database assigns (consumer, smb, mid-market, enterprise), which a customer keeps from month to month."),
    ("registration_date", "Registered", "date", "When the customer registered."),
    ("segment", "Value segment", "text", "Computed each month, the first that applies: new (registered in the report month), at-risk (bought before, churn probability at least the high-risk threshold), VIP (top 5 % by revenue, revenue above 0), regular."),
    # -- sales in the period -------------------------------------------------------------------------
    ("transaction_count", "Purchases", "count", "Completed sales in the period, each transaction id once (its latest version)."),
    ("transactions", "Transactions", "count", "Completed sales, each transaction id once (its latest version)."),
    ("purchase_days", "Purchase days", "count", "Days (UTC) with a completed sale: the unit the churn model counts purchases in."),
    ("revenue", "Revenue", "money", "Completed sales minus refunds in the period, in the reporting currency: the latest version of each transaction id, a sale at plus its amount, a refund (status refunded) at minus its amount."),
    ("gross_revenue", "Gross revenue", "money", "Completed sales in the period, before refunds."),
    ("refunds", "Refunds", "money", "Refunds in the period (transactions whose latest version has the status refunded)."),
    ("avg_order_value", "Average order value", "money", "Gross revenue / purchases; empty without a purchase."),
    ("units", "Units", "count", "Units of the completed sales."),
    ("discounts", "Discounts", "money", "Discounts of the completed sales."),
    ("tax", "Tax", "money", "Tax of the completed sales."),
    ("first_purchase", "First purchase in period", "timestamp", "The period's first completed sale."),
    ("last_purchase", "Last purchase in period", "timestamp", "The period's last completed sale."),
    ("probable_duplicates", "Probable duplicates", "count", "Sales with the same customer, amount, currency and time as another under a different id (still counted in revenue)."),
    # -- lifetime -----------------------------------------------------------------------------------
    ("lifetime_first_purchase", "First purchase ever", "timestamp", "The customer's first completed sale up to the period end."),
    ("lifetime_purchases", "Lifetime purchases", "count", "Completed sales up to the period end, each transaction id once: the latest version of each id, as the period counts them."),
    ("lifetime_revenue", "Lifetime revenue", "money", "Completed sales minus refunds up to the period end (the latest version of each transaction id), converted at the period's last rate."),
    ("days_since_last_purchase", "Days since last purchase", "days", "From the last completed sale ever to the period's last day; empty when the customer never bought."),
    # -- engagement and CRM -------------------------------------------------------------------------
    ("login_count", "Sessions", "count", "Sessions in the period (logins)."),
    ("session_minutes", "Session minutes", "number", "Minutes of the period's sessions (negative durations left out)."),
    ("features_used", "Features used", "count", "Distinct features used in the period's sessions."),
    ("days_since_last_login", "Days since last login", "days", "From the latest session or last login to the period's last day."),
    ("interaction_count", "CRM interactions", "count", "CRM interactions in the period."),
    ("calls", "Calls", "count", "CRM calls in the period."),
    ("emails", "Emails", "count", "CRM emails in the period."),
    ("chats", "Chats", "count", "CRM chats in the period."),
    ("ticket_count", "Support tickets", "count", "CRM tickets in the period."),
    ("avg_satisfaction", "Average satisfaction (1-10)", "number", "Mean satisfaction score on the 1-10 scale; scores off the scale left out."),
    ("avg_resolution_hours", "Average resolution hours", "hours", "Mean hours to resolve the resolved and escalated interactions."),
    ("resolution_rate", "Resolution rate", "share", "Resolved interactions / interactions."),
    ("escalation_rate", "Escalation rate", "share", "Escalated interactions / interactions."),
    ("engagement_score", "Engagement score (0-100)", "score", "100 x weighted percentile ranks among the period's customers of logins, features, session minutes and interactions (weights in the scorecard)."),
    ("activity_level", "Activity level", "text", "high: engagement at least 60 and 2 purchases or more; low: engagement under 30 and no purchase; else medium."),
    # -- predictions and health ---------------------------------------------------------------------
    ("churn_probability", "Churn probability (no purchase in 90 days)", "probability", "The probability that the customer makes no completed purchase in the next 90 days (scorecard churn.no_purchase_days): the gradient-boosted model trained on the published history, or the BTYD probability of the same event (churn_method); empty when the customer never bought."),
    ("churn_method", "Churn method", "text", "Which model gave the churn probability: gradient_boosting, mbg_nbd (BTYD) or recency_ratio (the BTYD fallback)."),
    ("churn_probability_btyd", "BTYD churn probability", "probability", "The MBG/NBD (BTYD) model's probability of no completed purchase in the next 90 days, from purchases alone: the fallback and a baseline of the churn probability."),
    ("p_alive", "P(alive)", "probability", "The BTYD model's probability that the customer is still a customer, from purchases alone: it turns the expected purchases into the value if kept."),
    ("usual_gap_days", "Usual gap between purchases (days)", "number", "The customer's usual days between purchase days (first to last purchase over the repeat purchase days; 30 for a one-time buyer): what still active is judged against, with the days since the last login."),
    ("value_if_kept", "Value if kept (12 months)", "money", "What the customer is expected to spend over the next 12 months if it stays: expected purchases given alive x lifetime revenue per purchase day."),
    ("expected_loss", "Expected loss", "money", "Value if kept x churn probability: the 12-month value riding on the customer not buying again within 90 days. Orders the save list."),
    ("churn_list", "List", "text", "save (still active: silent since the last purchase for at most 1.5 times the usual gap between purchases, or 7 days, and in the product within the last 7 days; high risk; among the largest expected losses: call them), win-back (high risk and no longer active: most likely gone; among the most valuable if won back), or empty."),
    ("list_rank", "Rank in list", "count", "The customer's place in its list: 1 first."),
    ("churn_reason", "Why at risk", "text", "The features that push the customer's churn probability up the most, in words, from the model's own per-customer contributions (never the score itself)."),
    ("expected_purchases_12m", "Expected purchases (12 months)", "number", "Purchase days the model expects in the next 365 days."),
    ("expected_purchases_1m", "Expected purchases (1 month)", "number", "Purchase days the model expects in the next month (30.4 days)."),
    ("expected_purchases_3m", "Expected purchases (3 months)", "number", "Purchase days the model expects in the next three months (91.3 days)."),
    ("clv_12m", "CLV (12 months)", "money", "Expected purchases (purchase days) in the next 12 months x lifetime revenue per purchase day."),
    ("health_score", "Health score (0-100)", "score", "Engagement, 100 x (1 - churn), satisfaction mapped to 0-100 and 100 x (1 - escalation rate), weighted (scorecard), over the parts present."),
    ("health_band", "Health band", "text", "green (health 70 or more), yellow (40 or more), red (below 40)."),
    ("previous_health_score", "Health score last month", "score", "The customer's health score in the previous month's close."),
    ("health_change", "Health change", "score", "Health score minus last month's."),
    ("health_trend", "Health trend", "text", "up or down when the health score moved by the scorecard's delta (5 points) or more since last month, else flat."),
    ("revenue_at_risk", "Revenue at risk", "money", "max(revenue, 0) x churn probability: this period's revenue a churn would take away."),
    ("risk_driver", "Why (weakest part of health)", "text", "The health score's part that costs it the most points, in words."),
    ("is_top_20pct", "Top 20 % buyer", "flag", "Among the top 20 % of the period's buyers by revenue (the Pareto set)."),
    ("last_purchase_day", "Last purchase", "date", "The day of the customer's last completed sale ever."),
    ("last_login_day", "Last login", "date", "The day of the customer's last session or login."),
    # -- grouped tables -------------------------------------------------------------------------------
    ("grouping_level", "Grouping", "text", "Which columns a row groups by, e.g. region+segment; total for all."),
    ("product_category", "Product category", "text", "The sale's product category; unknown when the source has none."),
    ("customers", "Customers", "count", "Customers known by the period end (every status), in the group."),
    ("active_customers", "Active customers", "count", "Customers with a completed sale in the period (in a product category: one there)."),
    ("new_customers", "New customers", "count", "Customers registered inside the period."),
    ("market_penetration", "Market penetration", "share", "Active customers / the group's customers (the customer base), or / the addressable market when the deployment provides one (penetration_base says which)."),
    ("penetration_base", "Penetration base", "text", "What market penetration divides by: customer_base, or addressable_market."),
    ("addressable_market", "Addressable market", "count", "The deployment's addressable market of the region (reference file); empty without one."),
    ("avg_health_score", "Average health score", "score", "Mean health score of the group's customers."),
    ("avg_churn_probability", "Average churn probability", "probability", "Mean churn probability of the group's customers who have one."),
    ("grain", "Grain", "text", "day or week (ISO weeks starting Monday)."),
    ("bucket_start", "Bucket start", "date", "The first day of the day or week."),
    ("scope", "Scope", "text", "What a row concerns: all, or a region (trends); the alerted thing (alerts)."),
    ("day", "Day", "date", "A day of the period."),
    ("week", "Week", "date", "The Monday of an ISO week of the period."),
    ("interactions", "Interactions", "count", "CRM interactions."),
    # -- alerts ---------------------------------------------------------------------------------------
    ("alert", "Alert", "text", "The alert rule raised (region_revenue_drop, revenue_at_risk_share, completeness, source_volume, source_freshness, source_empty)."),
    ("severity", "Severity", "text", "critical (stops the month), warning (quarantines and continues, up to a ceiling) or info (reported)."),
    ("value", "Value", "number", "The alerted figure."),
    ("threshold", "Threshold", "number", "The limit the figure crossed."),
    ("message", "Message", "text", "What the alert or check found, in words."),
    # -- quality --------------------------------------------------------------------------------------
    ("suite", "Suite", "text", "The quality suite: one per staged table the gate checks."),
    ("table_name", "Table", "text", "The table a check ran on."),
    ("column_name", "Column", "text", "The column a check ran on."),
    ("rule", "Rule", "text", "The check's rule name, e.g. transactions.amount.negative."),
    ("expectation", "Expectation", "text", "The Great Expectations expectation (or the gate's own outcome check) behind a rule."),
    ("rows_checked", "Rows checked", "count", "Rows the check looked at."),
    ("failing_rows", "Failing rows", "count", "Rows the check failed."),
    ("success", "Passed", "flag", "Whether the check passed."),
    ("examples", "Examples", "json", "Keys of a few failing rows."),
    ("quarantined_rows", "Quarantined rows", "count", "Rows a warning rule took out of the month (kept in the quarantine table, with the reason)."),
    ("score", "Quality score", "share", "A table's completeness, accuracy or freshness score (rows of the report, not checks)."),
    ("checks", "Checks", "count", "Rules of the quality gate evaluated (scores are not checks)."),
    ("failed", "Failed checks", "count", "Checks that did not pass."),
    ("critical", "Critical failures", "count", "Critical checks that did not pass."),
    ("quarantined", "Quarantined", "count", "Rows quarantined by warning rules."),
    ("ceiling", "Ceiling", "share", "The share of a table's rows (or gross amount) a warning rule may quarantine; over it the month stops."),
    ("completeness", "Completeness", "share", "Share of required fields present in the table."),
    ("accuracy", "Accuracy", "share", "Share of the table's rows no rule failed."),
    ("freshness", "Freshness", "share", "1 when the table's latest event is within the freshness window before the period end, else 0."),
    ("minimum", "Minimum", "share", "The threshold a score must reach."),
    # -- KPIs -----------------------------------------------------------------------------------------
    ("high_risk_customers", "High-risk customers", "count", "Customers whose churn probability is at least the high-risk threshold."),
    ("high_risk_share", "High-risk share", "share", "High-risk customers / customers."),
    ("revenue_at_risk_share", "Revenue at risk share", "share", "Revenue at risk / revenue."),
    ("top20_revenue_share", "Top 20 % revenue share", "share", "The top 20 % of buyers' share of the buyers' revenue (Pareto)."),
    ("customers_pct", "Share of the buyers (%)", "number", "A point of the Pareto curve: the top this many percent of the period's buyers by revenue."),
    ("revenue_pct", "Share of revenue (%)", "number", "The buyers' revenue those top buyers hold, in percent (the Pareto curve)."),
    ("revenue_share", "Revenue share", "share", "The buyers' revenue those top buyers hold (the Pareto curve; at 20 % it is the top 20 % revenue share)."),
    ("share", "Share of customers", "share", "The group's customers / all customers of the month."),
    ("expected_loss_share", "Expected loss share", "share", "Expected loss / the value if kept of all customers."),
    ("save_list_customers", "Save list customers", "count", "Customers on the save list (at most the scorecard's risk.save_list_size)."),
    ("save_list_expected_loss", "Save list expected loss", "money", "The expected loss of the customers on the save list: the list's total."),
    ("win_back_customers", "Win-back customers", "count", "Customers on the win-back list (at most the scorecard's risk.win_back_list_size)."),
    ("win_back_value", "Win-back value", "money", "The value if kept (12 months) of the customers on the win-back list."),
    ("tickets", "Tickets", "count", "CRM tickets."),
    ("tickets_resolved", "Tickets resolved", "count", "CRM tickets resolved."),
    ("resolved_share", "Resolved share", "share", "Resolved / the interactions counted (the KPI counts the tickets, a summary row its group)."),
    ("escalated_share", "Escalated share", "share", "Escalated / the interactions counted (the KPI counts the tickets, a summary row its group)."),
    ("satisfaction_answers", "Satisfaction answers", "count", "Satisfaction scores given (one per interaction answered), on the 1-10 scale."),
    ("promoters", "Promoters", "count", "Satisfaction answers of 9 or 10."),
    ("detractors", "Detractors", "count", "Satisfaction answers of 6 or less."),
    ("nps", "NPS", "score", "100 x (promoters - detractors) / satisfaction answers, -100..100, counted in answers, not customers."),
    ("security_incidents", "Security incidents", "count", "CRM interactions of the security department."),
    ("critical_incidents", "Critical incidents", "count", "Security incidents of priority critical."),
    ("false_positives", "False positives", "count", "Security incidents resolved as false positives."),
    ("critical_incident_share", "Critical incident share", "share", "Critical incidents / security incidents."),
    ("false_positive_share", "False positive share", "share", "False positives / security incidents."),
    ("mrr", "MRR (net revenue)", "money", "The month's revenue (completed sales minus refunds): the seed's monthly recurring revenue."),
    ("mrr_at_risk", "MRR at risk", "money", "The month's revenue at risk (the sum of every customer's revenue at risk)."),
    ("renewal_likely_share", "Renewal likely share", "share", "Customers whose churn probability is under the scorecard's renewal-likely threshold / customers with a churn probability."),
    ("avg_engagement_score", "Average engagement score", "score", "Mean engagement score."),
    ("health_green", "Green band customers", "count", "Customers in the green health band."),
    ("health_yellow", "Yellow band customers", "count", "Customers in the yellow health band."),
    ("health_red", "Red band customers", "count", "Customers in the red health band."),
    ("segment_vip", "VIP customers", "count", "Customers of the VIP value segment."),
    ("segment_regular", "Regular customers", "count", "Customers of the regular value segment."),
    ("segment_at_risk", "At-risk segment customers", "count", "Customers of the at-risk value segment."),
    ("top_region", "Top region", "text", "The region with the most revenue."),
    # -- insights -------------------------------------------------------------------------------------
    ("label", "Group", "text", "The region or CRM segment a comparison row is about."),
    ("previous_revenue", "Revenue last month", "money", "The group's revenue in the previous month's close."),
    ("revenue_change", "Revenue change", "money", "Revenue minus last month's."),
    ("revenue_change_share", "Revenue change share", "share", "Revenue change / |revenue last month|."),
    ("acquisition_rate", "Acquisition rate", "share", "New customers / the customers known at the period start."),
    ("previous_active_customers", "Active customers last month", "count", "Customers with a completed sale in the previous month."),
    ("retained_customers", "Retained customers", "count", "Last month's active customers active again in this period."),
    ("retention_rate", "Retention rate", "share", "Retained customers / active customers last month."),
    ("weekday", "Weekday", "count", "ISO weekday, 1 = Monday .. 7, UTC."),
    ("hour", "Hour (UTC)", "count", "Hour of the day, 0-23, UTC."),
    ("sessions", "Session count", "count", "Sessions (logins) in the cell."),
    ("interaction_type", "Interaction type", "text", "call, email, chat or ticket."),
    ("department", "Department", "text", "The CRM department that handled the interaction."),
    ("priority", "Priority", "text", "The CRM priority; unknown when the CRM gave none."),
    ("resolution_status", "Resolution status", "text", "The interaction's outcome (resolved, escalated, open, ...)."),
    ("analysis", "Analysis", "text", "activity_decile, support_contacts or feature_usage."),
    ("bucket", "Bucket", "text", "The analysis' bucket (a decile, a contact count, a feature count), or all."),
    ("bucket_order", "Bucket order", "count", "The buckets' order."),
    ("mean_value", "Mean value", "number", "The bucket's mean of the analysed measure (sessions, contacts, features)."),
    ("mean_revenue", "Mean revenue", "money", "The bucket's mean revenue."),
    ("mean_satisfaction", "Mean satisfaction (1-10)", "number", "The bucket's mean average satisfaction."),
    ("correlation", "Correlation (r)", "number", "Pearson's r of the analysis' two measures (association, not causation)."),
    ("correlated_with", "Correlated with", "text", "The measure the correlation pairs with the analysed one."),
    ("activity_decile", "Activity decile", "text", "A decile of the period's customers by sessions (01: the fewest)."),
    ("support_contacts", "Support contacts", "text", "CRM contacts of a customer in the period (1 .. 5+)."),
    ("feature_usage", "Features used last month", "text", "Features a customer used last month (0 .. 5+)."),
    ("mean_sessions", "Mean sessions", "number", "The bucket's mean sessions per customer."),
    ("churn_decile", "Churn probability decile", "text", "A decile of the customers by their published churn probability."),
    ("frequency_group", "Lifetime purchases then", "text", "The customers' lifetime purchases at the prediction: 1, 2-3, 4-9 or 10+ (the back-test's check of the expected purchases per group)."),
    # -- the back-test --------------------------------------------------------------------------------
    ("predicted_month", "Predicted at", "date", "The month end the predictions were made at."),
    ("horizon_months", "Horizon (months)", "count", "Months after the prediction the outcome is observed over."),
    ("measure", "Measure", "text", "overall, churn_decile, health_band or frequency_group (lifetime purchases at the prediction: 1, 2-3, 4-9, 10+)."),
    ("churned", "Without a purchase", "count", "Customers with no completed sale within the horizon."),
    ("observed_churn_rate", "Observed rate without a purchase", "share", "Customers without a completed sale within the horizon / customers."),
    ("mean_churn_probability", "Mean churn probability", "probability", "The bucket's mean published churn probability."),
    ("auc", "ROC AUC", "number", "How well the score ranks who has no purchase within the horizon (0.5: no better than chance)."),
    ("recency_auc", "ROC AUC of recency", "number", "The same event ranked by days since the last purchase alone (more is riskier), on the same customers: the baseline the churn probability must beat."),
    ("health_auc", "ROC AUC of the health score", "number", "The same event ranked by the health score alone (lower is riskier), on the same customers."),
    ("btyd_auc", "ROC AUC of the BTYD probability", "number", "The same event ranked by the BTYD probability of no purchase (churn_probability_btyd), on the same customers: the fallback the published probability must beat."),
    ("active_auc", "ROC AUC among active customers", "number", "The churn probability's ROC AUC among the customers still active at the prediction (silent since the last purchase for at most 1.5 times the usual gap between purchases, or 7 days, and in the product within the last 7 days: risk.active_gaps, risk.active_days, risk.active_login_days)."),
    ("active_recency_auc", "ROC AUC of recency among active customers", "number", "Recency's ROC AUC among the customers active at the prediction: the baseline where a save list is drawn."),
    ("save_list", "Save list size", "count", "Customers on the predicted month's save list."),
    ("save_precision", "Save list precision", "share", "Share of the predicted month's save list that made no completed purchase within the event's days."),
    ("lift_over_green", "Lift over the green band", "number", "The band's rate without a purchase / the green band's (red over green on the back-test's line)."),
    ("expected_purchases", "Expected purchases", "number", "Purchase days the model expected over the horizon."),
    ("actual_purchases", "Actual purchases", "number", "Purchase days that happened over the horizon."),
    ("expected_revenue", "Expected revenue", "money", "The CLV's value over the horizon: expected purchases x the revenue per purchase day the CLV uses."),
    ("actual_revenue", "Actual revenue", "money", "Revenue the same customers made over the horizon."),
    # -- email deliveries -----------------------------------------------------------------------------
    ("message_id", "Message-ID", "id", "The email's Message-ID (the same on every try of a run)."),
    ("recipients", "Recipients", "json", "Who the email went to."),
    ("subject", "Subject", "text", "The email's subject."),
    ("attempts", "Attempts", "count", "Tries at sending the email."),
    ("started_at", "Started at", "timestamp", "When the first try began sending."),
    ("sent_at", "Sent at", "timestamp", "When the relay accepted the email."),
)
# fmt: on


def term(name: str) -> Term:
    try:
        return TERMS[name]
    except KeyError:
        raise KeyError(f"{name!r} is not in the glossary (include/customer_performance/glossary.py)") from None


def label(name: str) -> str:
    return term(name).label


def labels() -> dict[str, str]:
    return {name: t.label for name, t in TERMS.items()}


def decimals(name: str) -> int | None:
    """Decimals of a published number in the CSV files and BI payloads: money to cents, every
    other fraction to 4; None keeps it as it is (a whole number, text, a date; a name not in the glossary,
    which the glossary test reports: 4)."""
    found = TERMS.get(name)
    return EXPORT_DECIMALS[found.unit] if found else 4


def active_text(gaps: float, days: int, login_days: int | None) -> str:
    """Still active in words, as every list title and definition prints it (churn_model.still_active);
    without ``login_days`` (a run's scorecard from before risk.active_login_days), by the purchases
    alone."""
    words = f"silent since the last purchase for at most {gaps:g} times the usual gap between purchases, or {days} days"
    return words if login_days is None else f"{words}, and in the product within the last {login_days} days"


def share_text(share: float | None, decimals: int = 1) -> str:
    """A share (0-1, published to 4 decimals) as a percent, rounded half away from zero on its
    integer ten-thousandths: 0.65345 -> 0.6535 -> "65.4 %". The dashboard's pct() rounds alike, so
    a figure reads the same on every screen."""
    if share is None:
        return "n/a"
    n = int(abs(Decimal(str(share))) * 10000 + Decimal("0.5"))  # ten-thousandths, half up
    unit = 10 ** (2 - decimals)
    shown = Decimal((n + unit // 2) // unit * unit) / 100
    sign = "-" if share < 0 and shown else ""
    return f"{sign}{shown:.{decimals}f} %"


def markdown() -> str:
    """docs/glossary.md."""
    lines = [
        "# Glossary",
        "",
        "Every name the package publishes (analytics columns, CSV headers, BI payload fields, KPIs, the",
        "dashboard API's fields), with the label people read and what it means. Written from",
        "`include/customer_performance/glossary.py` by `python -m include.customer_performance glossary`;",
        "a test fails when this file and the module disagree.",
        "",
        "In the CSV files and the BI payloads money is rounded to cents and every other fraction",
        "(shares, probabilities, scores, means) to 4 decimals; the analytics tables keep full",
        f"precision. A grouping value the source left empty is written `{MISSING_LABEL}`. On screens",
        "and in the email a share is a percent with one decimal.",
        "",
        "| name | label | unit | definition |",
        "|---|---|---|---|",
    ]
    for t in sorted(TERMS.values(), key=lambda t: t.name):
        lines.append(f"| `{t.name}` | {t.label} | {t.unit} | {t.definition.replace('|', '/')} |")
    return "\n".join(lines) + "\n"
