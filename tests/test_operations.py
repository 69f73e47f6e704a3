"""On-call operations with a real scheduler: Airflow's metadata on PostgreSQL, LocalExecutor, the
api-server, scheduler, dag-processor and triggerer as processes (dev/airflow_local.py).

The backfill command fills June and July 2025 (two month-close runs, one after the other); then
every task of the July run is cleared and run again by the scheduler, and every destination must
be exactly as before."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime
from decimal import Decimal
from html.parser import HTMLParser

import MySQLdb
import psycopg
import pytest

from dev.airflow_local import LocalAirflow
from dev.stack import MYSQL, pg_dsn
from include.customer_performance.runbook import TASKS
from include.customer_performance.staging import run_key
from tests.conftest import ROOT, running_stack, snapshot

JUNE_CLOSE = datetime.fromisoformat("2025-07-01T02:00:00+00:00")
JULY_CLOSE = datetime.fromisoformat("2025-08-01T02:00:00+00:00")


@pytest.fixture(scope="module")
def airflow(tmp_path_factory):
    """A stack of its own (July 2025 with two months of purchase history: June has sales, no CRM
    or sessions) and Airflow with a scheduler on it."""
    with running_stack("cp_o", tmp_path_factory.mktemp("ops"), 400, seed=5) as stack:
        af = LocalAirflow(stack, tmp_path_factory.mktemp("airflow"))
        try:
            af.start()
            assert "is paused" in backfill(af, "2025-06", "2025-06").stderr  # said, not left queued
            af.unpause()
            yield af
        finally:
            af.stop()
            af.drop_db()


def backfill(af: LocalAirflow, first: str, last: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "include.customer_performance",
            "backfill",
            "--from",
            first,
            "--to",
            last,
            "--airflow",
            af.airflow,
        ],
        cwd=ROOT,
        env=af.env(),
        capture_output=True,
        text=True,
        timeout=1200,
    )


def sales_revenue_rows(stack, start: str, end: str) -> int:
    conn = MySQLdb.connect(**MYSQL, db=stack.sales_db)
    try:
        cur = conn.cursor()
        cur.execute("SELECT count(*) FROM transactions WHERE order_date >= %s AND order_date < %s", (start, end))
        return cur.fetchone()[0]
    finally:
        conn.close()


def test_a_backfill_before_the_dags_start_date_is_refused_by_name(airflow):
    out = backfill(airflow, "1969-11", "1969-12")
    assert out.returncode == 1
    assert out.stderr.startswith("1969-11: the month-close run would be before the DAG's start date 1970-01-01")
    assert not [r for r in airflow.runs() if r["run_type"] == "backfill"]  # nothing was created


def test_backfill_of_two_months_leaves_both_correct(airflow):
    out = backfill(airflow, "2025-06", "2025-07")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "2025-06: success" in out.stdout and "2025-07: success" in out.stdout
    runs = [r for r in airflow.runs() if r["run_type"] == "backfill"]
    assert [(r["logical_date"], r["state"]) for r in runs] == [(JUNE_CLOSE, "success"), (JULY_CLOSE, "success")]
    # each run says which month it reports (its id names its logical date, the 1st of the next month)
    notes = dict(
        airflow.query(
            "SELECT r.run_id, n.content FROM dag_run AS r JOIN dag_run_note AS n ON n.dag_run_id = r.id"
            " WHERE r.dag_id = 'customer_performance'"
        )
    )
    assert notes["backfill__2025-07-01T02:00:00+00:00"] == "June 2025 (month close)"
    assert notes["backfill__2025-08-01T02:00:00+00:00"] == "July 2025 (month close)"

    stack = airflow.stack
    with psycopg.connect(pg_dsn(stack.analytics_db)) as conn:
        for month, start, end in (("2025_06", "2025-06-01", "2025-07-01"), ("2025_07", "2025-07-01", "2025-08-01")):
            period = conn.execute(
                f"SELECT DISTINCT period_start::text, period_end::text FROM analytics.customer_performance_{month}"
            ).fetchall()
            assert period == [(start, end)], month  # the whole month, each in its own partition
            counted, revenue = conn.execute(
                f"SELECT sum(transaction_count), sum(revenue) FROM analytics.customer_performance_{month}"
            ).fetchone()
            total = conn.execute(
                f"SELECT revenue FROM analytics.regional_summary_{month} WHERE grouping_level = 'total'"
            ).fetchone()[0]
            assert total == revenue and revenue > Decimal(0), month
            # every completed sale of the month is counted once, never more than the source holds
            assert 0 < counted <= sales_revenue_rows(stack, start, end), month
            record = conn.execute(
                f"SELECT tasks, delivered FROM analytics.pipeline_runs_{month} WHERE period_end = %s", (end,)
            ).fetchone()
            assert set(record[0]) == set(TASKS) and {"analytics_db", "bi_api", "csv_export"} <= set(record[1])


@pytest.mark.parametrize("task_id", list(TASKS))
def test_clearing_any_task_of_a_finished_run_leaves_the_destinations_identical(airflow, task_id):
    (july,) = [r for r in airflow.runs() if r["logical_date"] == JULY_CLOSE]
    assert july["state"] == "success"
    before = snapshot(airflow.stack)
    tries = airflow.task_states(july["run_id"])[task_id][1]
    airflow.clear(july["run_id"], task_id)
    airflow.wait_for_runs(
        lambda runs: airflow.task_states(july["run_id"])[task_id][1] > tries,
        timeout=600,
        what=f"the rerun of {task_id}",
    )
    state, new_tries = airflow.task_states(july["run_id"])[task_id]
    assert (state, new_tries) == ("success", tries + 1)
    assert [r["state"] for r in airflow.runs() if r["run_id"] == july["run_id"]] == ["success"]
    assert snapshot(airflow.stack) == before


def test_clearing_an_extract_with_downstream_reruns_the_month_identically(airflow):
    (july,) = [r for r in airflow.runs() if r["logical_date"] == JULY_CLOSE]
    before = snapshot(airflow.stack)
    tries = airflow.task_states(july["run_id"])["email_csv_export"][1]
    airflow.clear(july["run_id"], "extract_sales_db", downstream=True)
    airflow.wait_for_runs(lambda runs: airflow.task_states(july["run_id"])["email_csv_export"][1] > tries, timeout=900)
    states = airflow.task_states(july["run_id"])
    assert {t: s for t, (s, _) in states.items()} == dict.fromkeys(TASKS, "success")
    assert snapshot(airflow.stack) == before


# -- the dashboard in the Airflow UI -------------------------------------------------------------
CHROMIUM = ("chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking")


def chromium(*args: str, size: str = "1400,2800") -> str:
    """Open a page in headless Chromium; ``--virtual-time-budget`` lets its scripts run (and their
    requests finish) before the DOM is dumped or the screenshot taken (of ``size``: the whole
    dashboard is about 7,000 pixels high)."""
    out = subprocess.run(
        [*CHROMIUM, "--virtual-time-budget=20000", f"--window-size={size}", "--hide-scrollbars", *args],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


class Drawn(HTMLParser):
    """What the page drew: per chart the (label, value) of each bar, point or cell, per table its
    cells, the KPI cards (their text, their data-* attributes and the text of their change against
    the previous month), the counts it states (data-count) and whether the page said it was ready."""

    def __init__(self):
        super().__init__()
        self.charts, self.tables, self.kpis, self.ready, self.text = {}, {}, {}, None, []
        self.kpi_attrs, self.deltas, self.counts = {}, {}, {}
        self.headers = []  # every table header: (its data-term, its text)
        self._chart = self._table = self._kpi = self._delta = self._th = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "body":
            self.ready = a.get("data-ready")
        if "data-chart" in a:
            self._chart = self.charts.setdefault(a["data-chart"], [])
        if "data-table" in a:
            self._table = self.tables.setdefault(a["data-table"], [])
        if "data-kpi" in a:
            self._kpi = a["data-kpi"]
            self.kpi_attrs[self._kpi] = a
        if "data-delta-of" in a:
            self._delta = a["data-delta-of"]
        if "data-count" in a:
            self.counts[a["data-count"]] = float(a["data-value"])
        if "data-value" in a and "data-label" in a and self._chart is not None:
            self._chart.append((a["data-label"], float(a["data-value"])))
        if tag == "th":
            self._th = [a.get("data-term"), ""]
            if "data-month" not in a:  # a month heading a column of a table by month is a value
                self.headers.append(self._th)
        if tag == "td" and "data-key" in a and self._table is not None:
            self._table.append((a["data-key"], a.get("data-value")))

    def handle_endtag(self, tag):
        if tag == "th":
            self._th = None
        if tag == "figure":
            self._chart = self._table = None

    def handle_data(self, data):
        self.text.append(data)
        if self._th is not None:
            self._th[1] += data
        if self._kpi and data.strip():
            self.kpis[self._kpi] = data.strip()
            self._kpi = None
        if self._delta and data.strip():
            self.deltas[self._delta] = data.strip()
            self._delta = None

    def rows(self, table: str) -> list[dict]:
        """A table's rows as {data-key: data-value} (a row starts at its first column's key)."""
        out, first = [], None
        for key, value in self.tables[table]:
            first = first or key
            if key == first:
                out.append({})
            out[-1][key] = value
        return out


def test_the_dashboard_draws_the_month_from_the_analytics_tables(airflow):
    plugins = airflow.api("GET", "/plugins")["plugins"]
    views = [v for p in plugins for v in p.get("external_views", [])]
    assert {"name": "Customer Performance", "href": "/customer-performance/"}.items() <= views[0].items()

    def num(value: str | None) -> float | None:
        """A cell's data-value as a number (empty: no value)."""
        return None if value in (None, "") else float(value)

    page = Drawn()
    page.feed(chromium("--dump-dom", signed_in(airflow, "/customer-performance/?month=2025-07")))
    assert page.ready == "true"
    with psycopg.connect(pg_dsn(airflow.stack.analytics_db)) as conn:

        def rows(q: str, *args) -> list[tuple]:
            return [(str(a), float(b)) for a, b in conn.execute(q, args or None).fetchall()]

        def one(q: str, *args):
            return conn.execute(q, args or None).fetchone()[0]

        m, june = "report_month = '2025-07-01'", "report_month = '2025-06-01'"
        closed = f"{m} AND period_end = '2025-08-01'"  # the month's closing load
        assert page.charts["regions"] == rows(
            f"SELECT coalesce(region, 'unknown'), revenue FROM analytics.regional_summary WHERE {m}"
            " AND grouping_level = 'region' ORDER BY revenue DESC NULLS LAST, 1"
        )
        assert page.charts["daily_revenue"] == rows(
            f"SELECT bucket_start, revenue FROM analytics.performance_trends WHERE {m} AND grain = 'day'"
            " AND scope = 'all' ORDER BY bucket_start"
        )
        assert len(page.charts["daily_revenue"]) == 31
        daily, weekly = page.charts["daily_transactions"], page.charts["weekly_transactions"]
        assert sum(v for _, v in weekly) == sum(v for _, v in daily) > 0 and len(weekly) == 5
        assert page.charts["health_bands"] == rows(
            f"SELECT coalesce(health_band, 'unknown'), count(*) FROM analytics.customer_performance WHERE {m}"
            " GROUP BY 1 ORDER BY array_position(ARRAY['green', 'yellow', 'red'], coalesce(health_band, 'unknown'))"
        )
        assert sum(v for _, v in page.charts["engagement"]) == one(
            f"SELECT count(engagement_score) FROM analytics.customer_performance WHERE {m}"
        )
        pareto = page.charts["pareto"]
        assert pareto[-1] == ("100", 100.0) and all(a[1] <= b[1] for a, b in zip(pareto, pareto[1:], strict=False))
        # over the customers who bought, as the KPI: its 20 % point is the KPI's top-20 % share (up to
        # the rounding of 20 % of the buyers into whole customers)
        top20 = one(f"SELECT (kpis ->> 'top20_revenue_share')::float FROM analytics.pipeline_runs WHERE {closed}")
        assert dict(pareto)["20"] == pytest.approx(100 * top20, abs=1.0)

        # the save list: in its rank order, 20 a page, its total; the win-back list apart, whole
        at_risk_sql = f"FROM analytics.customer_performance WHERE {m} AND churn_list = 'save'"
        at_risk = [int(r["customer_id"]) for r in page.rows("at_risk")]
        assert at_risk == [r[0] for r in conn.execute(f"SELECT customer_id {at_risk_sql} ORDER BY list_rank LIMIT 20")]
        assert page.counts["at_risk"] == one(f"SELECT count(*) {at_risk_sql}")
        assert f"{int(page.counts['at_risk']):,} customers" in "".join(page.text)
        win_back = [int(r["customer_id"]) for r in page.rows("win_back")]
        assert win_back == [
            r[0]
            for r in conn.execute(
                f"SELECT customer_id FROM analytics.customer_performance WHERE {m} AND churn_list = 'win-back'"
                " ORDER BY list_rank"
            )
        ]
        assert page.counts["win_back"] == len(win_back) > 0

        # the activity heatmap: every weekday x hour cell is the month's sessions there
        assert page.charts["heatmap"] == rows(
            f"SELECT weekday || '-' || hour, sum(sessions) FROM analytics.engagement_heatmap WHERE {closed}"
            " GROUP BY weekday, hour ORDER BY weekday, hour"
        )
        assert len(page.charts["heatmap"]) > 100

        # growth by region against June: the table is analytics.period_comparison
        drawn = {
            r["label"]: tuple(num(r[k]) for k in ("revenue", "previous_revenue", "revenue_change", "retention_rate"))
            for r in page.rows("comparison_region")
        }
        assert drawn == {
            label: tuple(None if v is None else float(v) for v in values)
            for label, *values in conn.execute(
                "SELECT coalesce(label, 'unknown'), revenue, previous_revenue, revenue_change, retention_rate"
                f" FROM analytics.period_comparison WHERE {closed} AND grouping_level = 'region'"
            )
        }
        assert all(v[1] is not None for v in drawn.values())  # June is loaded: every region has its change

        # the KPI cards: July's figure and its change against June
        customers = one(f"SELECT count(*) FROM analytics.customer_performance WHERE {m}")
        active = "SELECT count(*) FILTER (WHERE transaction_count > 0) FROM analytics.customer_performance WHERE"
        for name, now, before in (
            ("Customers", customers, one(f"SELECT count(*) FROM analytics.customer_performance WHERE {june}")),
            ("Active customers", one(f"{active} {m}"), one(f"{active} {june}")),
        ):
            card = page.kpi_attrs[name]
            assert (float(card["data-value"]), float(card["data-previous"])) == (now, before)
            assert float(card["data-delta"]) == now - before
            sign = "+" if now > before else "−" if now < before else "±"
            assert page.deltas[name].endswith("vs June") and f"{sign}{abs(now - before):,}" in page.deltas[name]
    assert page.kpis["Customers"] == f"{customers:,}"
    assert page.kpis["MRR (net revenue)"].endswith(" USD")
    assert [k for k, _ in page.tables["quality"]][:1] == ["period"]
    # one name per meaning: every table header and KPI card shows the glossary's label of its term
    from include.customer_performance.glossary import label

    assert len(page.headers) > 60
    for term, text in page.headers:
        assert term is not None, f"a table header without its term: {text!r}"
        assert text in (label(term), f"{label(term)} (USD)"), (term, text)
    assert {a["data-kpi"] for a in page.kpi_attrs.values() if "data-term" in a} == {
        label(a["data-term"]) for a in page.kpi_attrs.values() if "data-term" in a
    }
    # what to trust: each source's scores, and the month's failed warning rules with their ceiling
    scores = {r["table_name"] for r in page.rows("scores")}
    assert scores == {"customers", "transactions", "interactions", "customer_activity"}
    assert page.rows("warnings"), "the demo data plants rows each warning rule quarantines"
    # market penetration by region: the regional summary's
    assert page.charts["penetration"]

    shot = ROOT / "docs" / "dashboard.png"
    shot.parent.mkdir(exist_ok=True)
    chromium(f"--screenshot={shot}", signed_in(airflow, "/customer-performance/?month=2025-07"), size="1400,8000")
    assert shot.stat().st_size > 20_000  # the README shows it

    # the first customer of the at-risk list, month by month
    first = (at_risk or win_back)[0]
    view = f"/customer-performance/static/customer.html?id={first}&month=2025-07"
    customer = Drawn()
    customer.feed(chromium("--dump-dom", signed_in(airflow, view)))
    assert customer.ready == "true"
    with psycopg.connect(pg_dsn(airflow.stack.analytics_db)) as conn:
        months = conn.execute(
            "SELECT to_char(report_month, 'YYYY-MM'), health_score FROM analytics.customer_performance"
            " WHERE customer_id = %s ORDER BY report_month",
            (first,),
        ).fetchall()
    assert [(r["month"], num(r["health_score"])) for r in customer.rows("customer_months")] == [
        (month, None if score is None else float(score)) for month, score in months
    ]
    assert months and months[-1][0] == "2025-07"
    chromium(f"--screenshot={ROOT / 'docs' / 'customer.png'}", signed_in(airflow, view), size="1400,640")
    assert (ROOT / "docs" / "customer.png").stat().st_size > 20_000
    bad = Drawn()
    bad.feed(chromium("--dump-dom", signed_in(airflow, "/customer-performance/static/customer.html?id=abc")))
    assert bad.ready == "true" and "That is not a customer id" in "".join(bad.text)

    empty = Drawn()
    empty.feed(chromium("--dump-dom", signed_in(airflow, "/customer-performance/?month=2024-02")))
    assert empty.ready == "true" and "No data for 2024-02" in "".join(empty.text)
    # a month that is not a month never becomes a request: the page calls only its own API
    odd = Drawn()
    odd.feed(chromium("--dump-dom", signed_in(airflow, "/customer-performance/?month=../../../api/v2/dags")))
    assert odd.ready == "true" and "That is not a month" in "".join(odd.text)


