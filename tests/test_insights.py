"""The insights (migration 0007, sql/period_comparison, engagement_heatmap, interaction_summary,
engagement_correlations) and the KPI row's security operations, NPS and MRR, each figure against a
value worked out by hand on a fixture of five customers, in a database of its own.

The fixture, July 2025 against June:

    customer  July: region  segment* revenue  sales  registered   logins  contacts  satisfaction
    1               EU      VIP      100      2      2024-01-01   10      2         9
    2               EU      regular  0        0      2024-01-01   0       1         4
    3               US      new      50       1      2025-07-10   3       0         -
    4               -       regular  30       1      2023-05-01   1       0         -
    5         (not a customer in July)

(* the CRM's segment, crm_segment, which the comparison groups by)

    customer  June: region  segment* revenue  sales  features used
    1               EU      VIP      80       1      4
    2               EU      regular  20       1      1
    4               US      regular  0        0      0
    5               US      regular  40       2      2
"""

from __future__ import annotations

import statistics
from datetime import date, datetime
from decimal import Decimal

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import dict_row

from include.customer_performance import scorecard
from include.customer_performance.sql import model
from include.customer_performance.staging import make_run, replace_table_as
from include.customer_performance.transform.aggregate import bound, previous_customers
from tests.conftest import fresh_pg_db

JULY = make_run(datetime(2025, 8, 1, 2), "insights_test", None, "cp_staging")

METRICS = [
    # customer_id, region, crm_segment, revenue, transaction_count, registration_date, login_count,
    # interaction_count, avg_satisfaction, revenue_at_risk
    (1, "EU", "VIP", 100, 2, date(2024, 1, 1), 10, 2, 9, 10),
    (2, "EU", "regular", 0, 0, date(2024, 1, 1), 0, 1, 4, 0),
    (3, "US", "new", 50, 1, date(2025, 7, 10), 3, 0, None, 5),
    (4, None, "regular", 30, 1, date(2023, 5, 1), 1, 0, None, 3),
]
JUNE = [
    (1, "EU", "VIP", 80, 1, 4),
    (2, "EU", "regular", 20, 1, 1),
    (4, "US", "regular", 0, 0, 0),
    (5, "US", "regular", 40, 2, 2),
]
SESSIONS = [
    (1, "2025-07-07 09:15+00", 10),  # Monday 09h
    (1, "2025-07-07 09:45+00", 5),  # Monday 09h
    (2, "2025-07-13 23:59+00", -3),  # Sunday 23h: a negative duration counts as a session, not as minutes
    (3, "2025-07-08 01:30+02", 20),  # 2025-07-07 23:30 UTC: Monday 23h
    (9, "2025-07-07 09:00+00", 60),  # not a customer: left out
]
INTERACTIONS = [
    # customer, type, department, priority, resolution, satisfaction, resolution hours
    (1, "ticket", "security", "critical", "resolved", 9, 2),
    (1, "ticket", "security", "low", "false_positive", 10, 1),
    (2, "call", "support", None, "escalated", 4, 10),
    (2, "email", "support", None, "open", 11, None),  # satisfaction off the scale: not averaged
    (9, "ticket", "security", "critical", "resolved", 10, 1),  # not a customer: left out
]


