"""The dashboard's API (dashboard/app.py, data.py) over the July 2025 run's analytics tables, and the
stakeholder email (export/digest.py) that mirrors it. The page itself is drawn in headless
Chromium under a real Airflow in tests/test_operations.py; who may read it in test_security.py.

- the at-risk list: its total, its order (value at stake), paging and the full CSV equal SQL;
- the movers and the per-customer history equal SQL; a bad id or month is refused;
- banners say when a source was empty, warning rules failed or a later run failed;
- the email: a plain-text part and an HTML part without script, its KPIs formatted, every source
  value escaped.
"""

from __future__ import annotations

import csv
import email
import io
from email import policy

import psycopg
import pytest
from fastapi.testclient import TestClient

from dev.stack import pg_dsn
from include.customer_performance.dashboard import data
from include.customer_performance.dashboard.app import create_app
from include.customer_performance.export import digest

M = "report_month = '2025-07-01'"


@pytest.fixture(scope="module")
def api(july_run):
    return TestClient(create_app(auth=False))


@pytest.fixture(scope="module")
def db(stack, july_run):
    with psycopg.connect(pg_dsn(stack.analytics_db)) as conn:
        yield conn


def _at_risk_sql(db, which: str = "save") -> list[int]:
    """The list as SQL reads it: its customers in rank order."""
    return [
        r[0]
        for r in db.execute(
            f"SELECT customer_id FROM analytics.customer_performance WHERE {M} AND churn_list = %s ORDER BY list_rank",
            (which,),
        )
    ]


def test_the_save_list_its_total_pages_csv_and_the_win_back_list_equal_sql(api, db):
    everyone = _at_risk_sql(db)
    month = api.get("/api/month/2025-07").json()
    # bounded by the scorecard's risk.save_list_size; under the BTYD probability (July alone, no
    # history to train on) few high-risk customers are still active by their own rhythm
    assert len(everyone) <= 50 and len(everyone) == month["kpis"]["save_list_customers"]
    assert month["at_risk"]["total"] == len(everyone)
    assert [r["customer_id"] for r in month["at_risk"]["rows"]] == everyone[: data.AT_RISK_PAGE]
    page = api.get("/api/month/2025-07/at-risk", params={"offset": 2, "limit": 3}).json()
    assert page["total"] == len(everyone) and [r["customer_id"] for r in page["rows"]] == everyone[2:5]
    assert api.get("/api/month/2025-07/at-risk", params={"limit": 201}).status_code == 422
    assert api.get("/api/month/2025-07/at-risk", params={"offset": -1}).status_code == 422
    total = db.execute(
        f"SELECT coalesce(sum(expected_loss), 0)::float FROM analytics.customer_performance WHERE {M} AND "
        + data.AT_RISK
    ).fetchone()[0]
    # the card's total is the list's, and the KPI's
    assert month["at_risk"]["expected_loss"] == pytest.approx(total) == month["kpis"]["save_list_expected_loss"]
    assert all(r["churn_reason"] and "churn" not in r["churn_reason"] for r in month["at_risk"]["rows"])
    assert [r["customer_id"] for r in month["win_back"]] == _at_risk_sql(db, "win-back")
    assert 0 < len(month["win_back"]) == month["kpis"]["win_back_customers"] <= 50
    assert all(r["churn_reason"] and "churn" not in r["churn_reason"] for r in month["win_back"])
    assert not set(everyone) & {r["customer_id"] for r in month["win_back"]}
    # the last purchase day is the period's last day minus the days since
    first = (month["at_risk"]["rows"] or month["win_back"])[0]
    if first["days_since_last_purchase"] is not None:
        from datetime import date, timedelta

        assert date.fromisoformat(first["last_purchase_day"]) == date(2025, 7, 31) - timedelta(
            days=first["days_since_last_purchase"]
        )

    resp = api.get("/api/month/2025-07/at-risk.csv")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/csv")
    assert 'filename="at_risk_2025-07.csv"' in resp.headers["content-disposition"]
    head, *rows = list(csv.reader(io.StringIO(resp.text)))
    assert [int(r[head.index("customer_id")]) for r in rows] == everyone
    assert {"name", "expected_loss", "churn_reason", "last_purchase_day", "last_login_day"} <= set(head)


def test_a_cell_a_spreadsheet_would_run_is_quoted():
    assert data._cell("=HYPERLINK(1)") == "'=HYPERLINK(1)" and data._cell("-2") == "'-2"
    assert data._cell("Ada") == "Ada" and data._cell(-2) == -2


