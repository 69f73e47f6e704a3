"""Aggregates of the validated data: regional summary, daily/weekly trends and the KPI row."""

from __future__ import annotations

from include.customer_performance.sql import model
from include.customer_performance.staging import Run, replace_table_as


def aggregate(cur, run: Run) -> dict:
    inputs = {"metrics": run.table("customer_metrics"), "transactions": run.table("int_transactions")}
    out = {}
    for name in ("regional_summary", "performance_trends", "kpis"):
        rows = replace_table_as(cur, run.table(name), model(name, **inputs))
        out[name] = {"table": run.table_name(name), "rows": rows}
    return out
