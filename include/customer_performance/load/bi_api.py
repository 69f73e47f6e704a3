"""Push the period's results to the BI tool's push-dataset API.

For each table the period's rows are first deleted, then posted in batches of at most
``bi_batch_rows`` (10,000) rows, so a rerun replaces rather than duplicates. Rows stream from the
analytics database through a server-side cursor; only one batch is in memory at a time.
"""

from __future__ import annotations

import datetime as dt
import decimal
import logging

from psycopg import sql

from include.customer_performance.http_client import ApiClient
from include.customer_performance.staging import Run

log = logging.getLogger(__name__)

# BI table -> SELECT over the run's staged tables (identifiers bound by name below)
BI_TABLES = {
    "kpis": "SELECT * FROM {kpis}",
    "regional_summary": "SELECT * FROM {regional_summary} ORDER BY grouping_level, region, country, state",
    "performance_trends": "SELECT * FROM {performance_trends} ORDER BY grain, bucket_start, scope, region",
    "alerts": "SELECT * FROM {alerts} ORDER BY alert, scope",
    "top_customers": (
        "SELECT customer_id, name, region, country, segment, revenue, transaction_count, health_score,"
        " health_band, churn_probability, clv_12m FROM {customer_metrics} WHERE revenue > 0"
        " ORDER BY revenue DESC, customer_id LIMIT 100"
    ),
}


def _json_value(v: object) -> object:
    if isinstance(v, decimal.Decimal):
        return float(v)
    if isinstance(v, (dt.date, dt.datetime)):
        return v.isoformat()
    return v


def push(conn, run: Run, client: ApiClient, dataset: str, batch_rows: int) -> dict[str, int]:
    month = run.period.report_month.strftime("%Y-%m")
    stages = {
        name: run.table(name)
        for name in ("kpis", "regional_summary", "performance_trends", "alerts", "customer_metrics")
    }
    sent = {}
    for table, query in BI_TABLES.items():
        path = f"/datasets/{dataset}/tables/{table}/rows"
        client.request("DELETE", path, params={"report_month": month})
        n = 0
        with conn.cursor(name=f"bi_{table}") as cur:
            cur.itersize = batch_rows
            cur.execute(sql.SQL(query).format(**stages))
            names = None
            while batch := cur.fetchmany(batch_rows):
                names = names or [d.name for d in cur.description]
                rows = [
                    {"report_month": month, **{k: _json_value(v) for k, v in zip(names, row, strict=True)}}
                    for row in batch
                ]
                client.request("POST", path, json={"rows": rows})
                n += len(rows)
        sent[table] = n
        log.info("pushed %s rows to BI table %s/%s for %s", n, dataset, table, month)
    return sent