def test_the_movers_and_a_customers_history_equal_sql(api, db):
    month = api.get("/api/month/2025-07").json()
    expected = db.execute(
        f"SELECT customer_id FROM analytics.customer_performance WHERE {M} AND health_trend = 'down'"
        " ORDER BY health_score - previous_health_score, expected_loss DESC NULLS LAST, customer_id LIMIT 10"
    ).fetchall()
    assert [r["customer_id"] for r in month["movers"]] == [r[0] for r in expected]
    assert all(r["health_change"] < 0 for r in month["movers"])

    cid = (month["at_risk"]["rows"] or month["win_back"])[0]["customer_id"]
    history = api.get(f"/api/customer/{cid}").json()
    months = db.execute(
        "SELECT report_month, health_score::float, revenue::float FROM analytics.customer_performance"
        " WHERE customer_id = %s ORDER BY report_month",
        (cid,),
    ).fetchall()
    assert [(m["month"], m["health_score"], m["revenue"]) for m in history["months"]] == [
        (d.strftime("%Y-%m"), h, r) for d, h, r in months
    ]
    assert api.get("/api/customer/999999999").status_code == 404
    assert api.get("/api/customer/abc").status_code == 422
    assert api.get("/api/customer/-1").status_code == 422
    assert api.get("/api/month/2025-13/at-risk").status_code == 400
    assert api.get("/api/month/2024-02/at-risk").status_code == 404  # not loaded: said, not an empty page
    assert api.get("/api/month/2024-02/at-risk.csv").status_code == 404


def test_the_months_newest_first_and_the_insights_served(api, db):
    listed = api.get("/api/months").json()
    assert listed["months"] == sorted(listed["months"], reverse=True) and listed["latest_complete"] == "2025-07"
    month = api.get("/api/month/2025-07").json()
    heat = {(c["weekday"], c["hour"]): c["sessions"] for c in month["heatmap"]}
    stored = dict(
        ((w, h), s)
        for w, h, s in db.execute(f"SELECT weekday, hour, sessions FROM analytics.engagement_heatmap WHERE {M}")
    )
    assert heat == stored and sum(heat.values()) > 0
    levels = {r["grouping_level"] for r in month["comparison"]}
    assert levels == {"total", "region", "crm_segment"}
    assert {r["analysis"] for r in month["correlations"]} == {"activity_decile", "support_contacts", "feature_usage"}
    assert month["kpis"]["security_incidents"] == sum(
        r["interactions"]
        for r in month["interactions"]
        if r["grouping_level"] == "department" and r["department"] == "security"
    )
    # the month's runs from Airflow's metadata DB (here the tests' own, where July's run is)
    assert month["airflow"]["available"] is True, month["airflow"]
    assert [(r["state"], r["failed_tasks"]) for r in month["airflow"]["runs"]][:1] == [("success", [])]
    # month closed, no empty source, the run succeeded: only the warning rules the planted defects fail
    failed = db.execute(
        f"SELECT count(*) FROM analytics.data_quality_results WHERE {M} AND severity = 'warning'"
        " AND score IS NULL AND NOT success"
    ).fetchone()[0]
    assert failed > 0
    assert [(b["level"], b["text"].split(":")[0]) for b in month["banners"]] == [
        ("warning", f"The quality gate passed with {failed} warning rule(s) failed")
    ]


def test_banners_name_what_a_reader_must_know():
    d = {
        "alerts": [{"alert": "source_empty", "scope": "interactions"}, {"alert": "region_revenue_drop", "scope": "EU"}],
        "gate": [{"severity": "warning", "failed": 2}, {"severity": "info", "failed": 7}],
        "run": {"month_closed": False, "period_start": "2025-07-01", "period_end": "2025-07-15"},
    }
    texts = [b["text"] for b in data.banners(d)]
    assert any("Empty source(s) this period: interactions." in t for t in texts)
    assert any("2 warning rule(s) failed" in t for t in texts)  # info rules are not a banner
    assert any("Month to date" in t for t in texts)
    run = {"loaded_at": "2025-08-01 02:10", "run_id": "scheduled__1"}
    failed = {"runs": [{"run_id": "manual__2", "state": "failed", "failed_tasks": ["validate"]}]}
    (banner,) = data.run_banners(failed, run)
    assert banner["level"] == "error" and "quality gate stopped it" in banner["text"]
    assert "scheduled__1" in banner["text"]
    assert data.run_banners({"runs": [{"run_id": "x", "state": "success", "failed_tasks": []}]}, run) == []
    # the run shown published its figures, then a destination failed: they are its figures
    later = {"runs": [{"run_id": "scheduled__1", "state": "failed", "failed_tasks": ["email_csv_export"]}]}
    (banner,) = data.run_banners(later, run)
    assert (
        banner["level"] == "warning" and "published the figures below, then task(s) email_csv_export" in banner["text"]
    )
    stopped = {"runs": [{"run_id": "manual__3", "state": "failed", "failed_tasks": ["aggregate", "push_bi_api"]}]}
    assert "nothing of it was published" in data.run_banners(stopped, run)[0]["text"]


