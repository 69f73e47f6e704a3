"""What each task read and wrote, reported to Airflow's hook lineage collector for OpenLineage.

The tasks read and write through raw cursors and COPY, which no hook sees, so after a task
succeeds ``report`` tells the collector its datasets, as Airflow asset URIs:

- the sources: ``postgres://<host>:<port>/<db>/<schema>/<table>`` (customers, sessions) and
  ``mysql://<host>:<port>/<db>/<table>`` (sales);
- the run's staged tables (``postgres://.../<staging schema>/<table>_<run key>``): each task's
  outputs are the stages it writes (stages.py), its inputs the stages it reads (``READS``);
- the analytics tables a task reads or publishes, and the lifetime state;
- the files: the CSV exports and the Data Docs page at their storage URL (``file:///...``,
  ``s3://<bucket>/<key>``), never a temporary name.

OpenLineage's provider turns these into each task's input and output datasets (its PythonExtractor
finds none in a ``@task`` and falls back to the collector). Two datasets are HTTP APIs, which no
Airflow asset scheme covers: the CRM API the interactions come from and the BI push dataset. They
go to the collector as extras (``EXTRA_KEY``) and ``TaskLineageExtractor`` (set
``[openlineage] extractors`` to ``include.customer_performance.lineage.TaskLineageExtractor``)
emits them with the rest. docs/deployment.md, "Lineage", shows the graph.
"""

from __future__ import annotations

import functools
import logging
from urllib.parse import quote, urlsplit

from include.customer_performance.config import Settings
from include.customer_performance.schemas import ACTIVITY, CUSTOMERS, INTERACTIONS, TRANSACTIONS
from include.customer_performance.stages import DATASETS, STAGES, SUITES
from include.customer_performance.staging import Run

log = logging.getLogger(__name__)

EXTRA_KEY = "customer_performance.http_dataset"
LIFETIME_TABLES = ("lifetime_snapshots", "customer_lifetime")


def _expand(name: str) -> list[str]:
    if "{dataset}" in name:
        return [name.replace("{dataset}", d) for d in DATASETS]
    if "{suite}" in name:
        return [name.replace("{suite}", s) for s in SUITES]
    return [name]


# Stages a task writes besides those stages.py names it the writer of: calculate flags the
# transactions for the gate in the pass that converts them (validate flags them again on a rerun).
ALSO_WRITES: dict[str, tuple[str, ...]] = {"calculate": ("dq_flagged_transactions",)}


def writes(task_id: str) -> list[str]:
    """The stages ``task_id`` writes (stages.py's writer, and ``ALSO_WRITES``)."""
    return [n for s in STAGES if s.writer == task_id for n in _expand(s.name)] + list(ALSO_WRITES.get(task_id, ()))


# The stages each task reads that an earlier task wrote (what its SQL models and code read).
READS: dict[str, tuple[str, ...]] = {
    "extract_customer_db": (),
    "extract_crm_api": (),
    "extract_sales_db": (),
    "filter_period": DATASETS,
    "calculate": (*(f"flt_{d}" for d in DATASETS), "customer_history"),
    "validate": (
        *(f"flt_{d}" for d in DATASETS),
        "customer_metrics",
        "dq_flagged_transactions",  # as calculate flagged them (a rerun flags them again)
        "repeated_transaction_ids",
        "probable_duplicate_keys",
        "unknown_transaction_customers",
    ),
    "aggregate": (
        "customer_metrics",
        "int_transactions",
        "vld_interactions",
        "vld_customer_activity",
        "dq_results",
        "scorecard",
    ),
}
# The analytics tables each task reads (the month before, the rates, the published predictions).
ANALYTICS_READS: dict[str, tuple[str, ...]] = {
    "extract_sales_db": LIFETIME_TABLES,
    "calculate": ("fx_rates", "customer_performance"),
    "aggregate": ("customer_performance", "regional_summary"),
}


