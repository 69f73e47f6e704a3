"""One name per meaning (glossary.py): every label a reader meets is the glossary's.

After July's run: every CSV header of the email's files, every field of the BI payloads, every
column of the analytics tables and every field of the dashboard API's rows is a glossary name; the
email's KPI and table labels, and the report CLI's figures, are glossary labels; no two names share
a label; docs/glossary.md is the module's. (The dashboard as drawn in a browser is walked in
test_operations.py: each table header and KPI card names its term and shows its label.)
"""

from __future__ import annotations

import csv
import email
import io
import re
from datetime import date
from html.parser import HTMLParser

import psycopg
import requests

from dev.stack import pg_dsn
from include.customer_performance import glossary
from include.customer_performance.export.digest import KPIS
from include.customer_performance.glossary import TERMS
from tests.conftest import BI_TABLES, ROOT

LABELS = {t.label for t in TERMS.values()}


def test_each_label_names_one_term_and_the_docs_are_the_module():
    by_label: dict[str, list[str]] = {}
    for t in TERMS.values():
        by_label.setdefault(t.label.lower(), []).append(t.name)
    assert {k: v for k, v in by_label.items() if len(v) > 1} == {}
    assert (ROOT / "docs" / "glossary.md").read_text() == glossary.markdown(), (
        "docs/glossary.md is stale: python -m include.customer_performance glossary --write docs/glossary.md"
    )


def _unknown(names) -> list[str]:
    return sorted({n for n in names if n not in TERMS})


def test_every_published_name_is_in_the_glossary(stack, july_run):
    msg = email.message_from_bytes(july_run["mails"][0].read_bytes())
    headers = set()
    for part in msg.walk():
        if part.get_filename():
            headers |= set(next(csv.reader(io.StringIO(part.get_payload(decode=True).decode()))))
    assert _unknown(headers) == [], "CSV headers"

    fields = set()
    for table in BI_TABLES:
        rows = requests.get(
            f"http://127.0.0.1:{stack.bi_port}/datasets/customer_performance/tables/{table}/rows",
            params={"report_month": "2025-07"},
            headers={"Authorization": f"Bearer {stack.bi_token}"},
            timeout=10,
        ).json()["rows"]
        for row in rows:
            fields |= set(row)
    assert _unknown(fields) == [], "BI payload fields"

    with psycopg.connect(pg_dsn(stack.analytics_db)) as conn:
        columns = {
            r[0]
            for r in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = 'analytics'"
                " AND table_name IN (SELECT tablename FROM pg_tables WHERE schemaname = 'analytics'"
                " AND tablename !~ '_[0-9]{4}_[0-9]{2}$' AND tablename NOT IN ('schema_migrations', 'fx_rates',"
                " 'lifetime_snapshots', 'customer_lifetime') AND tablename !~ '^customer_lifetime_')"
            )
        }
        assert _unknown(columns) == [], "analytics columns"

        from include.customer_performance.dashboard import data

        month = data.month_data(conn, "analytics", date(2025, 7, 1))
    keys = set(month["kpis"])
    for section, rows in month.items():
        if isinstance(rows, list) and section not in ("history", "banners"):
            for row in rows:
                keys |= set(row)
    for part in ("scores", "warnings"):
        for row in month["trust"][part]:
            keys |= {k for k in row if not k.endswith(("_min", "_detail", "_days")) and k != "fresh"}
    keys |= set((month["at_risk"]["rows"] or month["win_back"])[0])
    assert _unknown(keys) == [], "dashboard API fields"
    assert month["labels"] == glossary.labels()


class _Cells(HTMLParser):
    def __init__(self):
        super().__init__()
        self.th, self.first, self._in, self._row_cells = [], [], None, 0

    def handle_starttag(self, tag, attrs):
        if tag in ("th", "td"):
            self._in = tag
        if tag == "tr":
            self._row_cells = 0

    def handle_endtag(self, tag):
        if tag in ("th", "td"):
            self._in = None
            self._row_cells += 1

    def handle_data(self, data):
        if self._in == "th" and data.strip():
            self.th.append(data.strip())
        elif self._in == "td" and self._row_cells == 0 and data.strip():
            self.first.append(data.strip())


def test_the_email_and_the_report_cli_speak_the_glossary(stack, july_run):
    msg = email.message_from_bytes(july_run["mails"][0].read_bytes())
    html = next(p for p in msg.walk() if p.get_content_type() == "text/html").get_payload(decode=True).decode()
    cells = _Cells()
    cells.feed(html)
    assert cells.th and set(cells.th) <= LABELS, sorted(set(cells.th) - LABELS)
    kpi_labels = [glossary.label(k) for k, _, _ in KPIS]
    assert set(kpi_labels) <= set(cells.first)  # the key figures, each by its label
    plain = next(p for p in msg.walk() if p.get_content_type() == "text/plain").get_payload(decode=True).decode()
    assert re.search(r"Quality gate PASSED: \d+ checks; failed: ", plain)
    assert "rules failed" not in plain

    from tests.test_destinations import cli

    done = cli(stack, "report", "--month", "2025-07")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    sections = ("CUSTOMER OVERVIEW", "SUPPORT PERFORMANCE", "SECURITY OPERATIONS", "CUSTOMER SATISFACTION", "REVENUE")
    figures = []
    current = None
    for line in out.splitlines():
        if line in sections:
            current = line
        elif not line.strip():
            current = None
        elif current:
            figures.append(line.split(":")[0])
    assert figures and set(figures) <= LABELS, sorted(set(figures) - LABELS)
    checks = int(re.search(r"Gate: PASSED, (\d+) checks", out)[1])
    assert checks == int(re.search(r"Quality gate PASSED: (\d+) checks", plain)[1])
