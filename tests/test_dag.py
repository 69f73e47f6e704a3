"""The DAG file imports cleanly and has the shape of docs/architecture.md."""

import json

import pytest

from tests.conftest import ROOT

EXPECTED_EDGES = {
    "extract_customer_db": {"filter_period"},
    "extract_crm_api": {"filter_period"},
    "extract_sales_db": {"filter_period"},
    "filter_period": {"calculate"},
    "calculate": {"validate"},
    "validate": {"aggregate", "load_analytics_db"},
    "aggregate": {"load_analytics_db", "push_bi_api", "email_csv_export"},
    "load_analytics_db": set(),
    "push_bi_api": set(),
    "email_csv_export": set(),
}


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(ROOT / "dags"))


@pytest.fixture(scope="module")
def dag(dagbag):
    return dagbag.dags["customer_performance"]


def test_dagbag_imports_without_errors(dagbag):
    assert dagbag.import_errors == {}
    assert list(dagbag.dag_ids) == ["customer_performance"]


def test_exactly_the_ten_tasks_wired_as_designed(dag):
    assert {t.task_id: set(t.downstream_task_ids) for t in dag.tasks} == EXPECTED_EDGES


def test_extracts_and_destinations_run_in_parallel(dag):
    for task_id in ("extract_customer_db", "extract_crm_api", "extract_sales_db"):
        assert not dag.get_task(task_id).upstream_task_ids
    for task_id in ("push_bi_api", "email_csv_export"):
        assert dag.get_task(task_id).upstream_task_ids == {"aggregate"}


def test_schedule_and_run_policy(dag):
    assert dag.schedule == "0 2 * * *" or str(dag.timetable.summary) == "0 2 * * *"
    assert dag.catchup is False
    assert dag.max_active_runs == 1
    assert dag.doc_md and "Report period" in dag.doc_md


def test_retries_come_from_the_settings_per_kind_of_task():
    from include.customer_performance.config import Settings, load_settings

    defaults = Settings()
    assert defaults.extract_retries >= 2 and defaults.deliver_retries >= 2 and defaults.transform_retries >= 1
    assert load_settings({"CUSTOMER_PERFORMANCE_EXTRACT_RETRIES": "5"}).extract_retries == 5


def test_every_task_reads_like_the_runbook(dag):
    from include.customer_performance.runbook import TASKS

    assert set(TASKS) == set(dag.task_ids)
    for t in dag.tasks:
        assert t.retries == 0, t.task_id  # the tests set CUSTOMER_PERFORMANCE_<KIND>_RETRIES=0
        assert t.task_display_name == TASKS[t.task_id].display_name != t.task_id
        assert TASKS[t.task_id].on_failure in t.doc_md, t.task_id
        assert t.on_failure_callback, t.task_id  # the failure email
    for section in ("Report period", "Rerun", "Backfill", "Where the outputs go", "Alerts"):
        assert section in dag.doc_md


def test_a_run_past_its_deadline_is_alerted():
    from include.customer_performance.config import Settings
    from include.customer_performance.notify import deadline_alert

    alert = deadline_alert(Settings())
    assert alert.interval.total_seconds() == 4 * 3600  # logical date 02:00 -> 06:00
    # not DagRunQueuedAt: Airflow 3.3 cannot clear a run with a pending queued-at deadline (#70368)
    assert type(alert.reference).__name__ == "DagRunLogicalDateDeadline"
    assert alert.callback.kwargs["to"] == ["data-oncall@example.com"]
    assert deadline_alert(Settings(deadline_minutes=0)) is None


def test_only_a_run_queued_before_its_deadline_is_late():
    from include.customer_performance.notify import is_late

    deadline = {"deadline_time": "2026-12-01T06:00:00+00:00"}
    nightly = {
        "dag_run": {"run_id": "scheduled__2026-12-01", "queued_at": "2026-12-01T02:00:05Z"},
        "deadline": deadline,
    }
    backfill = {
        "dag_run": {"run_id": "backfill__2025-08-01", "queued_at": "2026-12-01T09:00:00Z"},
        "deadline": deadline,
    }
    assert is_late(nightly) and not is_late(backfill)
    assert is_late({"deadline": deadline})  # without a queued time: alert rather than stay silent


def test_report_month_param_is_validated(dag):
    param = dag.params.get_param("report_month")
    assert param.schema["pattern"]
    param.resolve("2025-07")
    with pytest.raises(Exception, match="does not match"):
        param.resolve("July")


def test_non_retryable_failures_are_declared(dag):
    from include.customer_performance.http_client import AuthError
    from include.customer_performance.quality.gate import QualityGateError

    crm = dag.get_task("extract_crm_api").retry_policy
    assert crm.evaluate(AuthError("no"), 1, 3).action.name == "FAIL"
    gate = dag.get_task("validate").retry_policy
    assert gate.evaluate(QualityGateError("bad"), 1, 3).action.name == "FAIL"
    assert gate.evaluate(ConnectionError("blip"), 1, 3).action.name != "FAIL"


def test_each_source_has_its_own_pool_and_the_pools_file_defines_them(dag):
    import json

    pools = json.loads((ROOT / "pools.json").read_text())
    for task_id, pool in (
        ("extract_customer_db", "customer_db"),
        ("extract_sales_db", "sales_db"),
        ("extract_crm_api", "crm_api"),
    ):
        assert dag.get_task(task_id).pool == pool
        assert pools[pool]["slots"] >= 1 and pools[pool]["description"]


