"""docker-compose.yaml cannot run here (no Docker engine): check it parses and agrees with the DAG."""

import dataclasses
import json
import re

import pytest
import yaml

from include.customer_performance.config import Settings
from tests.conftest import ROOT

CONN_TYPES = {
    "customer_db_conn_id": "postgres",
    "analytics_db_conn_id": "postgres",
    "sales_db_conn_id": "mysql",
    "crm_api_conn_id": "http",
    "bi_api_conn_id": "http",
    "smtp_conn_id": "smtp",
    "fx_rates_conn_id": "http",
}


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load((ROOT / "docker-compose.yaml").read_text())


def test_services_of_the_stack(compose):
    assert {
        "postgres",
        "mysql",
        "crm-api",
        "bi-api",
        "smtp",
        "airflow-apiserver",
        "airflow-scheduler",
        "airflow-dag-processor",
        "airflow-triggerer",
        "airflow-worker-1",
        "airflow-worker-2",
        "redis",
        "minio",
        "minio-init",
    } <= set(compose["services"])
    assert compose["services"]["mysql"]["image"].startswith("mysql:8")


def test_airflow_image_is_3_3_2_with_the_locked_requirements(compose):
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "FROM apache/airflow:3.3.2" in dockerfile
    assert "constraints.txt" in dockerfile
    assert compose["services"]["airflow-scheduler"]["image"].endswith(":3.3.2")


def test_every_connection_the_dag_uses_is_set_with_the_right_type(compose):
    env = compose["services"]["airflow-scheduler"]["environment"]
    defaults = Settings()
    for field in dataclasses.fields(Settings):
        if field.name in CONN_TYPES:
            conn_id = getattr(defaults, field.name)
            conn = json.loads(env[f"AIRFLOW_CONN_{conn_id.upper()}"])
            assert conn["conn_type"] == CONN_TYPES[field.name], conn_id


def test_connection_hosts_and_tokens_match_the_services(compose):
    env = compose["services"]["airflow-scheduler"]["environment"]
    services = compose["services"]
    for conn_id, service in (("CRM_API", "crm-api"), ("BI_API", "bi-api")):
        conn = json.loads(env[f"AIRFLOW_CONN_{conn_id}"])
        entry = services[service]["entrypoint"]
        assert conn["host"] == service
        assert entry[entry.index("--port") + 1] == str(conn["port"])
        assert entry[entry.index("--token") + 1] == conn["password"]
    fx = json.loads(env["AIRFLOW_CONN_FX_RATES"])
    entry = services["fx-api"]["entrypoint"]
    assert fx["host"] == "fx-api" and entry[entry.index("--port") + 1] == str(fx["port"])
    for conn_id in ("CUSTOMER_DB", "ANALYTICS_DB"):
        assert json.loads(env[f"AIRFLOW_CONN_{conn_id}"])["host"] == "postgres"
    assert json.loads(env["AIRFLOW_CONN_SALES_DB"])["host"] == "mysql"
    assert json.loads(env["AIRFLOW_CONN_SMTP_DEFAULT"])["host"] == "smtp"


def test_package_is_mounted_and_importable(compose):
    common = compose["services"]["airflow-scheduler"]
    mounts = {m.split(":")[1] for m in common["volumes"]}
    assert {"/opt/airflow/dags", "/opt/airflow/include", "/opt/airflow/plugins"} <= mounts
    assert common["environment"]["PYTHONPATH"] == "/opt/airflow"


def test_databases_created_by_the_init_script_match_the_connections(compose):
    init = (ROOT / "dev/compose/init-postgres.sql").read_text()
    env = compose["services"]["airflow-scheduler"]["environment"]
    for conn_id in ("CUSTOMER_DB", "ANALYTICS_DB"):
        db = json.loads(env[f"AIRFLOW_CONN_{conn_id}"])["schema"]
        assert re.search(rf"CREATE DATABASE {db}\b", init), db
    assert (
        compose["services"]["mysql"]["environment"]["MYSQL_DATABASE"]
        == json.loads(env["AIRFLOW_CONN_SALES_DB"])["schema"]
    )


def test_the_deployment_is_distributed_with_one_store_for_artifacts_and_logs(compose):
    """CeleryExecutor on the compose Redis, two workers of their own host names, and every run
    artifact and task log in the object store the init job creates the buckets of."""
    from include.customer_performance.export.artifacts import local_store_warning

    services = compose["services"]
    env = services["airflow-scheduler"]["environment"]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://redis:6379/")
    workers = [name for name, svc in services.items() if svc.get("command") == "celery worker"]
    assert len(workers) == 2 and len({services[w]["hostname"] for w in workers}) == 2
    assert all(services[w]["environment"] == env for w in workers)  # one configuration for all
    location = env["CUSTOMER_PERFORMANCE_EXPORT_LOCATION"]
    m = re.match(r"s3://(\w+)@([\w.-]+)/", location)
    assert m, location
    conn = json.loads(env[f"AIRFLOW_CONN_{m[1].upper()}"])
    assert conn["conn_type"] == "aws" and conn["extra"]["endpoint_url"].startswith("http://minio:")
    assert env["AIRFLOW__LOGGING__REMOTE_LOGGING"] == "true" and env["AIRFLOW__LOGGING__REMOTE_LOG_CONN_ID"] == m[1]
    logs_bucket = re.match(r"s3://([\w.-]+)/", env["AIRFLOW__LOGGING__REMOTE_BASE_LOG_FOLDER"])[1]
    init = " ".join(services["minio-init"]["entrypoint"])
    assert f"store/{m[2]}" in init and f"store/{logs_bucket}" in init
    minio = services["minio"]["environment"]
    assert (conn["login"], conn["password"]) == (minio["MINIO_ROOT_USER"], minio["MINIO_ROOT_PASSWORD"])
    # the links readers get are signed for the store's address on the host (its published port)
    readers = json.loads(env[f"AIRFLOW_CONN_{env['CUSTOMER_PERFORMANCE_EXPORT_LINK_CONN_ID'].upper()}"])
    assert (readers["login"], readers["password"]) == (conn["login"], conn["password"])
    port = readers["extra"]["endpoint_url"].rsplit(":", 1)[1]
    assert (
        readers["extra"]["endpoint_url"].startswith("http://localhost:")
        and f"{port}:9000" in services["minio"]["ports"]
    )
    # the DAG would warn at parse time about a local export location under this executor; not here
    cfg = dataclasses.replace(Settings(), export_location=location)
    assert local_store_warning(cfg, env["AIRFLOW__CORE__EXECUTOR"]) == ""
    assert local_store_warning(dataclasses.replace(cfg, export_location="/opt/airflow/exports"), "CeleryExecutor")
