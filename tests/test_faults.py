"""Fault injection at every destination, each scenario compared with the clean July run of the
session (conftest.july_run) across the analytics database and the BI API (and the mailbox where
the scenario emails): lost replies through a real proxy (dev/fault_proxy.py) in front of the BI
stand-in, a push process SIGKILLed with a batch in flight, two pushes of one month at once, a push
failing halfway or with its inputs gone, an SMTP relay that loses its reply or refuses, reruns of
the tasks that write the quality report, an export location that is missing or not a folder, two
runs of one logical date, and a long reader in front of the partition swap."""

from __future__ import annotations

import dataclasses
import email
import json
import logging
import os
import signal
import smtplib
import subprocess
import sys
import threading
import time
import uuid

import psycopg
import pytest
import requests

from dev.stack import free_port, pg_dsn, wait_for_port
from include.customer_performance import pipeline
from include.customer_performance.config import settings
from include.customer_performance.export.csv_email import (
    AmbiguousDeliveryError,
    ExportLocationError,
    file_names,
    storage_path,
    write_csvs,
)
from include.customer_performance.http_client import ApiClient, ApiError
from include.customer_performance.load import analytics_db
from include.customer_performance.load.bi_api import push
from include.customer_performance.staging import MissingStageError, Run, make_run
from tests.conftest import LOGICAL_DATE, ROOT, concurrently, snapshot

DATASET = "customer_performance"


@pytest.fixture(scope="module")
def run(july_run) -> Run:
    return make_run(LOGICAL_DATE, july_run["run_id"], None, settings().staging_schema)


@pytest.fixture(scope="module")
def clean(july_run) -> dict:
    """Every destination after the clean run: what each scenario must end with."""
    return july_run["snapshot"]


class Proxy:
    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"

    def faults(self, *faults: dict) -> None:
        requests.delete(f"{self.url}/_proxy/faults", timeout=5).raise_for_status()
        if faults:
            requests.post(f"{self.url}/_proxy/faults", json=list(faults), timeout=5).raise_for_status()

    def log(self) -> list[dict]:
        return requests.get(f"{self.url}/_proxy/log", timeout=5).json()

    def release(self) -> None:
        requests.post(f"{self.url}/_proxy/release", timeout=5).raise_for_status()


@pytest.fixture(scope="module")
def proxy(stack):
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "dev" / "fault_proxy.py"), "--port", str(port)]
        + ["--upstream", f"127.0.0.1:{stack.bi_port}"]
    )
    try:
        wait_for_port(port, proc, "fault proxy")
        yield Proxy(port)
    finally:
        proc.terminate()
        proc.wait(10)


def standin_log(stack) -> list[dict]:
    return requests.get(f"http://127.0.0.1:{stack.bi_port}/_control/requests", timeout=5).json()


def clear_standin(stack) -> None:
    requests.delete(f"http://127.0.0.1:{stack.bi_port}/_control/faults", timeout=5).raise_for_status()


def versions(stack, month: str = "2025-07") -> list[dict]:
    return requests.get(
        f"http://127.0.0.1:{stack.bi_port}/datasets/{DATASET}/versions",
        params={"report_month": month},
        headers={"Authorization": f"Bearer {stack.bi_token}"},
        timeout=5,
    ).json()["versions"]


def client(port: int, token: str, **kwargs) -> ApiClient:
    return ApiClient(f"http://127.0.0.1:{port}", token, "bi_api", **{"backoff": 0.05, **kwargs})


def bi_push(stack, run: Run, port: int | None = None, batch_rows: int = 50, **kwargs) -> dict[str, int]:
    with psycopg.connect(pg_dsn(stack.analytics_db)) as conn:
        return push(conn, run, client(port or stack.bi_port, stack.bi_token, **kwargs), DATASET, batch_rows)


