"""Per-customer metrics for the period, computed in the analytics database from filtered staging."""

from __future__ import annotations

import logging

from psycopg import sql

from include.customer_performance.sql import model
from include.customer_performance.staging import Run, replace_table_as

log = logging.getLogger(__name__)


def calculate_metrics(cur, run: Run) -> dict:
    deduped = replace_table_as(
        cur, run.table("int_transactions"), model("int_transactions", transactions=run.table("flt_transactions"))
    )
    log.info("int_transactions: %s distinct transactions", deduped)
    select = model(
        "customer_metrics",
        customers=run.table("flt_customers"),
        transactions=run.table("int_transactions"),
        activity=run.table("flt_customer_activity"),
        interactions=run.table("flt_interactions"),
    )
    rows = replace_table_as(cur, run.table("customer_metrics"), select)
    # One row per customer is what every later stage assumes; the join must not multiply rows.
    cur.execute(sql.SQL("SELECT count(*) - count(DISTINCT customer_id) FROM {}").format(run.table("customer_metrics")))
    dupes = cur.fetchone()[0]
    if dupes:
        raise RuntimeError(f"customer_metrics for {run.period}: {dupes} customer_id values appear more than once")
    log.info("customer_metrics: %s customers", rows)
    return {"table": run.table_name("customer_metrics"), "rows": rows}
