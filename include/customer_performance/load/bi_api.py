"""Push the period's results to the BI tool's push-dataset API.

For each configured table (``bi_tables``, all of ``BI_TABLES`` by default) of the dataset
(``bi_dataset``) the period's rows are first deleted, then posted in batches of at most
``bi_batch_rows`` (10,000) rows, so a rerun replaces rather than duplicates. Each row carries
``report_month`` (``YYYY-MM``) beside the table's columns (README, "BI push payloads"). Rows stream
from the run's staged tables through a server-side cursor; only one batch is in memory at a time.
The push only reads the analytics database, so a failed push changes nothing there and the task
can be retried alone.
"""

from __future__ import annotations

import datetime as dt
import decimal
import logging

from psycopg import sql

from include.customer_performance.export.csv_email import REGIONAL_ORDER
from include.customer_performance.http_client import ApiClient
from include.customer_performance.staging import Run

log = logging.getLogger(__name__)

# BI table -> SELECT over the run's staged tables (identifiers bound by name below)
BI_TABLES = {
    "kpis": "SELECT * FROM {kpis}",
    "regional_summary": f"SELECT * FROM {{regional_summary}} ORDER BY {REGIONAL_ORDER}",
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


def push(
    conn, run: Run, client: ApiClient, dataset: str, batch_rows: int, tables: tuple[str, ...] = tuple(BI_TABLES)
) -> dict[str, int]:
    unknown = sorted(set(tables) - set(BI_TABLES))
    if unknown:
        raise ValueError(
            f"bi_tables names unknown table(s) {', '.join(unknown)}; the BI tables are {', '.join(BI_TABLES)}"
        )
    month = run.period.report_month.strftime("%Y-%m")
    stages = {
        name: run.table(name)
        for name in ("kpis", "regional_summary", "performance_trends", "alerts", "customer_metrics")
    }
    sent = {}
    for table in tables:
        query = BI_TABLES[table]
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