# -- the BI push --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fault",
    [
        {"mode": "reset", "method": "PUT", "path": "/batches/", "skip": 2},  # applied, connection reset
        {"mode": "status", "status": 502, "method": "PUT", "path": "/batches/", "skip": 1},  # applied, 502
        {"mode": "stall", "seconds": 4, "method": "PUT", "path": "/batches/", "skip": 3},  # applied, read timeout
        {"mode": "reset", "method": "POST", "path": "/publish"},  # the publish applied, its reply lost
        {"mode": "stall", "seconds": 4, "method": "POST", "path": "/publish"},
        {"mode": "reset", "method": "POST", "path": "/versions/"},  # the first POST: opening the version
    ],
    ids=["batch-reset", "batch-502", "batch-timeout", "publish-reset", "publish-timeout", "open-reset"],
)
def test_a_lost_bi_reply_never_duplicates(stack, run, clean, proxy, fault):
    """The API applied the request and its answer was lost; the client sends it again: the batch
    (or the publish) is applied once, the month matches the clean run row for row."""
    clear_standin(stack)
    proxy.faults(fault)
    sent = bi_push(stack, run, proxy.port, read_timeout=2.0)
    assert any(e["mode"] == fault["mode"] for e in proxy.log()), "the fault never fired"
    applied = [e for e in standin_log(stack) if fault["path"] in e["path"] and e["method"] == fault["method"]]
    paths = [e["path"] for e in applied if e["status"] == 200]
    assert len(paths) > len(set(paths)), "no request reached the API twice: the reply was not lost after applying"
    got = snapshot(stack)
    assert got == clean
    assert sent == {t.removeprefix("bi."): len(v) for t, v in clean.items() if t.startswith("bi.")}
    assert [v["state"] for v in versions(stack)].count("published") == 1


PUSH_PROCESS = """
import sys, psycopg
from datetime import datetime
sys.path.insert(0, {root!r})
from include.customer_performance.http_client import ApiClient
from include.customer_performance.load.bi_api import push
from include.customer_performance.staging import make_run
run = make_run(datetime.fromisoformat({logical!r}), {run_id!r}, None, {schema!r})
with psycopg.connect({dsn!r}) as conn:
    push(conn, run, ApiClient("http://127.0.0.1:{port}", {token!r}, "bi_api"), {dataset!r}, 50)
"""


def test_a_push_killed_with_a_batch_in_flight_is_retried_without_duplicates(stack, run, clean, proxy):
    """SIGKILL while a batch is on its way: readers keep the previous complete month; the retry
    opens a new version and publishes it; the killed try's batch lands after that and is refused."""
    clear_standin(stack)
    proxy.faults({"mode": "hold", "method": "PUT", "path": "/batches/", "skip": 2})
    code = PUSH_PROCESS.format(
        root=str(ROOT),
        logical=LOGICAL_DATE.isoformat(),
        run_id=run.run_id,
        schema=run.schema,
        dsn=pg_dsn(stack.analytics_db),
        port=proxy.port,
        token=stack.bi_token,
        dataset=DATASET,
    )
    proc = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.monotonic() + 60
    while not any(e["mode"] == "hold" for e in proxy.log()):
        assert proc.poll() is None and time.monotonic() < deadline, "the push ended before its batch was held"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    killed = {v["version"] for v in versions(stack) if v["state"] == "open"}
    assert len(killed) == 1, "the killed push had opened no version"
    assert snapshot(stack) == clean  # between the failure and the retry: the previous complete month
    bi_push(stack, run, proxy.port)  # the retry (the advisory lock died with the killed session)
    proxy.release()  # the killed try's batch arrives now, after the retry's publish
    deadline = time.monotonic() + 20
    while (held := [e for e in proxy.log() if e["mode"] == "hold"]) and held[0].get("status") is None:
        assert time.monotonic() < deadline, "the held batch never reached the API"
        time.sleep(0.1)
    assert held[0]["status"] == 409 and next(iter(killed)) in held[0]["path"]
    assert snapshot(stack) == clean
    states = {v["version"]: v["state"] for v in versions(stack)}
    assert list(states.values()).count("published") == 1 and states[next(iter(killed))] == "superseded"


def test_two_pushes_of_a_month_take_turns(stack, run, clean):
    """Two pushes at once: the second waits for the first (the month's lock), their requests never
    interleave, and the month holds one copy of each row."""
    clear_standin(stack)
    _, errors = concurrently(lambda: bi_push(stack, run, batch_rows=20))
    assert errors == []
    order = [e["path"].split("/versions/")[1].split("/")[0] for e in standin_log(stack) if "/versions/" in e["path"]]
    runs = [v for i, v in enumerate(order) if i == 0 or order[i - 1] != v]
    assert len(runs) == 2, f"the two pushes interleaved: {runs}"
    assert snapshot(stack) == clean