def test_the_email_has_a_text_part_and_safe_html(july_run):
    msg = email.message_from_bytes(july_run["mails"][0].read_bytes(), policy=policy.default)
    text = msg.get_body(("plain",)).get_content()
    body = msg.get_body(("html",)).get_content()
    assert "KEY FIGURES" in text and "Save list, who to call" in text and "Win back:" in text
    assert "SECURITY OPERATIONS" in text
    assert "/customer-performance/?month=2025-07" in text and "/customer-performance/?month=2025-07" in body
    assert "<script" not in body.lower() and "<style" not in body.lower() and "<img" not in body.lower()
    assert "Quality gate PASSED" in text and "Quality gate PASSED" in body
    # the KPI row is formatted for a reader: compact money in the currency, no raw keys or None
    assert " USD" in text and "None" not in text and "mrr_at_risk" not in text


def test_the_digest_formats_and_escapes():
    assert digest.compact(1_214_000, "money", "USD") == "1.21 M USD"
    assert digest.compact(12_345, "money", "USD") == "12.3 k USD"
    assert digest.compact(4741, "count") == "4,741" and digest.compact(0.352, "share") == "35.2 %"
    assert digest.compact(None, "money", "USD") == "n/a"
    assert digest.change(110, 100, "money", "USD") == ("+10 USD (+10.0 %)", 1)
    assert digest.change(90, 100, "count") == ("-10 (-10.0 %)", -1)
    assert digest.change(5, None, "count") == ("n/a", 0)
    hostile = {
        "customer_id": 7,
        "name": "<img src=x onerror=alert(1)>",
        "segment": "VIP",
        "region": "EU",
        "health_band": "red",
        "health_score": 20,
        "churn_probability": 0.9,
        "expected_loss": 100,
        "value_if_kept": 150,
        "days_since_last_purchase": 40,
        "churn_reason": "<b>x</b>",
        "risk_driver": "<b>x</b>",
        "previous_health_score": 80,
    }
    d = digest.Digest(
        month="July 2025",
        period="2025-07-01..2025-07-31",
        run_id="r<1>",
        currency="USD",
        kpis={"mrr": 1000.0},
        save=[hostile],
        save_total=1,
        win_back=[hostile],
        win_back_total=1,
        movers=[hostile],
        link="http://x/customer-performance/?month=2025-07&a='b'",
    )
    body = digest.html_body(d, ["f.csv"])
    assert "<img" not in body and "&lt;img src=x onerror=alert(1)&gt;" in body and "&lt;b&gt;x&lt;/b&gt;" in body
    assert "r&lt;1&gt;" in body and "a=&#x27;b&#x27;" in body
    assert "<img src=x" in digest.text(d, ["f.csv"])  # plain text is not markup


def test_a_month_to_date_email_is_not_compared_with_a_whole_month():
    d = digest.Digest(
        month="August 2025",
        period="2025-08-01..2025-08-14",
        run_id="r",
        currency="USD",
        kpis={"mrr": 500.0, "active_customers": 10},
        previous_month="July 2025",
        previous={"mrr": 1000.0, "active_customers": 20},
        month_closed=False,
    )
    text = digest.text(d, [])
    assert digest.MONTH_TO_DATE in text and "-50.0 %" not in text
    assert [(label, delta) for label, _, delta, _ in digest._kpi_rows(d)][:2] == [
        ("MRR (net revenue)", "month to date"),
        ("Active customers", "month to date"),
    ]
    d.month_closed = True
    assert digest._kpi_rows(d)[0][2] == "-500 USD (-50.0 %)"