def _stage(dsn: str, june: bool = True, june_end: date = date(2025, 7, 1)) -> dict[str, list[dict]]:
    """The fixture staged and published, every insight model and the KPI row computed; their rows."""
    with psycopg.connect(dsn) as conn, conn.cursor(row_factory=dict_row) as cur:
        cur.execute("CREATE SCHEMA cp_staging; CREATE SCHEMA analytics")
        cur.execute(
            "CREATE TABLE analytics.customer_performance (report_month date, period_end date, customer_id bigint,"
            " region text, crm_segment text, revenue numeric, transaction_count bigint, features_used bigint)"
        )
        if june:  # June's last load: its month-close run (period_end 1 July), or a month to date
            cur.executemany(
                "INSERT INTO analytics.customer_performance VALUES ('2025-06-01', %s, %s, %s, %s, %s, %s, %s)",
                [(june_end, *row) for row in JUNE],
            )
        cur.execute(
            sql.SQL(
                "CREATE TABLE {} (customer_id bigint, region text, crm_segment text, revenue numeric,"
                " transaction_count bigint, registration_date date, login_count bigint, interaction_count bigint,"
                " avg_satisfaction numeric, revenue_at_risk numeric, refunds numeric DEFAULT 0, segment text,"
                " churn_probability numeric DEFAULT 0.1, is_top_20pct boolean DEFAULT false,"
                " clv_12m numeric DEFAULT 0, value_if_kept numeric DEFAULT 0, expected_loss numeric DEFAULT 0,"
                " churn_list text, engagement_score numeric DEFAULT 50,"
                " health_score numeric DEFAULT 50, health_band text DEFAULT 'yellow')"
            ).format(JULY.table("customer_metrics"))
        )
        cur.executemany(
            sql.SQL(
                "INSERT INTO {} (customer_id, region, crm_segment, revenue, transaction_count, registration_date,"
                " login_count, interaction_count, avg_satisfaction, revenue_at_risk)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            ).format(JULY.table("customer_metrics")),
            METRICS,
        )
        cur.execute(
            sql.SQL("CREATE TABLE {} (customer_id bigint, session_start timestamptz, duration_minutes numeric)").format(
                JULY.table("vld_customer_activity")
            )
        )
        cur.executemany(
            sql.SQL("INSERT INTO {} VALUES (%s, %s, %s)").format(JULY.table("vld_customer_activity")), SESSIONS
        )
        cur.execute(
            sql.SQL(
                "CREATE TABLE {} (customer_id bigint, interaction_type text, department text, priority text,"
                " resolution_status text, satisfaction_score numeric, resolution_hours numeric)"
            ).format(JULY.table("vld_interactions"))
        )
        cur.executemany(
            sql.SQL("INSERT INTO {} VALUES (%s, %s, %s, %s, %s, %s, %s)").format(JULY.table("vld_interactions")),
            INTERACTIONS,
        )
        with conn.cursor() as plain:
            last_month, loaded = previous_customers(plain, JULY, "analytics")
        params = {
            **scorecard.parse({}, "defaults").sql_params(),
            **JULY.period.as_params(),
            "previous_loaded": loaded,
        }
        out = {}
        for name in ("period_comparison", "engagement_heatmap", "interaction_summary", "engagement_correlations"):
            select = model(name, JULY, **bound(name, {"previous_customers": last_month}))
            replace_table_as(cur, JULY.table(name), select, params)
            cur.execute(sql.SQL("SELECT * FROM {}").format(JULY.table(name)))
            out[name] = cur.fetchall()
        # the KPI row reads only its own inputs: the other columns of customer_metrics are defaults
        cur.execute(sql.SQL("SELECT * FROM ({}) AS k").format(model("kpis", JULY)), params)
        out["kpis"] = cur.fetchall()
    return out


@pytest.fixture(scope="module")
def staged():
    with fresh_pg_db() as dsn:
        yield _stage(dsn)


def _pick(rows: list[dict], **where) -> dict:
    (row,) = [r for r in rows if all(r[k] == v for k, v in where.items())]
    return row


def test_the_month_against_the_last_by_region_and_segment(staged):
    rows = staged["period_comparison"]
    assert len(rows) == 1 + 3 + 3  # total, three regions (EU, US, none), three segments (VIP, regular, new)
    total = _pick(rows, grouping_level="total")
    # 4 customers, 1 new: 1 / (4 - 1) acquired; revenue 180 against June's 80 + 20 + 0 + 40 = 140
    assert (total["customers"], total["new_customers"], total["acquisition_rate"]) == (4, 1, Decimal("0.3333"))
    assert (total["revenue"], total["previous_revenue"], total["revenue_change"]) == (180, 140, 40)
    assert total["revenue_change_share"] == Decimal("0.2857")  # 40 / 140
    # June's active customers 1, 2 and 5; only 1 bought again in July (5 is gone)
    assert (total["previous_active_customers"], total["retained_customers"], total["retention_rate"]) == (
        3,
        1,
        Decimal("0.3333"),
    )
    assert total["previous_period_end"] == date(2025, 7, 1)

    eu = _pick(rows, grouping_level="region", label="EU")  # 1 and 2, both EU in June too
    assert (eu["revenue"], eu["previous_revenue"], eu["revenue_change_share"], eu["retention_rate"]) == (
        100,
        100,
        0,
        Decimal("0.5000"),
    )
    assert eu["acquisition_rate"] == 0
    us = _pick(rows, grouping_level="region", label="US")  # July: 3 (new); June: 4 and 5 (grouped by June's region)
    assert (us["revenue"], us["previous_revenue"], us["revenue_change"], us["revenue_change_share"]) == (
        50,
        40,
        10,
        Decimal("0.2500"),
    )
    assert us["acquisition_rate"] is None  # every US customer is new: no base to grow from
    assert (us["previous_active_customers"], us["retained_customers"], us["retention_rate"]) == (1, 0, 0)
    none = _pick(rows, grouping_level="region", label=None)  # customer 4 has no region in July
    assert (none["revenue"], none["previous_revenue"], none["revenue_change_share"], none["retention_rate"]) == (
        30,
        0,
        None,
        None,
    )

    regular = _pick(rows, grouping_level="crm_segment", label="regular")  # July 2 and 4; June 2, 4 and 5
    assert (regular["revenue"], regular["previous_revenue"], regular["revenue_change"]) == (30, 60, -30)
    assert regular["revenue_change_share"] == Decimal("-0.5000")
    assert (regular["previous_active_customers"], regular["retained_customers"], regular["retention_rate"]) == (2, 0, 0)
    vip = _pick(rows, grouping_level="crm_segment", label="VIP")
    assert (vip["revenue_change"], vip["revenue_change_share"], vip["retention_rate"]) == (20, Decimal("0.2500"), 1)


@pytest.mark.parametrize("june", [False, date(2025, 6, 15)], ids=["not loaded", "month to date"])
def test_without_last_month_closed_nothing_is_compared(june):
    """Last month not loaded, or its last load a month to date (no fair base): no comparison."""
    with fresh_pg_db() as dsn:
        out = _stage(dsn, june=bool(june), june_end=june or date(2025, 7, 1))
    for r in out["period_comparison"]:
        assert r["previous_revenue"] is r["revenue_change"] is r["retention_rate"] is r["previous_period_end"] is None
    assert _pick(out["period_comparison"], grouping_level="total")["revenue"] == 180
    features = [r for r in out["engagement_correlations"] if r["analysis"] == "feature_usage"]
    assert [(r["bucket"], r["customers"]) for r in features] == [("all", 0)]


def test_sessions_by_weekday_and_hour_in_utc(staged):
    cells = {(r["weekday"], r["hour"]): (r["sessions"], r["session_minutes"]) for r in staged["engagement_heatmap"]}
    # Monday 09h: two sessions of 10 and 5 minutes; Monday 23h: 01:30 at +02:00; Sunday 23h: a
    # negative duration counts as a session without minutes; customer 9 is not a customer
    assert cells == {(1, 9): (2, 15), (1, 23): (1, 20), (7, 23): (1, 0)}


def test_interactions_by_type_department_priority_and_resolution(staged):
    rows = staged["interaction_summary"]
    total = _pick(rows, grouping_level="total")
    # customer 9's ticket is left out; satisfaction 11 is off the scale: (9 + 10 + 4) / 3
    assert (total["interactions"], total["customers"], total["avg_satisfaction"]) == (4, 2, Decimal("7.67"))
    assert (total["resolved_share"], total["escalated_share"]) == (Decimal("0.2500"), Decimal("0.2500"))
    assert total["avg_resolution_hours"] == Decimal("6.00")  # resolved 2 h and escalated 10 h
    security = _pick(rows, grouping_level="department", department="security")
    assert (security["interactions"], security["avg_satisfaction"], security["resolved_share"]) == (
        2,
        Decimal("9.50"),
        Decimal("0.5000"),
    )
    support = _pick(rows, grouping_level="department", department="support")
    assert (support["interactions"], support["escalated_share"], support["avg_resolution_hours"]) == (
        2,
        Decimal("0.5000"),
        Decimal("10.00"),
    )
    assert (
        _pick(rows, grouping_level="department+priority", department="security", priority="critical")["interactions"]
        == 1
    )
    assert _pick(rows, grouping_level="department+priority", department="support", priority=None)["interactions"] == 2
    by_resolution = {
        r["resolution_status"]: (r["interactions"], r["avg_satisfaction"])
        for r in rows
        if r["grouping_level"] == "resolution_status"
    }
    assert by_resolution == {
        "resolved": (1, Decimal("9.00")),
        "false_positive": (1, Decimal("10.00")),
        "escalated": (1, Decimal("4.00")),
        "open": (1, None),
    }
    assert (
        _pick(rows, grouping_level="interaction_type+department", interaction_type="ticket", department="security")[
            "interactions"
        ]
        == 2
    )


def test_the_tables_of_association(staged):
    rows = staged["engagement_correlations"]

    def analysis(name: str) -> dict[str, dict]:
        return {r["bucket"]: r for r in rows if r["analysis"] == name}

    activity = analysis("activity_decile")
    # four customers with sessions, by logins: 2 (0), 4 (1), 3 (3), 1 (10); the decile of a value
    # starts at its first position: 1 + floor(10 x (rank - 1) / 4) = 1, 3, 6, 8
    assert [(b, r["mean_value"], r["mean_revenue"]) for b, r in sorted(activity.items()) if b != "all"] == [
        ("01", 0, 0),
        ("03", 1, 30),
        ("06", 3, 50),
        ("08", 10, 100),
    ]
    # retention: of the bucket's customers active in June, the share active again in July
    assert activity["01"]["retention_rate"] == 0  # customer 2 bought in June, not in July
    assert activity["03"]["retention_rate"] is None  # customer 4 bought nothing in June
    assert activity["08"]["retention_rate"] == 1
    assert activity["all"]["retention_rate"] == Decimal("0.5000")  # 1 of customers 1 and 2
    r = statistics.correlation([10, 0, 3, 1], [100, 0, 50, 30])
    assert activity["all"]["correlation"] == Decimal(str(round(r, 4)))
    assert activity["all"]["correlated_with"] == "revenue"

    support = analysis("support_contacts")  # customers 1 (2 contacts, 9) and 2 (1 contact, 4)
    assert {b: r["mean_satisfaction"] for b, r in support.items()} == {
        "1": Decimal("4.00"),
        "2": Decimal("9.00"),
        "all": Decimal("6.50"),
    }
    assert support["all"]["correlation"] == 1  # two points on a rising line

    features = analysis("feature_usage")  # June's active: 1 (4 features, bought again), 2 (1), 5 (2)
    assert {b: (r["customers"], r["retention_rate"]) for b, r in features.items()} == {
        "1": (1, 0),
        "2": (1, 0),
        "4": (1, 1),
        "all": (3, Decimal("0.3333")),
    }
    r = statistics.correlation([4, 1, 2], [1, 0, 0])
    assert features["all"]["correlation"] == Decimal(str(round(r, 4)))
    assert [r["bucket_order"] for r in sorted(features.values(), key=lambda r: r["bucket_order"])] == [0, 2, 3, 5]


def test_security_operations_nps_and_mrr_in_the_kpis(staged):
    (k,) = staged["kpis"]
    # the security department's interactions of customers: customer 1's two tickets
    assert (k["security_incidents"], k["critical_incidents"], k["false_positives"]) == (2, 1, 1)
    assert (k["critical_incident_share"], k["false_positive_share"]) == (Decimal("0.5000"), Decimal("0.5000"))
    # answers on the 1-10 scale: 9, 10, 4 (11 is off it): promoters 2, detractors 1: 100 x (2 - 1) / 3
    assert (k["satisfaction_answers"], k["promoters"], k["detractors"], k["nps"]) == (3, 2, 1, Decimal("33.3"))
    assert (k["mrr"], k["mrr_at_risk"]) == (180, 18)  # the month's revenue and its revenue at risk