def test_a_push_failing_halfway_leaves_the_previous_month_whole(stack, run, clean):
    clear_standin(stack)
    requests.post(
        f"http://127.0.0.1:{stack.bi_port}/_control/faults",
        json=[{"status": 503, "times": 10, "method": "PUT", "path": "/tables/top_customers/batches"}],
        timeout=5,
    ).raise_for_status()
    with pytest.raises(ApiError, match="still failing after 2 attempts"):
        bi_push(stack, run, max_attempts=2)
    assert any(e["status"] == 200 and "/batches/" in e["path"] for e in standin_log(stack))  # it got halfway
    assert snapshot(stack) == clean  # readers see the previous complete month, not the half sent
    clear_standin(stack)
    bi_push(stack, run)
    assert snapshot(stack) == clean


def test_a_push_whose_staged_tables_are_gone_sends_nothing(stack, run, clean):
    clear_standin(stack)
    gone = make_run(LOGICAL_DATE, "manual__gone", None, run.schema)
    with pytest.raises(MissingStageError, match="are gone.*nothing was delivered"):
        bi_push(stack, gone)
    assert standin_log(stack) == []
    assert snapshot(stack) == clean


# -- the email ----------------------------------------------------------------------------------


def email_run(run: Run) -> Run:
    """The July run's staged tables under a run id of its own: a delivery record of its own."""
    return dataclasses.replace(run, run_id=f"manual__fault_{uuid.uuid4().hex[:8]}")


MAIL_SCHEMA = "faults_mail"


def mail_settings(**changes):
    """The settings with the run records (and delivery records) of these email runs in a schema of
    their own: the clean run's record stays as it was."""
    return dataclasses.replace(settings(), analytics_schema=MAIL_SCHEMA, **changes)


def new_mails(stack, before: int) -> list[email.message.Message]:
    return [email.message_from_bytes(p.read_bytes()) for p in stack.mails()[before:]]


def delivery(stack, run: Run) -> tuple:
    with psycopg.connect(pg_dsn(stack.analytics_db)) as conn:
        return conn.execute(
            f"SELECT state, attempts, message_id FROM {MAIL_SCHEMA}.email_deliveries WHERE run_id = %s", (run.run_id,)
        ).fetchone()