@pytest.mark.parametrize(
    "applied",
    ["0005", "0006", "0014"],
    ids=["before the back-test", "before the insights", "before the back-test's revenue"],
)
def test_the_dashboard_reads_a_schema_upgraded_but_not_loaded_since(pg_db, tmp_path, applied):
    """A deployment that upgraded the package but has not loaded since: the analytics schema is
    an older migration's (or the newer one's, without rows). The page shows what is there and the
    newer sections empty; it never fails."""
    import shutil
    from datetime import date
    from pathlib import Path

    from include.customer_performance.migrations import migrate

    src = Path(__file__).resolve().parent.parent / "include" / "customer_performance" / "migrations"
    older = tmp_path / "migrations"
    older.mkdir()
    for f in sorted(src.glob("*.sql")):
        if f.name[:4] <= applied:
            shutil.copy(f, older / f.name)
    with psycopg.connect(pg_db) as conn:
        with conn.cursor() as cur:
            migrate(cur, "analytics", older)
            cur.execute(
                "CREATE TABLE analytics.customer_performance_2025_07 PARTITION OF analytics.customer_performance"
                " FOR VALUES IN ('2025-07-01')"
            )
            cur.execute(
                "CREATE TABLE analytics.pipeline_runs_2025_07 PARTITION OF analytics.pipeline_runs"
                " FOR VALUES IN ('2025-07-01')"
            )
            cur.execute(
                "INSERT INTO analytics.pipeline_runs (report_month, period_start, period_end, run_id, kpis)"
                " VALUES ('2025-07-01', '2025-07-01', '2025-08-01', 'r1', '{\"customers\": 2}')"
            )
            cur.execute(
                "INSERT INTO analytics.customer_performance (report_month, period_start, period_end, run_id,"
                " customer_id, churn_probability, health_band, health_score, revenue) VALUES"
                " ('2025-07-01', '2025-07-01', '2025-08-01', 'r1', 1, 0.9, 'red', 20, 10),"
                " ('2025-07-01', '2025-07-01', '2025-08-01', 'r1', 2, 0.1, 'green', 80, 50)"
            )
        conn.commit()
        for upgrade in (False, True):  # as it is, then migrated to the newest without a load
            if upgrade:
                with conn.cursor() as cur:
                    migrate(cur, "analytics")
                conn.commit()
            out = data.month_data(conn, "analytics", date(2025, 7, 1))
            assert out["kpis"] == {"customers": 2} and len(out["health_bands"]) == 2
            # fewer buyers than the curve's points: every point, the top 20 % being ceil(0.2 x 2) = 1
            # customer (50 of 60), as the KPI counts them, and the curve ends at 100 %
            pareto = out["pareto"]
            assert [p["customers_pct"] for p in pareto] == list(range(5, 101, 5))
            assert pareto[3]["revenue_share"] == 0.8333 and pareto[-1]["revenue_share"] == 1.0
            assert out["comparison"] == [] and out["heatmap"] == [] and out["correlations"] == []
            # the lists need churn_list (0014): empty before it, and customer 1 is on no list after it
            assert out["at_risk"]["total"] == 0 and out["win_back"] == []
            assert data.customer_history(conn, "analytics", 1)["months"][0]["health_score"] == 20


def test_what_to_trust_reads_a_volume_warning_and_a_rule_over_its_rows():
    """The email's 'What to trust': a source's scores against their minimums, a warning rule with
    its rows and ceiling, and an outcome warning (volume: rows checked, no failing rows, no
    ceiling) in its own words."""
    from include.customer_performance.export.digest import Digest, trust_lines

    d = Digest(month="July 2025", period="2025-07-01..2025-07-31", run_id="r", currency="USD", kpis={})
    d.trust = {
        "scores": [
            {
                "table_name": "transactions",
                "completeness": 0.99875,
                "completeness_min": 0.95,
                "accuracy": 0.97,
                "accuracy_min": 0.98,
                "fresh": False,
                "freshness_detail": "the latest updated_at is 2025-07-20 00:00",
                "freshness_days": 2,
            }
        ],
        "warnings": [
            {"rule": "transactions.amount.negative", "table_name": "transactions", "failing_rows": 12,
             "rows_checked": 1000, "quarantined_rows": 12, "ceiling": 0.02, "message": None},
            {"rule": "transactions.volume", "table_name": "transactions", "failing_rows": None,
             "rows_checked": 600, "quarantined_rows": 0, "ceiling": None, "message": "600 rows in the period"},
        ],
    }  # fmt: skip
    lines = trust_lines(d)
    assert lines[0] == (
        "transactions: completeness 99.9 % (min 95.0 %), accuracy 97.0 % (min 98.0 %), STALE:"
        " the latest updated_at is 2025-07-20 00:00"
    )
    assert lines[1] == "warning transactions.amount.negative: 12 of 1,000 rows (1.20 %; ceiling 2.00 %), 12 quarantined"
    assert lines[2] == "warning transactions.volume: 600 rows in the period"