def test_the_stakeholder_email_reads_like_the_dashboard(airflow):
    """July's email (June is loaded too): its KPI figures and their change against June are the
    run record's, its lists are the dashboard's, its link opens the dashboard month; the HTML part
    is what docs/email.png shows."""
    import email as mail
    from email import policy

    july = [
        m
        for m in (mail.message_from_bytes(p.read_bytes(), policy=policy.default) for p in airflow.stack.mails())
        if "July 2025" in m["Subject"]
    ]
    assert july
    msg = july[-1]
    text = msg.get_body(("plain",)).get_content()
    body = msg.get_body(("html",)).get_content()
    with psycopg.connect(pg_dsn(airflow.stack.analytics_db)) as conn:
        k = {
            month: kpis
            for month, kpis in conn.execute(
                "SELECT to_char(report_month, 'YYYY-MM'), kpis FROM analytics.pipeline_runs"
                " WHERE period_end = (report_month + interval '1 month')::date"
            )
        }
        first = conn.execute(
            "SELECT name FROM analytics.customer_performance WHERE report_month = '2025-07-01'"
            " AND churn_list IS NOT NULL ORDER BY churn_list, list_rank LIMIT 1"
        ).fetchone()[0]
    active, before = k["2025-07"]["active_customers"], k["2025-06"]["active_customers"]
    line = next(x for x in text.splitlines() if x.strip().startswith("Active customers"))
    assert f"{active:,}" in line and f"{active - before:+,}" in line  # e.g. 1,912   +128 (+7.2 %)
    assert "KEY FIGURES (vs June 2025)" in text and first in text
    assert f"{airflow.url}/customer-performance/?month=2025-07" in text
    assert "<script" not in body.lower() and "vs June 2025" in body
    page = ROOT / "docs" / ".email.html"
    page.write_text(body)
    try:
        chromium(f"--screenshot={ROOT / 'docs' / 'email.png'}", page.as_uri(), size="820,2300")
    finally:
        page.unlink()
    assert (ROOT / "docs" / "email.png").stat().st_size > 20_000  # the README shows it


