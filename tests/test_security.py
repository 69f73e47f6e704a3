"""The CRM API is untrusted: each hostile answer, served for real by the CRM stand-in, fails the
extract with an error that names it, within bounds of time and memory; and a malformed secret never
reaches a log or an error."""

from __future__ import annotations

import json
import time
from datetime import datetime

import pytest
import requests

from include.customer_performance.extract.crm_api import Limits, MalformedPageError, iter_pages
from include.customer_performance.http_client import (
    ApiClient,
    ApiError,
    ConnectionConfigError,
    TooLargeError,
    check_secret,
)

JULY_START, AUG_START = datetime(2025, 7, 1), datetime(2025, 8, 1)


def fault(stack, *faults):
    requests.post(f"http://127.0.0.1:{stack.crm_port}/_control/faults", json=list(faults), timeout=5).raise_for_status()


@pytest.fixture
def crm(stack):
    requests.delete(f"http://127.0.0.1:{stack.crm_port}/_control/faults", timeout=5)
    yield ApiClient(f"http://127.0.0.1:{stack.crm_port}", stack.crm_token, "crm_api", backoff=0.01, read_timeout=5)
    requests.delete(f"http://127.0.0.1:{stack.crm_port}/_control/faults", timeout=5)


def pages(crm, limits: Limits | None = None, size=50):
    return list(iter_pages(crm, JULY_START, AUG_START, size, limits or Limits()))


def test_a_cursor_that_points_to_itself_is_a_loop_not_a_hang(stack, crm):
    fault(stack, {"kind": "loop", "times": 100})
    t0 = time.monotonic()
    with pytest.raises(MalformedPageError, match="points to cursor .* again: the API's pagination loops"):
        pages(crm)
    assert time.monotonic() - t0 < 10


def test_more_pages_than_the_setting_allows_is_an_error(stack, crm):
    with pytest.raises(MalformedPageError, match="more than 3 pages for one period \\(setting crm_max_pages\\)"):
        pages(crm, Limits(max_pages=3))
    assert len(pages(crm, size=5000)) >= 1  # within the limit: fine


def test_a_page_larger_than_asked_for_is_refused(stack, crm):
    fault(stack, {"kind": "oversized"})
    with pytest.raises(MalformedPageError, match="holds \\d+ records, more than the 50 asked for"):
        pages(crm)


def test_a_body_that_inflates_past_the_limit_is_refused_in_bounded_memory(stack, crm):
    import tracemalloc

    fault(stack, {"kind": "gzip_bomb", "mb": 200})
    tracemalloc.start()
    try:
        with pytest.raises(TooLargeError, match="larger than 1048576 bytes \\(decompressed\\)"):
            pages(crm, Limits(max_bytes=1 << 20))
        peak_mb = tracemalloc.get_traced_memory()[1] / (1 << 20)
    finally:
        tracemalloc.stop()
    assert peak_mb < 20  # 200 MB were on offer


def test_a_slow_drip_is_cut_off_at_the_request_deadline(stack, crm):
    fault(stack, {"kind": "drip", "seconds": 60})
    t0 = time.monotonic()
    with pytest.raises(ApiError, match="did not arrive within the request deadline"):
        pages(crm, Limits(request_seconds=3))
    assert time.monotonic() - t0 < 15  # the read timeout (5 s) never fires on a drip; the deadline does


@pytest.mark.parametrize("token", ["s3cr3t\n", "s3cr3t\r\nX-Evil: 1", " s3cr3t", "s3c\x00r3t"])
def test_a_token_with_whitespace_or_control_characters_is_refused_without_showing_it(token, monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_CRM_SECRET_TEST",
        json.dumps({"conn_type": "http", "host": "127.0.0.1", "port": 1, "password": token}),
    )
    with pytest.raises(ConnectionConfigError) as err:
        ApiClient.from_connection("crm_secret_test")
    assert "s3c" not in str(err.value) and "whitespace or control characters" in str(err.value)
    check_secret("x", "password", "a-clean-token")  # no error
    check_secret("x", "password", "a pass phrase", spaces=True)  # a database password may hold spaces
    with pytest.raises(ConnectionConfigError, match="control characters"):
        check_secret("x", "password", "pass\n", spaces=True)


def test_an_upstream_body_in_an_error_is_cut_masked_and_marked():
    from include.customer_performance.http_client import untrusted

    text = untrusted("echo: Bearer s3cret " + "x" * 1000, ("s3cret",))
    assert text.startswith("[untrusted response body: 'echo: Bearer *** xxx") and "s3cret" not in text
    assert len(text) < 400


def test_a_task_log_never_shows_a_refused_token(stack, caplog):
    """A 401 names the connection and status, never the token it sent."""
    from include.customer_performance.http_client import AuthError

    client = ApiClient(f"http://127.0.0.1:{stack.crm_port}", "wrong-token-abc123", "crm_api")
    with pytest.raises(AuthError) as err:
        client.request("GET", "/v1/interactions", params={"start": "2025-07-01", "end": "2025-08-01"})
    assert "wrong-token-abc123" not in str(err.value) and "401" in str(err.value)
    assert "wrong-token-abc123" not in caplog.text


# -- no secret reaches a log, an email, XCom, the analytics database or an export -----------------
SECRET = "s3cr3t-Tok3n-9f2c"


@pytest.fixture(scope="module")
def secret_stack(tmp_path_factory, stack):
    from tests.conftest import running_stack

    with running_stack("cp_z", tmp_path_factory.mktemp("secrets"), 100, seed=3) as s:
        yield s


