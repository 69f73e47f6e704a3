"""The API client and the CRM extract against the real CRM/BI stand-ins, with injected faults."""

import dataclasses
import smtplib
import sqlite3
import time
from datetime import datetime
from email.message import EmailMessage

import psycopg
import pytest
import requests

from dev.stack import free_port, pg_dsn
from include.customer_performance.config import settings
from include.customer_performance.extract.crm_api import (
    MalformedPageError,
    decode_page,
    extract_crm_api,
    iter_pages,
    page_rows,
)
from include.customer_performance.http_client import ApiClient, ApiError, AuthError
from include.customer_performance.schemas import INTERACTIONS
from include.customer_performance.staging import make_run

JULY_START, AUG_START = datetime(2025, 7, 1), datetime(2025, 8, 1)


def control(port: int, method: str, path: str, body=None):
    resp = requests.request(method, f"http://127.0.0.1:{port}/_control/{path}", json=body, timeout=5)
    resp.raise_for_status()
    return resp.json()


@pytest.fixture
def crm(stack):
    control(stack.crm_port, "DELETE", "faults")
    client = ApiClient(f"http://127.0.0.1:{stack.crm_port}", stack.crm_token, "crm_api", backoff=0.05, read_timeout=5)
    yield client
    control(stack.crm_port, "DELETE", "faults")


def statuses(stack):
    return [r["status"] for r in control(stack.crm_port, "GET", "requests")]


def july_interactions_in_store(stack) -> list[str]:
    with sqlite3.connect(stack.crm_store) as conn:
        rows = conn.execute(
            "SELECT interaction_id FROM interactions WHERE interaction_date >= '2025-07-01' AND"
            " interaction_date < '2025-08-01' ORDER BY 1"
        ).fetchall()
    return [r[0] for r in rows]


def test_pagination_returns_every_row_of_the_period_once(stack, crm):
    ids = [r.interaction_id for _, page in iter_pages(crm, JULY_START, AUG_START, 97) for r in page]
    expected = july_interactions_in_store(stack)
    assert len(expected) > 97 * 3  # several pages
    assert ids == expected


def test_openapi_document_describes_the_endpoint(stack):
    doc = requests.get(f"http://127.0.0.1:{stack.crm_port}/openapi.json", timeout=5).json()
    params = {p["name"] for p in doc["paths"]["/v1/interactions"]["get"]["parameters"]}
    assert {"start", "end", "limit", "cursor"} <= params


def test_refused_token_fails_at_once_without_retry(stack, crm):
    bad = dataclasses.replace(crm, token="wrong")
    with pytest.raises(AuthError, match="refused with 401.*crm_api"):
        bad.request("GET", "/v1/interactions", params={"start": "2025-07-01", "end": "2025-07-02"})
    assert statuses(stack) == [401]
    control(stack.crm_port, "POST", "faults", [{"status": 403}])
    with pytest.raises(AuthError, match="403"):
        crm.request("GET", "/v1/interactions", params={"start": "2025-07-01", "end": "2025-07-02"})


def test_server_errors_are_retried_with_backoff(stack, crm):
    control(stack.crm_port, "POST", "faults", [{"status": 503, "times": 2}])
    resp = crm.request("GET", "/v1/interactions", params={"start": "2025-07-01", "end": "2025-07-02"})
    assert resp.status_code == 200
    assert statuses(stack)[-3:] == [503, 503, 200]


def test_server_errors_give_up_after_the_last_attempt(stack, crm):
    control(stack.crm_port, "POST", "faults", [{"status": 500, "times": 10}])
    with pytest.raises(ApiError, match="still failing after 3 attempts"):
        dataclasses.replace(crm, max_attempts=3).request("GET", "/v1/interactions", params={"start": "x", "end": "y"})


def test_rate_limit_waits_for_retry_after(stack, crm):
    control(stack.crm_port, "POST", "faults", [{"status": 429, "retry_after": 1}])
    t0 = time.monotonic()
    crm.request("GET", "/v1/interactions", params={"start": "2025-07-01", "end": "2025-07-02"})
    assert time.monotonic() - t0 >= 1.0
    assert statuses(stack)[-2:] == [429, 200]