def test_every_staged_table_is_declared_once_and_documented():
    """stages.py declares each staged table; Run.table refuses any other name; docs/architecture.md
    lists each declaration."""
    from include.customer_performance.stages import STAGES, UndeclaredStageError, declared
    from include.customer_performance.staging import make_run

    run = make_run(None, "manual__x", "2025-07", "cp_staging")
    assert declared("flt_customer_activity").name == "flt_{dataset}"
    assert declared("dq_flagged_kpis").writer == "validate"
    assert run.table_name("customer_metrics").startswith("customer_metrics_r")
    with pytest.raises(UndeclaredStageError, match="stages.py"):
        run.table_name("customer_metric")
    with pytest.raises(UndeclaredStageError):
        run.table_name("flt_kpis")  # a suite, not a dataset
    assert len({s.name for s in STAGES}) == len(STAGES)
    doc = (ROOT / "docs" / "architecture.md").read_text()
    names = {s.name.replace("{dataset}", "<dataset>").replace("{suite}", "<suite>") for s in STAGES}
    assert {n for n in names if f"`{n}`" not in doc} == set()


def test_the_stage_registry_knows_every_suite_and_dataset():
    from include.customer_performance.quality.suites import AGGREGATE_SUITES, SUITES
    from include.customer_performance.stages import DATASETS
    from include.customer_performance.stages import SUITES as STAGE_SUITES

    filters = json.loads((ROOT / "include" / "customer_performance" / "filters.json").read_text())
    assert set(STAGE_SUITES) == {s.name for s in (*SUITES, *AGGREGATE_SUITES)}
    assert set(DATASETS) == set(filters)


def test_models_bind_their_inputs_by_name_and_refuse_strays():
    from include.customer_performance.sql import model, placeholders
    from include.customer_performance.staging import make_run

    run = make_run(None, "manual__x", "2025-07", "cp_staging")
    assert placeholders("int_customer_sales") == {"int_transactions"}
    assert run.table_name("int_transactions") in model("int_customer_sales", run).as_string(None)
    with pytest.raises(ValueError, match="has no placeholder transactions"):
        model("int_customer_sales", run, transactions=run.table("int_transactions"))
    with pytest.raises(ValueError, match=r"nothing binds its placeholder \{previous\}"):
        model("customer_metrics", run)


def test_a_rule_states_its_severity_and_a_warning_its_ceiling():
    from include.customer_performance.quality.suites import CRITICAL, WARNING, WARNING_CEILING, Check, rows_rule

    with pytest.raises(ValueError, match="declares its ceiling"):
        rows_rule("t.x.bad", "x < 0", WARNING)
    with pytest.raises(ValueError, match="declares its ceiling"):
        Check("t.x.req", "ExpectColumnValuesToNotBeNull", {"column": "x"}, CRITICAL, ceiling=WARNING_CEILING)
    with pytest.raises(ValueError, match="not a setting"):
        rows_rule("t.x.bad", "x < 0", WARNING, ceiling="no_such_setting")
    with pytest.raises(ValueError, match="severity must be"):
        rows_rule("t.x.bad", "x < 0", "warn")
    with pytest.raises(ValueError, match="every rule says why"):
        rows_rule("t.x.bad", "x < 0", CRITICAL)
    with pytest.raises(ValueError, match="every rule says why"):
        rows_rule("t.x.bad", "x < 0", CRITICAL, description="<script>")
    assert rows_rule("t.x.bad", "x < 0", CRITICAL, description="Why.").described() == "t.x.bad (critical): Why."


def test_one_retry_plan_per_task_from_the_settings():
    import dataclasses

    from include.customer_performance.config import settings
    from include.customer_performance.retry import API_RETRY_POLICY, NO_RETRY_ON_BAD_DATA, plan

    cfg = dataclasses.replace(settings(), request_attempts=7, request_backoff_seconds=0.25, extract_retries=4)
    crm = plan("extract_crm_api", cfg)
    assert (crm.task_retries, crm.policy, crm.client_kwargs()) == (
        4,
        API_RETRY_POLICY,
        {"max_attempts": 7, "backoff": 0.25, "max_wait": cfg.request_max_wait_seconds},
    )
    assert plan("calculate", cfg).request_attempts == cfg.rates_request_attempts
    assert plan("filter_period", cfg).policy is NO_RETRY_ON_BAD_DATA
    with pytest.raises(ValueError, match="at least 1"):
        dataclasses.replace(cfg, request_attempts=0)


def test_a_local_export_location_under_a_distributed_executor_is_warned_at_parse(monkeypatch, caplog):
    """Celery or Kubernetes workers with a local export folder: each worker would keep its own
    months. Said in the parse log and at the top of the DAG's docs; not for LocalExecutor, an
    object store, or a folder declared shared."""
    import dataclasses

    from airflow.dag_processing.dagbag import DagBag

    from include.customer_performance.config import settings
    from include.customer_performance.export.artifacts import local_store_warning

    cfg = settings()
    assert local_store_warning(cfg, "LocalExecutor") == ""
    assert local_store_warning(cfg, "airflow.executors.local_executor.LocalExecutor") == ""
    for executor in ("CeleryExecutor", "LocalExecutor,KubernetesExecutor", "gpu:my.pkg.EdgeExecutor"):
        assert "is a folder on the worker" in local_store_warning(cfg, executor), executor
    assert local_store_warning(dataclasses.replace(cfg, export_location="s3://aws_default@b/p"), "CeleryExecutor") == ""
    assert local_store_warning(dataclasses.replace(cfg, export_location_shared=True), "CeleryExecutor") == ""

    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", "CeleryExecutor")
    with caplog.at_level("WARNING"):
        dag = DagBag(dag_folder=str(ROOT / "dags")).dags["customer_performance"]
    assert dag.doc_md.startswith("> **Warning:** the export location ")
    assert any("is a folder on the worker" in r.getMessage() for r in caplog.records)