def _delivery_reads(task_id: str) -> tuple[str, ...]:
    """A destination's staged inputs: what it checks before touching its destination."""
    from include.customer_performance.export import csv_email
    from include.customer_performance.load import analytics_db, bi_api

    reads = {
        "load_analytics_db": analytics_db.STAGED_INPUTS,
        "push_bi_api": bi_api.STAGES,
        "email_csv_export": csv_email.STAGED_INPUTS,
    }
    return tuple(reads.get(task_id, ()))


@functools.cache
def _connection(conn_id: str) -> tuple[str, int | None, str]:
    from airflow.sdk import BaseHook

    conn = BaseHook.get_connection(conn_id)
    return conn.host or "localhost", conn.port, conn.schema or ""


def postgres_uri(conn_id: str, schema: str, table: str) -> str:
    host, port, db = _connection(conn_id)
    return f"postgres://{host}:{port or 5432}/{quote(db)}/{quote(schema)}/{quote(table)}"


def mysql_uri(conn_id: str, table: str) -> str:
    host, port, db = _connection(conn_id)
    return f"mysql://{host}:{port or 3306}/{quote(db)}/{quote(table)}"


def http_dataset(conn_id: str, path: str) -> dict:
    """An HTTP API's dataset as OpenLineage names one: the API's origin, the resource's path."""
    from airflow.sdk import BaseHook

    from include.customer_performance.http_client import base_url

    parts = urlsplit(base_url(BaseHook.get_connection(conn_id)))
    return {"namespace": f"{parts.scheme}://{parts.netloc}", "name": (parts.path.rstrip("/") + path)}


def file_uri(location: str) -> str:
    """A file's asset URI: its storage URL without the connection id (``s3://conn@bucket/key``
    names the bucket ``bucket``), a local path as ``file://``."""
    if "://" not in location:
        return "file://" + quote(location)
    parts = urlsplit(location)
    return f"{parts.scheme}://{parts.hostname or ''}{parts.path}"


def datasets(task_id: str, run: Run, cfg: Settings, out: dict) -> dict[str, list]:
    """``{"inputs": [...], "outputs": [...]}`` of a successful try of ``task_id``: asset URIs, and
    HTTP datasets as ``{namespace, name}``."""
    pg = cfg.analytics_db_conn_id
    staged = [*READS.get(task_id, ()), *_delivery_reads(task_id)]
    inputs: list = [postgres_uri(pg, run.schema, run.table_name(s)) for s in staged]
    inputs += [postgres_uri(pg, cfg.analytics_schema, t) for t in ANALYTICS_READS.get(task_id, ())]
    outputs: list = [postgres_uri(pg, run.schema, run.table_name(s)) for s in writes(task_id)]
    if task_id == "extract_customer_db":
        # the tables as the extract names them, unqualified: the connection's default schema
        inputs += [postgres_uri(cfg.customer_db_conn_id, "public", t.source_table) for t in (CUSTOMERS, ACTIVITY)]
    elif task_id == "extract_sales_db":
        inputs.append(mysql_uri(cfg.sales_db_conn_id, TRANSACTIONS.source_table))
        outputs += [postgres_uri(pg, cfg.analytics_schema, t) for t in LIFETIME_TABLES]
    elif task_id == "extract_crm_api":
        inputs.append(http_dataset(cfg.crm_api_conn_id, INTERACTIONS.source_table))
    elif task_id == "load_analytics_db":
        from include.customer_performance.load.analytics_db import PARTITION_TABLES, RUN_TABLES

        tables = (*PARTITION_TABLES, *RUN_TABLES, "pipeline_runs")
        outputs += [postgres_uri(pg, cfg.analytics_schema, t) for t in tables]
    elif task_id == "push_bi_api":
        outputs += [http_dataset(cfg.bi_api_conn_id, f"/datasets/{cfg.bi_dataset}/tables/{t}") for t in cfg.bi_tables]
    elif task_id == "email_csv_export":
        outputs += [file_uri(f["path"]) for f in (out.get("files") or {}).values()]
    if task_id in ("validate", "aggregate") and out.get("data_docs") and not out.get("data_docs_error"):
        outputs.append(file_uri(out["data_docs"].rstrip("/") + "/index.html"))
    return {"inputs": inputs, "outputs": outputs}