def signed_in(airflow: LocalAirflow, path: str) -> str:
    """A URL that signs the browser in first (the local all-admins login sets the UI's session
    cookie), then opens ``path``."""
    from urllib.parse import quote

    return f"{airflow.url}/auth/token/login?next={quote(airflow.url + path, safe='')}"


def test_the_dashboard_refuses_anything_but_a_real_month(airflow):
    """(Who may read it is tested with a real login in tests/test_security.py: this local stack
    signs everyone in as admin.)"""
    import requests

    api = f"{airflow.url}/customer-performance/api"
    token = requests.get(f"{airflow.url}/auth/token", timeout=30).json()["access_token"]
    ok = {"Authorization": f"Bearer {token}"}
    month = requests.get(f"{api}/month/2025-07", headers=ok, timeout=30).json()
    # the month's runs from Airflow's metadata DB (the strip and the banners): the backfill's July run
    assert month["airflow"]["available"] is True, month["airflow"]
    assert [r["state"] for r in month["airflow"]["runs"]][:1] == ["success"]
    assert all(r["logical_date"].startswith(("2025-07", "2025-08-01")) for r in month["airflow"]["runs"])
    for month in ("9999-12", "0001-01", "2025-13", "2025-7", "..%2F..%2Fapi"):
        resp = requests.get(f"{api}/month/{month}", headers=ok, timeout=30)
        assert resp.status_code in (400, 404), (month, resp.status_code)
    assert requests.get(f"{api}/month/9999-12", headers=ok, timeout=30).status_code == 400


