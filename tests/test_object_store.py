"""The export on an S3-compatible object store: moto's server on loopback, a real HTTP S3 API.

One store for run artifacts: the CSV files go to ``s3://<conn>@<bucket>/<prefix>/<YYYY-MM>/``, the
run record and the email name them by their storage URL (never a worker's path), and a file too
large to attach is linked with a time-limited (presigned) link a reader without credentials can
download. The test downloads every link of the email it received and compares the bytes with the
files the same run writes to a local folder."""

from __future__ import annotations

import dataclasses
import email
import gzip
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import psycopg
import pytest

from dev.stack import pg_dsn
from include.customer_performance.config import settings
from include.customer_performance.export.csv_email import storage_path, write_csvs
from include.customer_performance.pipeline import email_csv_export
from include.customer_performance.staging import make_run
from tests.conftest import LOGICAL_DATE

BUCKET = "cp-exports"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory):
    """moto's S3 server on a loopback port (its own process), a bucket, and the Airflow connection
    ``cp_s3`` pointing at it."""
    port = _free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(endpoint, timeout=1)  # noqa: S310 - loopback
                break
            except OSError:
                if proc.poll() is not None:
                    raise RuntimeError(f"moto_server exited: {log.read_text()}") from None
                time.sleep(0.2)
        else:
            raise RuntimeError(f"moto_server did not answer on {endpoint}")

        def conn(url: str) -> str:
            return json.dumps(
                {
                    "conn_type": "aws",
                    "login": "cp-test-key",
                    "password": "cp-test-secret",
                    "extra": {
                        "endpoint_url": url,
                        "region_name": "us-east-1",
                        "config_kwargs": {"signature_version": "s3v4", "s3": {"addressing_style": "path"}},
                    },
                }
            )

        os.environ["AIRFLOW_CONN_CP_S3"] = conn(endpoint)
        # the readers' address of the same store (export_link_conn_id signs links for it)
        os.environ["AIRFLOW_CONN_CP_S3_READERS"] = conn(f"http://localhost:{port}")
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        S3Hook(aws_conn_id="cp_s3").create_bucket(BUCKET)
        yield endpoint
    finally:
        os.environ.pop("AIRFLOW_CONN_CP_S3", None)
        os.environ.pop("AIRFLOW_CONN_CP_S3_READERS", None)
        proc.terminate()
        proc.wait(timeout=10)


def test_exports_on_an_object_store_are_recorded_by_url_and_linked(stack, july_run, s3_server, tmp_path):
    run = make_run(LOGICAL_DATE, july_run["run_id"], None, settings().staging_schema)
    schema = f"cp_s3_{uuid.uuid4().hex[:6]}"  # its own delivery record and run record
    location = f"s3://cp_s3@{BUCKET}/customer_performance"
    cfg = dataclasses.replace(
        settings(),
        export_location=location,
        analytics_schema=schema,
        email_attachment_limit_mb=0,  # every file linked
        email_to=("reader@example.com",),
        export_link_hours=2,
        export_link_conn_id="cp_s3_readers",
    )
    mails_before = len(stack.mails())
    try:
        out = email_csv_export(run, cfg, manual=True)
        assert out["emailed"] and out["attached"] == []
        paths = {name: f["path"] for name, f in out["files"].items()}
        assert all(p.startswith(f"{location}/2025-07/") for p in paths.values()), paths
        with psycopg.connect(pg_dsn(stack.analytics_db)) as conn:
            (record,) = conn.execute(
                f"SELECT delivered::text FROM {schema}.pipeline_runs WHERE run_id = %s", (run.run_id,)
            ).fetchone()
            local = write_csvs(conn, run, storage_path(str(tmp_path)))
    finally:
        with psycopg.connect(pg_dsn(stack.analytics_db), autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")

    # the run record names the files by their storage URL; no worker path, no signed link
    delivered = json.loads(record)
    assert delivered["csv_export"]["files"] == paths
    assert sorted(delivered["email"]["linked"]) == sorted(p + ".gz" for p in paths.values())
    assert "Signature" not in record and str(tmp_path) not in record

    # the objects are in the bucket, the same bytes the run writes to a local folder
    for name, url in paths.items():
        with storage_path(url).open("rb") as fh:
            assert fh.read() == Path(local[name]["path"]).read_bytes(), name

    # the email links each file with a time-limited link that downloads it without credentials
    (mail,) = stack.mails()[mails_before:]
    msg = email.message_from_bytes(mail.read_bytes())
    text = msg.get_body(("plain",)).get_content() if hasattr(msg, "get_body") else ""
    if not text:
        text = next(p.get_payload(decode=True).decode() for p in msg.walk() if p.get_content_type() == "text/plain")
    html = next(p.get_payload(decode=True).decode() for p in msg.walk() if p.get_content_type() == "text/html")
    links = re.findall(r"download \(time-limited\): (\S+)", text)
    assert len(links) == len(paths)
    for name, url in paths.items():
        href = next(link for link in links if f"/{Path(url).name}.gz?" in link)
        # signed for the readers' address of the store, not the workers'
        assert href.startswith(s3_server.replace("127.0.0.1", "localhost") + "/") and "X-Amz-Expires=7200" in href
        assert href.replace("&", "&amp;") in html  # the HTML part links it too, escaped
        with urllib.request.urlopen(href, timeout=10) as resp:  # noqa: S310 - the loopback store
            assert gzip.decompress(resp.read()) == Path(local[name]["path"]).read_bytes(), name
    # ... and nothing else: an unsigned request for the same object is refused
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(links[0].split("?")[0], timeout=10)  # noqa: S310


def test_data_docs_on_an_object_store_open_from_the_dashboard_by_a_signed_link(stack, july_run, s3_server, tmp_path):
    from include.customer_performance.dashboard.data import data_docs_link
    from include.customer_performance.export.artifacts import data_docs_target, publish_data_docs

    run = make_run(LOGICAL_DATE, july_run["run_id"], None, settings().staging_schema)
    cfg = dataclasses.replace(settings(), export_location=f"s3://cp_s3@{BUCKET}/docs_{uuid.uuid4().hex[:6]}")
    page = "<html><body>Data Docs of the gate</body></html>"
    (tmp_path / "index.html").write_text(page)
    (tmp_path / "validations").mkdir()
    (tmp_path / "validations" / "one.html").write_text("<p>one</p>")
    assert publish_data_docs(run, cfg, tmp_path) is None
    where = data_docs_target(run, cfg)  # what the run record's quality.data_docs holds
    assert where.startswith(cfg.export_location + "/2025-07/data_docs/")
    href = data_docs_link(where)
    assert href.startswith(s3_server + "/") and "X-Amz-Signature=" in href
    with urllib.request.urlopen(href, timeout=10) as resp:  # noqa: S310 - the loopback store
        assert resp.read().decode() == page
    assert data_docs_link("/var/exports/2025-07/data_docs/x") is None  # a folder: shown, not linked
