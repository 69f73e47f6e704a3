"""The DAG on a distributed Airflow: CeleryExecutor on Redis with two workers, each with its own
AIRFLOW_HOME and temporary folder (dev/airflow_local.py, ``executor="celery"``).

July runs once under ``airflow dags test`` (one process) and once under the scheduler with the
Celery workers; every destination (analytics tables, BI rows, CSV bytes) must be the same, and the
run's tasks must have run on both workers."""

from __future__ import annotations

from pathlib import Path

from dev.airflow_local import DAG_ID, LocalAirflow
from tests.conftest import dags_test, running_stack, snapshot

JULY_CLOSE = "2025-08-01T02:00:00+00:00"


def _csv_bytes(stack) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(Path(stack.export_dir).rglob("*.csv"))}


def test_a_month_on_two_celery_workers_equals_the_single_process_run(tmp_path_factory):
    with running_stack("cp_c", tmp_path_factory.mktemp("celery"), 400, seed=11) as stack:
        env = stack.prepare_airflow(tmp_path_factory.mktemp("dags_test"))
        dags_test(env, JULY_CLOSE)
        single, single_csv = snapshot(stack), _csv_bytes(stack)
        assert len(single_csv) == 15 and single["customer_performance"]

        af = LocalAirflow(stack, tmp_path_factory.mktemp("airflow"), executor="celery", workers=2)
        try:
            af.start()
            af.unpause()  # today's scheduled run starts and ends first (no data for this month)
            af.api("POST", f"/dags/{DAG_ID}/dagRuns", json={"dag_run_id": "celery_july", "logical_date": JULY_CLOSE})
            runs = af.wait_for_runs(lambda rs: any(r["run_id"] == "celery_july" for r in rs), 900, "July on Celery")
            assert next(r for r in runs if r["run_id"] == "celery_july")["state"] == "success", af.task_states(
                "celery_july"
            )
            hosts = af.query(
                "SELECT hostname, count(*) FROM task_instance WHERE dag_id = %s AND run_id = %s GROUP BY hostname",
                (DAG_ID, "celery_july"),
            )
            executors = af.query(
                "SELECT DISTINCT executor FROM task_instance WHERE dag_id = %s AND run_id = %s", (DAG_ID, "celery_july")
            )
        finally:
            af.stop()
            af.drop_db()
        workers = {h.split("@")[0]: n for h, n in hosts}
        assert set(workers) == {"worker1", "worker2"}, hosts  # the tasks ran on both workers, on nothing else
        assert sum(workers.values()) == 10
        assert executors in ([(None,)], [("CeleryExecutor",)]), executors
        assert snapshot(stack) == single  # every analytics table and BI row as the single-process run's
        assert _csv_bytes(stack) == single_csv  # the CSV files byte for byte