def test_a_run_stopped_by_the_gate_resumes_from_validate_after_the_fix(airflow):
    """Bad source data (an eighth of the emails missing: completeness under 95 %, critical) stops
    the July run in validate and publishes nothing; the staged rows are fixed and validate is
    cleared with its downstream: the run completes and every destination is as it was."""
    stack = airflow.stack
    (july,) = [r for r in airflow.runs() if r["logical_date"] == JULY_CLOSE]
    before = snapshot(stack)
    with psycopg.connect(pg_dsn(stack.customer_db)) as conn:
        saved = conn.execute("SELECT customer_id, email FROM customers WHERE customer_id % 8 = 0").fetchall()
        conn.execute("UPDATE customers SET email = NULL WHERE customer_id % 8 = 0")
    try:
        tries = airflow.task_states(july["run_id"])["validate"][1]
        airflow.clear(july["run_id"], "extract_customer_db", downstream=True)
        airflow.wait_for_runs(lambda runs: airflow.task_states(july["run_id"])["validate"][1] > tries, timeout=900)
        states = {t: s for t, (s, _) in airflow.task_states(july["run_id"]).items()}
        assert states["validate"] == "failed"
        assert {states[t] for t in ("aggregate", "load_analytics_db", "push_bi_api", "email_csv_export")} == {
            "upstream_failed"
        }
        assert snapshot(stack) == before  # nothing was published

        # the fix, in the staged data; then validate (which recomputes the metrics) and downstream
        key = run_key(JULY_CLOSE, july["run_id"])
        with psycopg.connect(pg_dsn(stack.analytics_db)) as conn:
            staged = [f"customers_{key}"]
            if conn.execute(f"SELECT relkind FROM pg_class WHERE relname = 'flt_customers_{key}'").fetchone()[0] == "r":
                staged.append(f"flt_customers_{key}")
            for table in staged:
                with conn.cursor() as cur:
                    cur.executemany(
                        f"UPDATE cp_staging.{table} SET email = %s WHERE customer_id = %s", [(e, c) for c, e in saved]
                    )
        airflow.clear(july["run_id"], "validate", downstream=True)
        airflow.wait_for_runs(
            lambda runs: airflow.task_states(july["run_id"])["email_csv_export"][0] == "success", timeout=900
        )
        assert {s for s, _ in airflow.task_states(july["run_id"]).values()} == {"success"}
        assert snapshot(stack) == before
    finally:
        with psycopg.connect(pg_dsn(stack.customer_db)) as conn, conn.cursor() as cur:
            cur.executemany("UPDATE customers SET email = %s WHERE customer_id = %s", [(e, c) for c, e in saved])


