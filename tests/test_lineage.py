"""Lineage: a whole run under ``airflow dags test`` with OpenLineage's file transport, offline.

Every task's COMPLETE event must name the datasets it read and wrote: the source tables (customer
database, sales database, the CRM API), the run's staged tables, the analytics tables, the BI push
dataset and the final CSV files, by the names a lineage graph joins on, never a temporary file.
The test prints the datasets per task (``pytest -s``)."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from tests.conftest import LOGICAL_DATE, dags_test, own_destinations


def _events(path: Path) -> dict[str, dict]:
    """The COMPLETE event of each task, by task id."""
    found = {}
    for line in path.read_text().splitlines():
        event = json.loads(line)
        job = event["job"]["name"]
        if event["eventType"] == "COMPLETE" and job.startswith("customer_performance."):
            found[job.split(".", 1)[1]] = event
    return found


def _names(datasets: list[dict]) -> set[str]:
    return {f"{d['namespace']}/{d['name']}" for d in datasets}


def test_every_task_reports_the_datasets_it_read_and_wrote(stack, tmp_path):
    events = tmp_path / "openlineage.jsonl"
    exports = tmp_path / "exports"
    with own_destinations(stack, "cp_lin", exports) as (own, analytics, staging, bi):
        env = {
            **stack.prepare_airflow(tmp_path / "airflow"),
            **own,
            "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(
                {"type": "file", "log_file_path": str(events), "append": True}
            ),
            "AIRFLOW__OPENLINEAGE__EXTRACTORS": "include.customer_performance.lineage.TaskLineageExtractor",
            "AIRFLOW__OPENLINEAGE__NAMESPACE": "customer_performance_test",
            "CUSTOMER_PERFORMANCE_EMAIL_TO": "lineage@example.com",
        }
        dags_test(env, "2025-08-01T02:00:00+00:00")
    found = _events(events)
    tasks = {
        "extract_customer_db",
        "extract_crm_api",
        "extract_sales_db",
        "filter_period",
        "calculate",
        "validate",
        "aggregate",
        "load_analytics_db",
        "push_bi_api",
        "email_csv_export",
    }
    assert set(found) == tasks
    io = {t: (_names(e["inputs"]), _names(e["outputs"])) for t, e in found.items()}
    for task in sorted(tasks):  # the graph, for the reader of the test's output
        print(f"\n{task}\n  reads:  " + "\n          ".join(sorted(io[task][0])))
        print("  writes: " + "\n          ".join(sorted(io[task][1])))

    pg = f"postgres://127.0.0.1:{stack.connections()['analytics_db']['port']}"
    db = stack.analytics_db
    key = next(n for n in io["extract_customer_db"][1] if f"{staging}.customers_" in n).rsplit("customers_", 1)[1]

    def staged(name: str) -> str:
        return f"{pg}/{db}.{staging}.{name}_{key}"

    def published(name: str) -> str:
        return f"{pg}/{db}.{analytics}.{name}"

    # every task read something and wrote something; every staged table a task reads, one wrote
    assert all(r and w for r, w in io.values()), io
    written = set().union(*(w for _, w in io.values()))
    read = set().union(*(r for r, _ in io.values()))
    assert {n for n in read if f".{staging}." in n} <= written
    # the sources
    cdb = stack.connections()["customer_db"]
    assert f"postgres://127.0.0.1:{cdb['port']}/{cdb['schema']}.public.customers" in io["extract_customer_db"][0]
    sdb = stack.connections()["sales_db"]
    assert io["extract_sales_db"][0] >= {f"mysql://127.0.0.1:{sdb['port']}/{sdb['schema']}.transactions"}
    crm = stack.connections()["crm_api"]
    assert io["extract_crm_api"][0] == {f"http://127.0.0.1:{crm['port']}//v1/interactions"}
    # staged tables along the chain
    assert staged("transactions") in io["extract_sales_db"][1] and staged("customer_history") in io["calculate"][0]
    assert staged("flt_transactions") in io["filter_period"][1] and staged("customer_metrics") in io["calculate"][1]
    assert published("customer_lifetime") in io["extract_sales_db"][1]
    # the destinations: analytics tables, the BI dataset, the CSV files by their final names
    assert {published("customer_performance"), published("pipeline_runs")} <= io["load_analytics_db"][1]
    bi_conn = stack.connections()["bi_api"]
    assert f"http://127.0.0.1:{bi_conn['port']}//datasets/{bi}/tables/kpis" in io["push_bi_api"][1]
    files = {n for n in io["email_csv_export"][1] if n.startswith("file")}
    from include.customer_performance.export.csv_email import file_names
    from include.customer_performance.staging import make_run

    assert {Path(n).name for n in files} == set(file_names(make_run(LOGICAL_DATE, "any", None, "any")).values())
    assert all(str(exports) in n for n in files)
    assert any(n.endswith("/index.html") and "data_docs" in n for n in io["validate"][1])
    # no temporary or run-private file anywhere
    everything = read | written
    assert not [n for n in everything if ".part" in n or "customer_performance_mail_" in n]
    per_task = defaultdict(int)
    for task, (r, w) in io.items():
        per_task[task] = len(r) + len(w)
    assert min(per_task.values()) >= 2
