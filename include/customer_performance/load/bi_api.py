"""Push the period's results to the BI tool's push-dataset API, exactly once per month.

The push is a versioned write (the contract in ``dev/bi_api.py``, docs/destinations.md, "BI push contract"):
each try opens a fresh version (``<run key>-<random>``; opening it supersedes the open version of
an earlier, killed try), sends every configured table (``bi_tables``) of the dataset
(``bi_dataset``) as numbered batches of at most ``bi_batch_rows`` rows (``PUT .../batches/<n>``: a
batch sent twice after a lost reply is kept once), then publishes the version with the row and
batch counts it must hold: the API makes it current for its tables and drops every other version
of the month in one step. Readers see the previous complete month until the publish, the new
complete month after it; a batch or publish of an earlier, killed try that lands late goes to a
superseded version and is refused. Each row carries ``report_month`` (``YYYY-MM``) beside the
table's columns (docs/destinations.md, "BI push payloads"), numbers rounded as the glossary says and an empty
group label written ``unknown`` (glossary.py).

Pushes of one month to one dataset take turns (an advisory lock in the analytics database, held
for the whole push by a transaction of its own on a second connection, db.held_lock, released by
PostgreSQL if the task dies), and a push checks its inputs (the run's staged tables, one KPI row:
staging.check_inputs) before it sends anything. Each table is read whole (they are aggregates,
thousands of rows at most) in one short statement, so no transaction of the reading connection is
open while the API is called. The push only reads the analytics database, so a
failed push changes nothing there and the task can be retried alone.
"""

from __future__ import annotations

import datetime as dt
import decimal
import logging
import uuid

from psycopg import sql

from include.customer_performance.db import held_lock
from include.customer_performance.export.csv_email import (
    COMPARISON_ORDER,
    INTERACTION_ORDER,
    REGIONAL_LEVELS,
    REGIONAL_ORDER,
)
from include.customer_performance.glossary import MISSING_LABEL, decimals
from include.customer_performance.http_client import ApiClient
from include.customer_performance.staging import Run, check_inputs

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
    "period_comparison": f"SELECT * FROM {{period_comparison}} ORDER BY {COMPARISON_ORDER}",
    "engagement_heatmap": "SELECT * FROM {engagement_heatmap} ORDER BY weekday, hour",
    "interaction_summary": f"SELECT * FROM {{interaction_summary}} ORDER BY {INTERACTION_ORDER}",
    "engagement_correlations": "SELECT * FROM {engagement_correlations} ORDER BY analysis, bucket_order",
}
STAGES = (
    "kpis",
    "regional_summary",
    "performance_trends",
    "alerts",
    "customer_metrics",
    "period_comparison",
    "engagement_heatmap",
    "interaction_summary",
    "engagement_correlations",
)


def _json_value(name: str, v: object) -> object:
    """A value as JSON: a number rounded as the glossary says for ``name`` (money to cents, other
    fractions to 4 decimals), a date in ISO form."""
    if isinstance(v, decimal.Decimal | float):
        places = decimals(name)
        if places is None:
            return float(v)
        # half away from zero, as PostgreSQL's round() writes the CSV files
        exact = decimal.Decimal(repr(v)) if isinstance(v, float) else v  # a float as it reads, not its binary
        return float(exact.quantize(decimal.Decimal(1).scaleb(-places), rounding=decimal.ROUND_HALF_UP))
    if isinstance(v, (dt.date, dt.datetime)):
        return v.isoformat()
    return v


def grouped(table: str, row: dict) -> tuple[str, ...]:
    """The label columns a row groups by (a NULL there is a group of its own: written ``unknown``;
    elsewhere NULL means not grouped)."""
    if table == "regional_summary":
        return REGIONAL_LEVELS.get(row.get("grouping_level"), ())
    if table == "interaction_summary":
        return tuple(c for c in (row.get("grouping_level") or "").split("+") if c in row)
    if table == "period_comparison":
        return ("label",) if row.get("grouping_level") != "total" else ()
    if table == "performance_trends":
        return ("region",) if row.get("scope") == "region" else ()
    if table == "top_customers":
        return ("region", "country", "segment")
    return ()


def bi_row(table: str, names: list[str], values: tuple, month: str) -> dict:
    row = {k: _json_value(k, v) for k, v in zip(names, values, strict=True)}
    for column in grouped(table, row):
        if row.get(column) is None:
            row[column] = MISSING_LABEL
    return {"report_month": month, **row}


def push(
    conn, run: Run, client: ApiClient, dataset: str, batch_rows: int, tables: tuple[str, ...] = tuple(BI_TABLES)
) -> dict[str, int]:
    unknown = sorted(set(tables) - set(BI_TABLES))
    if unknown:
        raise ValueError(
            f"bi_tables names unknown table(s) {', '.join(unknown)}; the BI tables are {', '.join(BI_TABLES)}"
        )
    month = run.period.report_month.strftime("%Y-%m")
    stages = {name: run.table(name) for name in STAGES}
    key = f"customer_performance:bi:{dataset}:{month}"
    conn.commit()  # the session's settings, nothing else: the push only reads
    was, conn.autocommit = conn.autocommit, True  # each read is its own short statement
    # one push of a dataset's month at a time, the lock held by a transaction of its own for the push
    try:
        with held_lock(conn, key, f"the BI push of {dataset}/{month}"), conn.cursor() as cur:
            check_inputs(cur, run, STAGES)
            version = f"{run.key}-{uuid.uuid4().hex[:8]}"
            # opening supersedes any open version of an earlier, killed try: its late requests are refused
            client.request("POST", f"/datasets/{dataset}/versions/{version}", json={"report_month": month})
            counts = {}
            for table in tables:
                counts[table] = _send_table(cur, client, dataset, version, table, stages, month, batch_rows)
            client.request(
                "POST",
                f"/datasets/{dataset}/versions/{version}/publish",
                json={"report_month": month, "tables": counts},
            )
    finally:
        conn.autocommit = was
    sent = {t: c["rows"] for t, c in counts.items()}
    log.info("published BI version %s of %s/%s: %s", version, dataset, month, sent)
    return sent


def _send_table(cur, client, dataset: str, version: str, table: str, stages, month: str, batch_rows: int) -> dict:
    """One table's rows, read whole (the BI tables are aggregates: thousands of rows at most) so that
    no transaction stays open across the HTTP calls, then sent in numbered batches."""
    path = f"/datasets/{dataset}/versions/{version}/tables/{table}/batches"
    cur.execute(sql.SQL(BI_TABLES[table]).format(**stages))
    names = [d.name for d in cur.description]
    rows = [bi_row(table, names, row, month) for row in cur.fetchall()]
    batches = 0
    for start in range(0, len(rows), batch_rows):
        client.request(
            "PUT", f"{path}/{batches}", json={"report_month": month, "rows": rows[start : start + batch_rows]}
        )
        batches += 1
    log.info("sent %s rows in %s batches to BI table %s/%s (version %s)", len(rows), batches, dataset, table, version)
    return {"rows": len(rows), "batches": batches}