# -- the incident drill, in a browser ------------------------------------------------------------
def browser(mode: str, url: str, tmp_path, shot=None) -> dict:
    """tests/browser/incident.mjs: what on-call does in the UI, in headless Chromium."""
    import json

    out = tmp_path / f"{mode}.json"
    args = ["node", "incident.mjs", mode, url, str(out), *([str(shot)] if shot else [])]
    done = subprocess.run(args, cwd=ROOT / "tests" / "browser", capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(out.read_text())


def test_incident_drill_a_rotated_crm_token_is_recovered_from_the_ui(airflow, tmp_path):
    """The CRM rotates its token: a run fails on its first try; on-call opens the failed task in
    the UI, reads the advice in its log, renews the token where the advice says (Admin >
    Connections), clears the task from the UI, and the run recovers with every destination as it
    was. The run has a pending Deadline Alert, which Airflow 3.3.2 could not clear with a queued-at
    deadline (HTTP 500, apache/airflow#70368)."""
    import email
    from datetime import UTC
    from datetime import datetime as dt

    stack = airflow.stack
    before = snapshot(stack)
    mails = len(stack.mails())
    stack.rotate_crm_token("rotated-crm-token")
    # a manual run of July, as on-call triggers it (its logical date now: its deadline is pending)
    run = airflow.api(
        "POST",
        "/dags/customer_performance/dagRuns",
        json={"logical_date": dt.now(UTC).isoformat(), "conf": {"report_month": "2025-07"}},
    )
    run_id = run["dag_run_id"]
    airflow.wait_for_runs(lambda runs: any(r["run_id"] == run_id for r in runs), timeout=600, what="the drill's run")
    states = airflow.task_states(run_id)
    assert states["extract_crm_api"] == ("failed", 1)  # a 401 is not retried: it fails on its first try
    pending = airflow.query(
        "SELECT count(*) FROM deadline AS d JOIN dag_run AS r ON r.id = d.dagrun_id WHERE r.run_id = %s"
        " AND NOT d.missed",
        (run_id,),
    )
    assert pending == [(1,)]
    (note,) = airflow.query(
        "SELECT n.content FROM dag_run_note AS n JOIN dag_run AS r ON r.id = n.dag_run_id WHERE r.run_id = %s",
        (run_id,),
    )
    assert note == ("July 2025 (month close)",)  # what the grid and the runs list show beside the run

    # on-call opens the failed task (the alert email links its log) and reads what to do
    alert = next(
        email.message_from_bytes(m.read_bytes())
        for m in stack.mails()[mails:]
        if "run failed at extract_crm_api" in email.message_from_bytes(m.read_bytes())["Subject"]
    )
    assert alert["Subject"] == "[Customer Performance] July 2025 run failed at extract_crm_api"
    page_url = f"{airflow.url}/dags/customer_performance/runs/{run_id}/tasks/extract_crm_api"
    shot = ROOT / "docs" / "incident_log.png"
    text = browser("read", page_url, tmp_path, shot)["text"]
    assert "What to do (credentials refused)" in text
    assert "`crm_api` lives in Admin > Connections (the metadata database): edit it there" in text
    assert "Airflow will not retry (try 1 of " in text and "this error is not retried" in text

    # the advice, followed: the new token in Admin > Connections (what the UI's edit form sends)
    airflow.api(
        "PATCH",
        "/connections/crm_api?update_mask=password",
        json={"connection_id": "crm_api", "conn_type": "http", "password": "rotated-crm-token"},
    )
    cleared = browser("clear", page_url, tmp_path)
    assert cleared["status"] == 200, cleared["body"]  # not the 500 of a queued-at deadline
    assert "Affected Tasks: 8" in cleared["preview"]  # the task and everything downstream of it
    airflow.wait_for_runs(
        lambda runs: [r["state"] for r in runs if r["run_id"] == run_id] == ["success"],
        timeout=900,
        what="the drill's run after the clear",
    )
    assert {s for s, _ in airflow.task_states(run_id).values()} == {"success"}
    after = snapshot(stack)
    # July is published again by another run: the same rows everywhere; the run record names it
    assert {k: v for k, v in after.items() if k != "pipeline_runs"} == {
        k: v for k, v in before.items() if k != "pipeline_runs"
    }


def test_a_run_for_a_past_day_of_a_closed_month_leaves_every_destination_as_it_was(airflow, tmp_path):
    """A run for 15 July (1-14 July, as the UI's trigger form makes it with an old logical date)
    after July was published closed: every task refuses before any work, every destination stays
    byte-identical, and the task's page in the UI says why and what to do. The UI's Backfill form
    over 30 July .. 1 August (one run a day) creates runs for the days only (the 1st's close
    exists) and skips them, saying so in each run's note."""
    stack = airflow.stack
    before = snapshot(stack)
    run = airflow.api("POST", "/dags/customer_performance/dagRuns", json={"logical_date": "2025-07-15T02:00:00Z"})
    run_id = run["dag_run_id"]
    airflow.wait_for_runs(lambda runs: any(r["run_id"] == run_id for r in runs), timeout=600, what="the 15 July run")
    states = airflow.task_states(run_id)
    for task_id in ("extract_customer_db", "extract_crm_api", "extract_sales_db"):
        assert states[task_id] == ("failed", 1), states  # not retried: waiting does not reopen a month
    assert {states[t][0] for t in ("load_analytics_db", "push_bi_api", "email_csv_export")} == {"upstream_failed"}
    assert snapshot(stack) == before
    page = f"{airflow.url}/dags/customer_performance/runs/{run_id}/tasks/extract_sales_db"
    text = browser("read", page, tmp_path)["text"]
    assert "July 2025 was published closed" in text and "1-14 July 2025 (month to date)" in text
    assert "What to do (closed month)" in text and "replace_closed_month" in text

    made = airflow.api(
        "POST",
        "/backfills",
        json={
            "dag_id": "customer_performance",
            "from_date": "2025-07-30T02:00:00Z",
            "to_date": "2025-08-01T02:00:00Z",
            "reprocess_behavior": "none",
        },
    )
    airflow.wait_for_runs(
        lambda runs: len([r for r in runs if r["run_type"] == "backfill"]) >= 4, timeout=600, what="the UI backfill"
    )
    days = [r for r in airflow.runs() if r["run_type"] == "backfill" and r["logical_date"].day in (30, 31)]
    assert [(r["logical_date"].day, r["state"]) for r in days] == [(30, "success"), (31, "success")], made
    for r in days:
        assert {s for s, _ in airflow.task_states(r["run_id"]).values()} == {"skipped"}
    notes = dict(
        airflow.query(
            "SELECT r.run_id, n.content FROM dag_run AS r JOIN dag_run_note AS n ON n.dag_run_id = r.id"
            " WHERE r.dag_id = 'customer_performance'"
        )
    )
    assert notes[days[0]["run_id"]] == (
        "1-29 July 2025 (month to date): skipped, a backfill publishes whole months (their month-close runs)"
    )
    assert snapshot(stack) == before
