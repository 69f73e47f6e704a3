"""Every staged table of a run, declared once: its name, layer, the task that writes it, whether it
is a table or a view, and where it is published. ``Run.table`` refuses a name not declared here,
so a new stage starts with a line in this file (docs/architecture.md renders the same list).

A name with ``{dataset}`` (the four datasets of the filter configuration) or ``{suite}`` (the
quality suites) stands for one stage per dataset or suite.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DATASETS = ("customers", "customer_activity", "transactions", "interactions")
SUITES = (
    *DATASETS,
    "customer_metrics",
    "regional_summary",
    "performance_trends",
    "kpis",
    "period_comparison",
    "interaction_summary",
    "engagement_heatmap",
)


@dataclass(frozen=True)
class Stage:
    name: str
    layer: str  # source, filtered, validated, reference, intermediate, mart, quality
    writer: str  # the task that writes it (runbook.TASKS)
    materialised: str  # "table" (UNLOGGED, written whole) or "view"
    about: str
    published_as: str | None = None  # the analytics table (or CSV, BI table) it reaches


STAGES = (
    Stage("customers", "source", "extract_customer_db", "table", "the customers known by the period end"),
    Stage("customer_activity", "source", "extract_customer_db", "table", "the period's sessions"),
    Stage("interactions", "source", "extract_crm_api", "table", "the period's CRM interactions"),
    Stage("transactions", "source", "extract_sales_db", "table", "the period's sales, every version of an id"),
    Stage(
        "customer_history",
        "source",
        "extract_sales_db",
        "table",
        "the lifetime purchase summary per customer, to the period end (the lifetime state + the changes)",
    ),
    Stage(
        "lifetime_delta", "source", "extract_sales_db", "table", "the summary of the month's sales to the period end"
    ),
    Stage("lifetime_changed", "source", "extract_sales_db", "table", "customers changed since the lifetime snapshot"),
    Stage("lifetime_recomputed", "source", "extract_sales_db", "table", "their lifetime summary, read from the source"),
    Stage(
        "flt_{dataset}",
        "filtered",
        "filter_period",
        "table",
        "the filter configuration applied (a view when it removes nothing)",
    ),
    Stage(
        "vld_{dataset}",
        "validated",
        "calculate",
        "view",
        "flt_ without the rows a warning rule rejects (rebuilt by validate)",
    ),
    Stage("fx_rates", "reference", "calculate", "table", "the period's daily rates to the reporting currency"),
    Stage("scorecard", "reference", "calculate", "table", "the scorecard (weights, thresholds) the run computes with"),
    Stage("repeated_transaction_ids", "intermediate", "calculate", "table", "the ids with more than one version"),
    Stage(
        "probable_duplicate_keys",
        "intermediate",
        "calculate",
        "table",
        "customer, amount, currency and time staged under more than one id",
    ),
    Stage(
        "unknown_transaction_customers",
        "intermediate",
        "calculate",
        "table",
        "the customer ids of staged transactions the customer database does not know",
    ),
    Stage("int_transactions", "intermediate", "calculate", "table", "converted, each id once; revenue_amount"),
    Stage("dq_quarantine_unconverted", "quality", "calculate", "table", "sales that cannot be converted"),
    Stage("int_customers", "intermediate", "calculate", "table", "each customer's latest version"),
    Stage("int_customer_sales", "intermediate", "calculate", "table", "the period's purchases per customer"),
    Stage("int_customer_sessions", "intermediate", "calculate", "table", "the period's sessions per customer"),
    Stage("int_customer_crm", "intermediate", "calculate", "table", "the period's CRM interactions per customer"),
    Stage("int_customer_history", "intermediate", "calculate", "table", "the lifetime history, converted"),
    Stage("churn", "intermediate", "calculate", "table", "churn probability, CLV, lists and reasons per customer"),
    Stage("churn_scored", "intermediate", "calculate", "table", "the gradient-boosted model's scores, lists, reasons"),
    Stage(
        "customer_metrics", "mart", "calculate", "table", "one row per customer, every metric", "customer_performance"
    ),
    Stage("dq_flagged_{suite}", "quality", "validate", "table", "the rows failing the suite's row rules"),
    Stage("dq_quarantine_{suite}", "quality", "validate", "table", "the quarantined rows, with rule, reason and run"),
    Stage("dq_results", "quality", "validate", "table", "the gate's results", "data_quality_results"),
    Stage(
        "regional_summary",
        "mart",
        "aggregate",
        "table",
        "grouping sets of geography, segment, category",
        "regional_summary",
    ),
    Stage("performance_trends", "mart", "aggregate", "table", "daily and ISO-weekly trends", "performance_trends"),
    Stage("kpis", "mart", "aggregate", "table", "the period's KPI row", "BI kpis"),
    Stage("alerts", "mart", "aggregate", "table", "what needs a person's attention", "alerts"),
    Stage(
        "backtest",
        "mart",
        "aggregate",
        "table",
        "earlier months' published predictions scored against what happened since",
        "model_backtest",
    ),
    Stage(
        "period_comparison",
        "mart",
        "aggregate",
        "table",
        "the period against the previous month: growth, acquisition, retention",
        "period_comparison",
    ),
    Stage("engagement_heatmap", "mart", "aggregate", "table", "sessions by weekday and hour", "engagement_heatmap"),
    Stage(
        "interaction_summary",
        "mart",
        "aggregate",
        "table",
        "interactions by type, department, priority, resolution",
        "interaction_summary",
    ),
    Stage(
        "engagement_correlations",
        "mart",
        "aggregate",
        "table",
        "activity, support and feature usage against revenue, satisfaction, retention",
        "engagement_correlations",
    ),
    Stage("dq_aggregates", "quality", "aggregate", "table", "the aggregate suites' results", "data_quality_results"),
)


def _pattern(name: str) -> re.Pattern:
    alternatives = {"dataset": DATASETS, "suite": SUITES}
    parts = re.split(r"\{(\w+)\}", name)
    regex = "".join(
        "(?:" + "|".join(map(re.escape, alternatives[p])) + ")" if i % 2 else re.escape(p) for i, p in enumerate(parts)
    )
    return re.compile(regex)


_PATTERNS = [(stage, _pattern(stage.name)) for stage in STAGES]


class UndeclaredStageError(ValueError):
    """A staged table name that stages.py does not declare."""


def declared(name: str) -> Stage:
    """The declaration of the staged table ``name`` (without the run key)."""
    for stage, pattern in _PATTERNS:
        if pattern.fullmatch(name):
            return stage
    raise UndeclaredStageError(
        f"staged table {name!r} is not declared in include/customer_performance/stages.py: declare it there"
    )