def email_cli(stack, mine: Run, *flags: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "AIRFLOW_CONN_ANALYTICS_DB": f"postgresql://postgres@127.0.0.1:5432/{stack.analytics_db}",
        "CUSTOMER_PERFORMANCE_ANALYTICS_SCHEMA": MAIL_SCHEMA,
    }
    return subprocess.run(
        [sys.executable, "-m", "include.customer_performance", "email-delivery", "--run-id", mine.run_id]
        + ["--month", "2025-07", *flags],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_lost_smtp_reply_sends_one_email_until_the_operator_asks(stack, run, clean):
    cfg, mine = mail_settings(), email_run(run)
    before = len(stack.mails())
    stack.smtp_faults(lose_reply=1)
    with pytest.raises(smtplib.SMTPServerDisconnected):
        pipeline.email_csv_export(mine, cfg, manual=True)
    assert len(new_mails(stack, before)) == 1  # the relay has it; the task does not know
    assert delivery(stack, mine)[0] == "sending"
    for _ in range(2):  # the retry, and any later clear: not sent again until the operator says
        with pytest.raises(AmbiguousDeliveryError, match="Message-ID <customer-performance\\.") as err:
            pipeline.email_csv_export(mine, cfg, manual=True)
        assert len(new_mails(stack, before)) == 1 and delivery(stack, mine)[0] == "unconfirmed"
    mid = delivery(stack, mine)[2]
    assert mid in str(err.value) and f"--run-id '{mine.run_id}' --month 2025-07 --confirm" in str(err.value)
    shown = email_cli(stack, mine)
    assert shown.returncode == 0 and f"unconfirmed (1 tries, Message-ID {mid}" in shown.stdout
    assert email_cli(stack, mine, "--resend").returncode == 0  # it did not arrive: send it again
    out = pipeline.email_csv_export(mine, cfg, manual=True)
    mails = new_mails(stack, before)
    assert len(mails) == 2 and {m["Message-ID"] for m in mails} == {mid}  # the resend is recognisable
    assert out["message"] == {"state": "sent", "message_id": mid, "attempts": 2, "already": False}
    again = pipeline.email_csv_export(mine, cfg, manual=True)  # a try killed after the send, retried
    assert again["message"]["already"] is True and len(new_mails(stack, before)) == 2
    assert snapshot(stack) == clean


def test_an_unconfirmed_email_that_arrived_is_confirmed_and_never_resent(stack, run):
    cfg, mine = mail_settings(), email_run(run)
    before = len(stack.mails())
    stack.smtp_faults(lose_reply=1)
    with pytest.raises(smtplib.SMTPServerDisconnected):
        pipeline.email_csv_export(mine, cfg, manual=True)
    with pytest.raises(AmbiguousDeliveryError):
        pipeline.email_csv_export(mine, cfg, manual=True)
    assert email_cli(stack, mine, "--confirm").returncode == 0  # on-call found it in the inbox
    out = pipeline.email_csv_export(mine, cfg, manual=True)  # e.g. cleared with downstream later
    assert out["message"]["already"] is True and len(new_mails(stack, before)) == 1
    missing = email_cli(stack, email_run(run), "--confirm")
    assert missing.returncode == 2 and "no email delivery of run" in missing.stderr


def test_resend_email_param_lets_the_retry_send(stack, run):
    cfg, mine = mail_settings(), email_run(run)
    before = len(stack.mails())
    stack.smtp_faults(lose_reply=1)
    with pytest.raises(smtplib.SMTPServerDisconnected):
        pipeline.email_csv_export(mine, cfg, manual=True, resend=True)
    pipeline.email_csv_export(mine, cfg, manual=True, resend=True)
    assert len(new_mails(stack, before)) == 2 and delivery(stack, mine)[:2] == ("sent", 2)


def test_a_refused_email_is_sent_by_the_retry(stack, run):
    """A refusal is an answer: nothing was accepted, so the retry sends (once)."""
    cfg, mine = mail_settings(), email_run(run)
    before = len(stack.mails())
    stack.smtp_faults(refuse=100)  # every attempt of the hook's own retries
    try:
        with pytest.raises(Exception, match="554"):
            pipeline.email_csv_export(mine, cfg, manual=True)
    finally:
        stack.smtp_faults()
    assert new_mails(stack, before) == [] and delivery(stack, mine) is None
    pipeline.email_csv_export(mine, cfg, manual=True)
    assert len(new_mails(stack, before)) == 1 and delivery(stack, mine)[:2] == ("sent", 1)


# -- reruns of the tasks that own the quality report --------------------------------------------


def load(stack, run: Run) -> None:
    with psycopg.connect(pg_dsn(stack.analytics_db)) as conn, conn.cursor() as cur:
        analytics_db.publish(cur, run, settings().analytics_schema)
        conn.commit()


def test_quality_history_is_replaced_whatever_is_cleared(stack, run, clean):
    cfg = settings()
    pipeline.aggregate(run, cfg)  # aggregate cleared with downstream, twice
    pipeline.aggregate(run, cfg)
    load(stack, run)
    assert snapshot(stack) == clean
    pipeline.validate(run, cfg, rerun=True)  # validate cleared alone, then the load
    load(stack, run)
    assert snapshot(stack) == clean


# -- the export location ------------------------------------------------------------------------


def staged(stack, run: Run, stage: str, where: str = "true") -> list[tuple]:
    with psycopg.connect(pg_dsn(stack.analytics_db)) as conn:
        return conn.execute(f"SELECT * FROM {run.schema}.{run.table_name(stage)} WHERE {where}").fetchall()


def test_the_gate_does_not_depend_on_the_export_location(stack, run, clean, tmp_path):
    cfg = settings()
    blocked = tmp_path / "a_file"
    blocked.write_text("not a folder")
    bad = dataclasses.replace(cfg, export_location=str(blocked / "exports"))
    try:
        out = pipeline.validate(run, bad)  # the gate passes; its Data Docs could not be written
        assert out["success"] and "could not be written" in out["data_docs_error"]
        assert staged(stack, run, "dq_results", "rule = 'run.data_docs' AND NOT success")
        pipeline.aggregate(run, bad)
        alerts = staged(stack, run, "alerts", "alert = 'data_docs'")
        assert len(alerts) == 1 and "could not be written" in alerts[0][-1]
        with pytest.raises(ExportLocationError, match="does not exist"):
            pipeline.email_csv_export(email_run(run), mail_settings(export_location=bad.export_location))
    finally:  # the staged report as the clean run left it
        pipeline.validate(run, cfg)
        pipeline.aggregate(run, cfg)
    assert not staged(stack, run, "alerts", "alert = 'data_docs'")
    assert snapshot(stack) == clean


def test_a_missing_export_location_is_an_error_unless_allowed(stack, run, tmp_path):
    missing = tmp_path / "not" / "there"
    cfg = mail_settings(export_location=str(missing), email_policy="manual")
    with pytest.raises(ExportLocationError, match="CUSTOMER_PERFORMANCE_EXPORT_CREATE_LOCATION=true"):
        pipeline.email_csv_export(email_run(run), cfg)
    assert not missing.exists()
    out = pipeline.email_csv_export(email_run(run), dataclasses.replace(cfg, export_create_location=True))
    assert all(os.path.exists(f["path"]) for f in out["files"].values()) and not out["emailed"]


# -- runs that share a logical date --------------------------------------------------------------


def test_runs_of_one_logical_date_share_no_staged_table_or_temp_file(stack, run, tmp_path):
    a = make_run(LOGICAL_DATE, "manual__a", None, run.schema)
    b = make_run(LOGICAL_DATE, "manual__b", None, run.schema)
    assert a.key != b.key and a.key.startswith("20250801t020000_") and b.key.startswith("20250801t020000_")
    assert len(a.table_name("dq_flagged_customer_activity")) <= 63  # PostgreSQL's identifier limit
    folder = storage_path(str(tmp_path))

    def write() -> None:
        with psycopg.connect(pg_dsn(stack.analytics_db)) as conn:
            for _ in range(3):
                write_csvs(conn, run, folder)

    _, errors = concurrently(write, timeout=60)
    assert errors == []
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(file_names(run).values())


# -- the partition swap and readers -------------------------------------------------------------


def test_the_swap_never_blocks_readers_behind_a_long_reader(stack, run, clean, caplog):
    caplog.set_level(logging.WARNING)
    dsn = pg_dsn(stack.analytics_db)
    long_reader = psycopg.connect(dsn)
    long_reader.execute("SELECT count(*) FROM analytics.customer_performance")  # holds its lock until rollback
    done, failed = threading.Event(), []

    def load_with(policy) -> None:
        try:
            with psycopg.connect(dsn) as conn, conn.cursor() as cur:
                analytics_db.publish(cur, run, "analytics", locks=policy)
                conn.commit()
        except Exception as exc:  # noqa: BLE001 - reported below
            failed.append(exc)
        done.set()

    try:
        t = threading.Thread(target=load_with, args=(analytics_db.LockPolicy(0.3, 100, 0.2, 0.5),))
        t.start()
        with psycopg.connect(dsn, autocommit=True) as reader:
            reader.execute("SET statement_timeout = '3s'")
            deadline, busy_since, reads = time.monotonic() + 60, None, 0
            # new readers while the load waits: each would time out behind a swap blocked in the queue
            while busy_since is None or time.monotonic() < busy_since + 2:
                assert time.monotonic() < deadline and not done.is_set(), "the load never waited for the lock"
                reader.execute("SELECT count(*) FROM analytics.customer_performance WHERE report_month = '2025-07-01'")
                reads += 1
                if busy_since is None and "a lock was busy past 0.3 s" in caplog.text:
                    busy_since = time.monotonic()
        assert not done.is_set(), "the load did not wait for the long reader"
        assert reads > 3
    finally:
        long_reader.rollback()
    t.join(60)
    assert done.is_set() and failed == []
    assert snapshot(stack) == clean
    long_reader.execute("SELECT count(*) FROM analytics.customer_performance")
    try:
        load_with(analytics_db.LockPolicy(0.2, 2, 0.1, 0.1))
    finally:
        long_reader.rollback()
        long_reader.close()
    assert len(failed) == 1 and isinstance(failed[0], analytics_db.LockBusyError)
    assert "the old month is still published" in str(failed[0])
    assert snapshot(stack) == clean


def test_the_fault_proxy_logs_and_forwards(proxy, stack):
    """The proxy itself: a request without faults reaches the stand-in unchanged."""
    proxy.faults()
    resp = requests.get(
        f"{proxy.url}/datasets/{DATASET}/tables", headers={"Authorization": f"Bearer {stack.bi_token}"}, timeout=5
    )
    assert resp.status_code == 200 and json.loads(resp.content) == stack.bi_rows()
    assert proxy.log() == [{"method": "GET", "path": f"/datasets/{DATASET}/tables", "mode": "pass", "status": 200}]