def test_read_timeout_is_retried(stack, crm):
    control(stack.crm_port, "POST", "faults", [{"kind": "delay", "seconds": 2}])
    slow = dataclasses.replace(crm, read_timeout=0.5)
    resp = slow.request("GET", "/v1/interactions", params={"start": "2025-07-01", "end": "2025-07-02"})
    assert resp.status_code == 200


def test_connection_errors_are_retried_then_reported():
    client = ApiClient(f"http://127.0.0.1:{free_port()}", "t", "crm_api", backoff=0.01, max_attempts=3)
    with pytest.raises(ApiError, match="after 3 attempts \\(ConnectionError\\)"):
        client.request("GET", "/v1/interactions")


def test_malformed_page_is_an_error_naming_the_cursor(stack, crm):
    control(stack.crm_port, "POST", "faults", [{"kind": "malformed"}])
    with pytest.raises(MalformedPageError, match="cursor <first> does not have the documented shape"):
        list(iter_pages(crm, JULY_START, AUG_START, 50))


def test_a_page_that_is_not_json_is_an_error_naming_the_cursor(stack, crm):
    control(stack.crm_port, "POST", "faults", [{"kind": "not_json"}])
    with pytest.raises(MalformedPageError, match="page at cursor <first> is not JSON"):
        list(iter_pages(crm, JULY_START, AUG_START, 50))


def test_each_field_is_checked_for_its_type_naming_cursor_record_and_field():
    """Nothing is coerced: a number is never a string, a flag or a list; ids are never null; every
    field is present. The error names the cursor, the record (index and id) and the field."""
    import json

    good = {c.name: ("I1" if c.name == "interaction_id" else 1) for c in INTERACTIONS.columns}
    good.update(interaction_type="call", interaction_date="2025-07-02T10:00:00+00:00", agent_id="A1")
    good.update(resolution_status="resolved", department="security", priority="critical")

    def page(*records, cursor=None):
        return decode_page(json.dumps({"data": list(records), "next_cursor": None}).encode(), cursor)

    assert page_rows(page(good, good).data, "abc") == [tuple(good.values())] * 2
    # an optional field (priority: only a security incident has one) may be left out: NULL
    without = {k: v for k, v in good.items() if k != "priority"}
    assert page_rows(page(without).data, None) == [(*without.values(), None)]
    cases = [
        (
            {**good, "interaction_id": "I2", "customer_id": None},
            "record 1 \\(interaction_id 'I2'\\): field customer_id",
        ),
        ({**good, "interaction_id": "I2", "customer_id": "42"}, "field customer_id: Expected `int`, got `str`"),
        ({**good, "interaction_id": "I2", "customer_id": True}, "field customer_id: Expected `int`, got `bool`"),
        ({**good, "satisfaction_score": "Infinity"}, "field satisfaction_score: Expected `float \\| null`, got `str`"),
        ({**good, "department": ["a", "b"]}, "field department: Expected `str \\| null`, got `array`"),
        ({**good, "priority": 3}, "field priority: Expected `str \\| null`, got `int`"),
        ({**good, "interaction_id": None}, "record 1 \\(interaction_id 'None'\\): field interaction_id"),
        (["I1", 1], "record 1 \\(interaction_id \\?\\): the record"),
        ({k: v for k, v in good.items() if k != "agent_id"}, "record 1 .*missing required field `agent_id`"),
    ]
    for bad, message in cases:
        with pytest.raises(MalformedPageError, match="crm_api: page at cursor abc, (record 1 .*)?" + message):
            page(good, bad, cursor="abc")
    with pytest.raises(MalformedPageError, match="Number out of range"):
        decode_page(
            b'{"data": ['
            + json.dumps(good).replace('"satisfaction_score": 1', '"satisfaction_score": 1e999').encode()
            + b'], "next_cursor": null}',
            "abc",
        )  # noqa: E501


def run_for_july():
    return make_run(datetime(2025, 8, 1, 2), "test_extract", None, settings().staging_schema)


def staged_ids(stack, run) -> list[str]:
    with psycopg.connect(pg_dsn(stack.analytics_db)) as conn:
        rows = conn.execute(f"SELECT interaction_id FROM {run.schema}.{run.table_name('interactions')} ORDER BY 1")
        return [r[0] for r in rows]


def test_missing_field_fails_the_extract_naming_field_and_cursor(stack, crm):
    control(stack.crm_port, "POST", "faults", [{"kind": "missing_field", "field": "customer_id"}])
    with pytest.raises(MalformedPageError, match="cursor <first>, record 0 .*missing required field `customer_id`"):
        extract_crm_api(run_for_july(), dataclasses.replace(settings(), crm_page_size=100))