def start() -> None:
    """A fresh collector for a task: where one process runs several tasks (``airflow dags test``),
    a task's lineage must not carry the one before's. (A worker runs each task in a process of
    its own, where this is a no-op.)"""
    try:
        from airflow.sdk.lineage import get_hook_lineage_collector

        get_hook_lineage_collector.cache_clear()
    except Exception:  # noqa: BLE001 - an Airflow without the cached getter: nothing to clear
        log.debug("no lineage collector to reset", exc_info=True)


class _Context:
    """The collector keys what it holds by a context (a hook, a path); the task is ours."""

    def __init__(self, task_id: str) -> None:
        self.task_id = task_id


def report(task_id: str, run: Run, cfg: Settings, out: dict) -> dict[str, list]:
    """Tell Airflow's hook lineage collector what ``task_id`` read and wrote; returns it. Lineage
    never fails a task: a dataset that cannot be named is logged and left out."""
    try:
        from airflow.sdk.lineage import get_hook_lineage_collector

        found = datasets(task_id, run, cfg, out)
        collector, context = get_hook_lineage_collector(), _Context(task_id)
        for direction, items in found.items():
            for item in items:
                if isinstance(item, dict):
                    collector.add_extra(context=context, key=EXTRA_KEY, value={**item, "direction": direction})
                elif direction == "inputs":
                    collector.add_input_asset(context=context, uri=item)
                else:
                    collector.add_output_asset(context=context, uri=item)
        return found
    except Exception:  # noqa: BLE001 - lineage is for people reading a graph, never a reason to fail
        log.warning("lineage of %s not reported", task_id, exc_info=True)
        return {"inputs": [], "outputs": []}


def _openlineage_datasets(collected) -> tuple[list, list]:
    from airflow.providers.openlineage.utils.utils import translate_airflow_asset
    from openlineage.client.event_v2 import Dataset

    inputs = [d for a in collected.inputs if (d := translate_airflow_asset(a.asset, a.context)) is not None]
    outputs = [d for a in collected.outputs if (d := translate_airflow_asset(a.asset, a.context)) is not None]
    for extra in collected.extra:
        if extra.key == EXTRA_KEY:
            value = extra.value
            (inputs if value.get("direction") == "inputs" else outputs).append(
                Dataset(namespace=value["namespace"], name=value["name"])
            )
    return inputs, outputs


try:  # the extractor exists where the OpenLineage provider is installed
    from airflow.providers.openlineage.extractors.python import PythonExtractor
except ImportError:  # pragma: no cover - the provider is in the lock
    PythonExtractor = None

if PythonExtractor is not None:

    class TaskLineageExtractor(PythonExtractor):
        """The Python tasks' extractor, with the HTTP datasets: what PythonExtractor gives (the
        source code facet) plus every dataset the collector holds, asset or ``EXTRA_KEY`` extra.
        Registered for ``@task`` tasks (``_PythonDecoratedOperator``), which have no extractor of
        their own: for another DAG's, it adds the source code facet to what the collector holds."""

        @classmethod
        def get_operator_classnames(cls) -> list[str]:
            return ["_PythonDecoratedOperator"]

        def extract_on_complete(self, task_instance):
            base = super().extract_on_complete(task_instance)
            return self._with_collected(base)

        def extract_on_failure(self, task_instance):
            return self._with_collected(super().extract_on_complete(task_instance))

        def _with_collected(self, base):
            from airflow.providers.openlineage.extractors.base import OperatorLineage
            from airflow.sdk.lineage import get_hook_lineage_collector

            base = base or OperatorLineage()
            collector = get_hook_lineage_collector()
            if not getattr(collector, "has_collected", False):
                return base
            inputs, outputs = _openlineage_datasets(collector.collected_assets)
            return OperatorLineage(
                inputs=[*base.inputs, *inputs],
                outputs=[*base.outputs, *outputs],
                run_facets=base.run_facets,
                job_facets=base.job_facets,
            )
