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