def everywhere(s, capfd, caplog) -> str:
    """Every place a secret could leak to: the task logs, the mails, the analytics database, the
    exports, and Airflow's metadata DB (XCom, rendered fields)."""
    import subprocess

    from tests.conftest import AIRFLOW_HOME

    out = capfd.readouterr()
    parts = [out.out, out.err, caplog.text]
    parts += [m.read_bytes().decode(errors="replace") for m in s.mails()]
    parts += [p.read_bytes().decode(errors="replace") for p in s.export_dir.rglob("*") if p.is_file()]
    dump = subprocess.run(["pg_dump", "-h", "127.0.0.1", "-U", "postgres", s.analytics_db], capture_output=True)
    parts.append(dump.stdout.decode(errors="replace"))
    parts.append((AIRFLOW_HOME / "airflow.db").read_bytes().decode(errors="replace"))
    return "\n".join(parts)


def run_with(s, dag_fixture, conn_id: str, **changes) -> str:
    """One July run with connection ``conn_id`` changed; returns the failed task's id."""
    import os

    from tests.conftest import LOGICAL_DATE

    var = f"AIRFLOW_CONN_{conn_id.upper()}"
    saved = os.environ[var]
    os.environ[var] = json.dumps({**json.loads(saved), **changes})
    try:
        dr = dag_fixture.test(logical_date=LOGICAL_DATE)
    finally:
        os.environ[var] = saved
    assert dr.state == "failed"
    return next(ti.task_id for ti in dr.get_task_instances() if ti.state == "failed")


@pytest.fixture
def fresh_dag(airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    from tests.conftest import ROOT

    return DagBag(dag_folder=str(ROOT / "dags")).dags["customer_performance"]


@pytest.mark.parametrize(
    ("conn_id", "changes", "task", "said"),
    [
        ("crm_api", {"password": SECRET}, "extract_crm_api", "refused with 401"),
        ("crm_api", {"password": SECRET + "\n"}, "extract_crm_api", "whitespace or control characters"),
        ("sales_db", {"password": SECRET}, "extract_sales_db", "Access denied"),
        ("bi_api", {"port": 1, "password": SECRET}, "push_bi_api", "still failing after"),
    ],
    ids=["401", "bad header", "wrong database password", "network"],
)
def test_no_secret_reaches_any_output_on_failure(secret_stack, fresh_dag, capfd, caplog, conn_id, changes, task, said):
    failed = run_with(secret_stack, fresh_dag, conn_id, **changes)
    assert failed == task
    seen = everywhere(secret_stack, capfd, caplog)
    assert said in seen  # the failure is reported...
    assert SECRET not in seen  # ...and the secret is nowhere


# -- the dashboard behind Airflow's login (a real login: not the local stack's all-admins) --------
@pytest.fixture(scope="module")
def api_server(stack, airflow_db, tmp_path_factory):
    """Airflow's api-server with the plugin and the simple auth manager's real login (users admin
    and viewer with passwords), on the test session's metadata DB."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from dev.stack import free_port, stop_processes, wait_for_port
    from tests.conftest import ROOT

    home = tmp_path_factory.mktemp("api")
    passwords = home / "passwords.json"
    passwords.write_text(json.dumps({"admin": "admin-pw-7", "viewer": "viewer-pw-7"}))
    port = free_port()
    env = {
        **os.environ,
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin,viewer:viewer",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__API_AUTH__JWT_SECRET": "security-test-secret",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),  # the plugin's package
    }
    log = (home / "api-server.log").open("ab")
    airflow = str(Path(sys.executable).parent / "airflow")
    proc = subprocess.Popen(
        [airflow, "api-server", "--port", str(port), "--host", "127.0.0.1"], cwd=ROOT, env=env, stdout=log, stderr=log
    )
    try:
        wait_for_port(port, proc, "airflow api-server", timeout=180)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_processes({"api": proc}, timeout=30)


def login(url: str, user: str, password: str) -> dict:
    resp = requests.post(f"{url}/auth/token", json={"username": user, "password": password}, timeout=30)
    resp.raise_for_status()
    return {"Authorization": f"Bearer {resp.json()['access_token']}"}


def test_the_dashboard_answers_only_an_airflow_user(api_server):
    page, api = f"{api_server}/customer-performance/", f"{api_server}/customer-performance/api"
    plugins = requests.get(f"{api_server}/api/v2/plugins", headers=login(api_server, "admin", "admin-pw-7"), timeout=30)
    assert "customer_performance" in {p["name"] for p in plugins.json()["plugins"]}  # the app is mounted
    assert requests.get(f"{api_server}/api/v2/dags", timeout=30).status_code == 401  # as Airflow's own API
    data = (f"{api}/month/2025-07/at-risk", f"{api}/month/2025-07/at-risk.csv", f"{api}/customer/1")
    for url in (page, f"{api}/months", f"{api}/month/2025-07", *data):
        assert requests.get(url, timeout=30).status_code == 401, url  # anonymous
        bad = requests.get(url, headers={"Authorization": "Bearer not-a-token"}, timeout=30)
        assert bad.status_code == 403, url
    viewer = login(api_server, "viewer", "viewer-pw-7")
    assert requests.get(f"{api}/months", headers=viewer, timeout=30).status_code == 200
    assert requests.get(page, headers=viewer, timeout=30).status_code == 200
    cookie = {"_token": viewer["Authorization"].split()[1]}  # the UI's session cookie works the same
    assert requests.get(f"{api}/months", cookies=cookie, timeout=30).status_code == 200
    assert requests.get(f"{api}/month/9999-12", headers=viewer, timeout=30).status_code == 400