def test_extract_rerun_replaces_the_staged_table(stack, crm):
    run = run_for_july()
    cfg = dataclasses.replace(settings(), crm_page_size=100)
    first = extract_crm_api(run, cfg)
    control(stack.crm_port, "POST", "faults", [{"status": 502}])  # the rerun also survives a blip
    second = extract_crm_api(run, cfg)
    assert first["interactions"]["rows"] == second["interactions"]["rows"] == len(july_interactions_in_store(stack))
    assert staged_ids(stack, run) == july_interactions_in_store(stack)


def test_bi_stand_in_keeps_the_versioned_contract(stack):
    """dev/bi_api.py: a version is opened (superseding other open ones of the month), batches
    replace by number, only a complete version is published, the publish supersedes every other
    version of the month, and a superseded or published version takes nothing."""
    bi = ApiClient(f"http://127.0.0.1:{stack.bi_port}", stack.bi_token, "bi_api", max_attempts=1)
    base = "/datasets/contract/versions"

    def open_(version: str, month: str = "2025-07"):
        return bi.request("POST", f"{base}/{version}", json={"report_month": month})

    def put(version: str, n: int, rows: list[dict], month: str = "2025-07"):
        return bi.request("PUT", f"{base}/{version}/tables/t/batches/{n}", json={"report_month": month, "rows": rows})

    def publish(version: str, rows: int, batches: int, month: str = "2025-07"):
        tables = {"t": {"rows": rows, "batches": batches}}
        return bi.request("POST", f"{base}/{version}/publish", json={"report_month": month, "tables": tables})

    def current(month: str = "2025-07") -> list[int]:
        got = bi.request("GET", "/datasets/contract/tables/t/rows", params={"report_month": month}).json()["rows"]
        return [r["v"] for r in got]

    with pytest.raises(ApiError, match="409.*never opened"):
        put("a", 0, [{"v": 1}])
    open_("a")
    open_("a")  # opened again after a lost reply: the same version
    with pytest.raises(ApiError, match="413"):
        put("a", 0, [{"v": 0}] * 10_001)
    put("a", 0, [{"v": 1}, {"v": 2}])
    put("a", 0, [{"v": 1}, {"v": 2}])  # sent twice after a lost reply: kept once
    put("a", 1, [{"v": 3}])
    assert current() == []  # nothing is visible before the publish
    with pytest.raises(ApiError, match="409.*holds"):  # a publish expecting what the version lacks
        publish("a", 4, 2)
    publish("a", 3, 2)
    assert publish("a", 3, 2).json()["already"] is True  # a lost publish reply, repeated
    assert current() == [1, 2, 3]
    open_("b")
    put("b", 0, [{"v": 8}])
    open_("june", "2025-06")
    put("june", 0, [{"v": 6}], month="2025-06")
    publish("june", 1, 1, "2025-06")
    assert current() == [1, 2, 3]  # b is open; another month is its own
    open_("c")  # a retry after a killed try b: b is superseded
    with pytest.raises(ApiError, match="409.*superseded"):
        put("b", 1, [{"v": 9}])  # b's late batch
    with pytest.raises(ApiError, match="409.*superseded"):
        publish("b", 1, 1)  # b's late publish
    put("c", 0, [{"v": 10}])
    publish("c", 1, 1)
    assert current() == [10] and current("2025-06") == [6]
    with pytest.raises(ApiError, match="409.*superseded"):
        put("a", 2, [{"v": 4}])  # the old published version takes nothing
    with pytest.raises(ApiError, match="409.*published"):
        put("c", 1, [{"v": 11}])  # a published version is never changed
    with pytest.raises(ApiError, match="409"):
        open_("c")
    assert current() == [10]


def test_smtp_sink_keeps_each_message_as_a_file(stack):
    before = len(stack.mails())
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "a@example.com", "b@example.com", "sink test"
    msg.set_content("hello")
    with smtplib.SMTP("127.0.0.1", stack.smtp_port, timeout=10) as smtp:
        smtp.send_message(msg)
    for _ in range(50):
        if len(stack.mails()) > before:
            break
        time.sleep(0.1)
    assert b"Subject: sink test" in stack.mails()[-1].read_bytes()
