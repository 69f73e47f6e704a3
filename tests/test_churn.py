"""Churn and health that predict: the scorecard file, the back-test against an independent
computation, and the churn model against the generator's ground truth.

- The scorecard: the package's file is the defaults; a deployment's file may change some keys; an
  invalid one is refused before any data moves, naming the key; a change of weight changes the
  health score as the README documents.
- The back-test model (sql/backtest.sql) on a fixture of published months: ROC AUC, calibration
  deciles, band lift and purchases equal to a computation in Python (dev/churn_eval.py, the
  Mann-Whitney statistic with average ranks, as scikit-learn's roc_auc_score).
- On generated customers with their lives: the BTYD probability of no purchase in 90 days ranks well
  above a constant and is calibrated (the gradient-boosted model: tests/test_churn_model.py).
"""

from __future__ import annotations

import json
import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import numpy as np
import psycopg
import pytest
from psycopg import sql
from psycopg.rows import dict_row

from dev.churn_eval import calibration, features, ground_truth, roc_auc
from include.customer_performance import metrics, scorecard
from include.customer_performance.config import settings
from include.customer_performance.period import add_months
from include.customer_performance.scorecard import ScorecardError
from include.customer_performance.sql import model
from include.customer_performance.staging import make_run, replace_table_as
from include.customer_performance.transform.aggregate import event_horizon, published_predictions
from tests.conftest import fresh_pg_db

# -- the scorecard -------------------------------------------------------------------------------


def test_the_package_scorecard_is_the_defaults():
    card = scorecard.load(settings().scorecard_config)
    assert card.values == metrics.DEFAULTS
    assert card.sql_params()["health_w_engagement"] == 0.35


def test_a_deployment_file_changes_only_its_keys(tmp_path):
    path = tmp_path / "card.json"
    path.write_text(json.dumps({"health": {"bands": {"green": 80}}, "churn": {"horizon_days": 180}}))
    card = scorecard.load(path)
    assert card.get("health.bands.green") == 80 and card.get("health.bands.yellow") == 40.0
    assert card.get("churn.horizon_days") == 180 and card.get("risk.high_risk_churn") == 0.6


@pytest.mark.parametrize(
    ("content", "named"),
    [
        ({"health": {"weights": {"loyalty": 0.2}}}, "unknown key 'health.weights.loyalty'"),
        ({"health": {"weights": {"engagement": "0.35"}}}, 'health.weights.engagement must be a number from 0 to 1e+06'),
        ({"health": {"weights": {"engagement": -1}}}, "health.weights.engagement must be a number"),
        ({"risk": {"high_risk_churn": 1.5}}, "risk.high_risk_churn must be a number from 0 to 1, got 1.5"),
        ({"risk": {"high_risk_churn": True}}, "risk.high_risk_churn must be a number"),
        ({"churn": {"horizon_days": 365.5}}, "churn.horizon_days must be an integer"),
        ({"health": {"bands": {"green": 30}}}, "health.bands.yellow must not be above health.bands.green"),
        ({"engagement": {"weights": dict.fromkeys(metrics.DEFAULTS["engagement"]["weights"], 0)}}, "must not all be 0"),
        ({"risk": {"renewal_likely_churn": 0.7}}, "risk.renewal_likely_churn must not be above risk.high_risk_churn"),
        ({"segments": 0.05}, "segments must be a JSON object"),
        ([1, 2], "the file must be a JSON object"),
    ],
)  # fmt: skip
def test_an_invalid_scorecard_is_refused_naming_the_key(tmp_path, content, named):
    path = tmp_path / "card.json"
    path.write_text(json.dumps(content))
    with pytest.raises(ScorecardError) as err:
        scorecard.load(path)
    assert named in str(err.value) and str(path) in str(err.value)


def test_an_invalid_scorecard_stops_the_extracts_before_any_data_moves(tmp_path, monkeypatch):
    from include.customer_performance import pipeline
    from include.customer_performance.retry import plan
    from include.customer_performance.runbook import CONFIGURATION, classify

    path = tmp_path / "card.json"
    path.write_text("{ not json")
    monkeypatch.setenv("CUSTOMER_PERFORMANCE_SCORECARD_CONFIG", str(path))
    settings.cache_clear()
    try:
        cfg = settings()
        run = make_run(datetime(2025, 8, 1, 2), "scorecard_test", None, cfg.staging_schema)
        with pytest.raises(ScorecardError) as err:
            pipeline.check_configuration(run, cfg)  # the first thing each extract does
    finally:
        settings.cache_clear()
    assert classify(err.value) == CONFIGURATION
    policy = plan("extract_sales_db", cfg).policy
    from airflow.sdk import RetryAction

    assert policy.evaluate(err.value, 1, 3).action == RetryAction.FAIL  # not retried


def test_a_change_of_weight_changes_the_health_score_as_documented(tmp_path, monkeypatch):
    """Health = the weighted parts re-normalised over the present ones: with all the weight on
    engagement, every health score is the engagement score; bands follow the file's cut-offs."""
    from tests.test_metrics import RUN, compute_fixture

    path = tmp_path / "card.json"
    weights = {"engagement": 1, "retention": 0, "satisfaction": 0, "support": 0}
    path.write_text(json.dumps({"health": {"weights": weights, "bands": {"green": 90, "yellow": 50}}}))
    monkeypatch.setenv("CUSTOMER_PERFORMANCE_SCORECARD_CONFIG", str(path))
    settings.cache_clear()
    try:
        with fresh_pg_db() as dsn:
            compute_fixture(dsn)
            with psycopg.connect(dsn, row_factory=dict_row) as conn:
                rows = conn.execute(sql.SQL("SELECT * FROM {}").format(RUN.table("customer_metrics"))).fetchall()
    finally:
        settings.cache_clear()
    assert rows
    for r in rows:
        assert r["health_score"] == r["engagement_score"]
        band = "green" if r["health_score"] >= 90 else "yellow" if r["health_score"] >= 50 else "red"
        assert r["health_band"] == band
        # with only engagement weighed, the weakest part is engagement
        assert r["risk_driver"].startswith(("no login", "engagement"))


# -- the back-test -------------------------------------------------------------------------------

JULY = make_run(datetime(2025, 8, 1, 2), "backtest_test", None, "cp_staging")


def _published_fixture(seed: int = 5, customers: int = 400):
    """April to June as their month-close runs published them, and July's purchases: churn
    probabilities with ties, bands, expected purchases, purchase counts related to the churn."""
    rnd = random.Random(seed)
    more = random.Random(seed + 1)  # the figures added since (BTYD, P(alive), the save list, first purchases)
    published, july = [], []

    def first_day(month: date, bought: int) -> datetime | None:
        days = (add_months(month, 1) - month).days
        return datetime(month.year, month.month, 1 + more.randrange(days), 9, tzinfo=UTC) if bought else None

    for c in range(1, customers + 1):
        lapsing = rnd.random()  # how likely this customer is to buy nothing in a month
        for month in (date(2025, 4, 1), date(2025, 5, 1), date(2025, 6, 1)):
            p = min(max(lapsing + rnd.uniform(-0.1, 0.1), 0), 1)
            p = round(p, 1) if c % 3 else round(p, 3)  # ties, and distinct values
            band = "red" if p > 0.7 else "yellow" if p > 0.3 else "green"
            bought = 0 if rnd.random() < p else rnd.randint(1, 4)
            # the baselines' figures: days since the last purchase (noisy, more for a lapsing
            # customer; ties), a health score (noisy, lower), one customer in 40 without one
            recency = int(120 * lapsing + rnd.uniform(-40, 40)) // 5 * 5
            health = None if c % 40 == 0 else round(100 * (1 - lapsing) + rnd.uniform(-30, 30), 1)
            # sales, and the days they fell on (fewer: two on one day are one purchase day)
            published.append(
                (
                    month,
                    c,
                    p,
                    band,
                    round(2 * (1 - p), 3),
                    round(6 * (1 - p), 3),
                    bought,
                    (bought + 1) // 2,
                    recency,
                    health,
                    round(min(max(lapsing + more.uniform(-0.3, 0.3), 0), 1), 3),  # the BTYD probability
                    round(min(max(1 - 0.8 * lapsing + more.uniform(-0.2, 0.2), 0), 1), 3),  # P(alive)
                    "save" if p >= 0.6 and c % 4 == 0 else None,
                    first_day(month, bought),
                    None if c % 7 == 0 else round(more.uniform(5, 60), 1),  # the usual gap between purchases
                    1 + int(more.random() ** 2 * 20),  # lifetime purchases
                    round(bought * 37.5, 2),  # revenue
                    round(24 * (1 - p), 3),  # expected purchases in 12 months
                    round(24 * (1 - p) * (20 + c % 13), 2),  # the CLV: a purchase day worth 20 to 32
                    None if c % 9 == 0 else c % 11,  # days since the last login (none on record for some)
                )
            )
        sales = 0 if rnd.random() < published[-1][2] else rnd.randint(1, 3)
        july.append((c, sales, (sales + 1) // 2, first_day(date(2025, 7, 1), sales), sales * 37.5))
    # a new customer: nothing was predicted for it
    july += [(customers + 1, 5, 3, datetime(2025, 7, 2, tzinfo=UTC), 187.5)]
    return published, july


def _stage_backtest(
    dsn: str, complete_month: bool = True, missing: date | None = None
) -> tuple[list, list, list[dict]]:
    published, july = _published_fixture()
    published = [row for row in published if row[0] != missing]
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("CREATE SCHEMA cp_staging; CREATE SCHEMA analytics")
        cur.execute(
            "CREATE TABLE analytics.customer_performance (report_month date, period_end date, customer_id bigint,"
            " churn_probability numeric, health_band text, churn_method text, expected_purchases_1m numeric,"
            " expected_purchases_3m numeric, transaction_count bigint, purchase_days bigint,"
            " days_since_last_purchase bigint, health_score numeric, churn_probability_btyd numeric,"
            " p_alive numeric, churn_list text, first_purchase timestamptz, usual_gap_days numeric,"
            " lifetime_purchases bigint, revenue numeric, expected_purchases_12m numeric, clv_12m numeric,"
            " days_since_last_login bigint)"
        )
        cur.executemany(
            "INSERT INTO analytics.customer_performance VALUES"
            " (%s, (%s + interval '1 month')::date, %s, %s, %s, 'mbg_nbd', %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,"
            " %s, %s, %s, %s, %s)",
            [(r[0], *r) for r in published],
        )
        # a month-to-date load of July is never a prediction to score
        cur.execute("INSERT INTO analytics.customer_performance VALUES ('2025-07-01', '2025-07-15', 1, 0.9)")
        cur.execute(
            sql.SQL(
                "CREATE TABLE {} (customer_id bigint, transaction_count bigint, purchase_days bigint,"
                " first_purchase timestamptz, revenue numeric)"
            ).format(JULY.table("customer_metrics"))
        )
        cur.executemany(
            sql.SQL("INSERT INTO {} VALUES (%s, %s, %s, %s, %s)").format(JULY.table("customer_metrics")), july
        )
        params = {
            **JULY.period.as_params(),
            "backtest_horizons": list(metrics.BACKTEST_HORIZONS_MONTHS),
            "complete_month": complete_month,
            **event_horizon(90),
            "active_days": 7,
            "active_gaps": 1.5,
            "active_login_days": 7,
            "fallback_gap_days": 30.0,
        }
        select = model("backtest", JULY, published=published_predictions(cur, JULY, "analytics"))
        replace_table_as(cur, JULY.table("backtest"), select, params)
        cur.execute(sql.SQL("SELECT * FROM {}").format(JULY.table("backtest")))
        cols = [d.name for d in cur.description]
        rows = [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
    return published, july, rows


def test_the_backtest_equals_an_independent_computation():
    """Worked out here from the fixture: at 1 month, "no purchase in the next month" for the health
    bands and the expected purchases (the churn probability is not scored there: its event is 90
    days); at 3 months, the churn probability's own event, no completed purchase in the 90 days
    after April (1 May to 29 July: a first purchase on 30 or 31 July falls outside), ranked by it and
    by the baselines on all customers and on those active at the prediction, the calibration
    deciles and the save list's precision."""
    with fresh_pg_db() as dsn:
        published, july, rows = _stage_backtest(dsn)
    event_end = datetime(2025, 5, 1, tzinfo=UTC) + timedelta(days=90)
    for h, predicted in ((1, date(2025, 6, 1)), (3, date(2025, 4, 1))):
        # (c, sales, days, first, revenue)
        after = [(r[1], r[6], r[7], r[13], r[16]) for r in published if predicted < r[0]]
        after += july
        sales, days, revenue, inside = {}, {}, {}, set()
        for c, n, d, first, money in after:
            sales[c] = sales.get(c, 0) + n
            days[c] = days.get(c, 0) + d
            revenue[c] = revenue.get(c, 0) + money
            if first is not None and first < event_end:
                inside.add(c)
        preds = sorted((r[1], r) for r in published if r[0] == predicted)
        # at 3 months the 90 days after April; at 1, no sale at all in June
        churned = [c not in inside if h == 3 else sales.get(c, 0) == 0 for c, _ in preds]
        got = {(r["measure"], r["bucket"]): r for r in rows if r["horizon_months"] == h}
        o = got["overall", "all"]
        assert o["predicted_month"] == predicted and o["customers"] == len(preds) == 400
        assert o["churned"] == sum(churned)
        e = [r[4] if h == 1 else r[5] for _, r in preds]
        assert float(o["expected_purchases"]) == pytest.approx(sum(e), abs=0.05)
        assert o["actual_purchases"] == sum(days.get(c, 0) for c, _ in preds)  # purchase days, the model's unit
        # the CLV's value over the horizon: the expected purchase days x the CLV's value of one
        assert float(o["expected_revenue"]) == pytest.approx(
            sum((r[4] if h == 1 else r[5]) * r[18] / r[17] for _, r in preds if r[17]), abs=0.01
        )
        assert float(o["actual_revenue"]) == pytest.approx(sum(revenue.get(c, 0) for c, _ in preds))
        assert float(o["actual_revenue"]) > 0
        rate = {
            b: np.mean([ch for (_, r), ch in zip(preds, churned, strict=True) if r[3] == b])
            for b in ("green", "yellow", "red")
        }
        assert float(got["health_band", "red"]["lift_over_green"]) == pytest.approx(
            rate["red"] / rate["green"], abs=0.01
        )
        assert got["health_band", "green"]["lift_over_green"] == Decimal("1.00")

        # the expected purchases against those made, per frequency group (lifetime purchases then)
        def group(n: int) -> str:
            return "1" if n <= 1 else "2-3" if n <= 3 else "4-9" if n <= 9 else "10+"

        for g in ("1", "2-3", "4-9", "10+"):
            members = [(c, r) for c, r in preds if group(r[15]) == g]
            row = got["frequency_group", g]
            assert row["customers"] == len(members) > 0
            assert float(row["expected_purchases"]) == pytest.approx(
                sum(r[4] if h == 1 else r[5] for _, r in members), abs=0.05
            )
            assert row["actual_purchases"] == sum(days.get(c, 0) for c, _ in members)
            assert float(row["actual_revenue"]) == pytest.approx(sum(revenue.get(c, 0) for c, _ in members))
            assert row["auc"] is None and row["lift_over_green"] is None
        scored = ("auc", "recency_auc", "health_auc", "btyd_auc", "active_auc", "active_recency_auc")
        if h == 1:
            assert all(o[k] is None for k in (*scored, "mean_churn_probability", "save_precision"))
            assert not any(m == "churn_decile" for m, _ in got)
            continue
        scores = [r[2] for _, r in preds]
        assert float(o["auc"]) == pytest.approx(roc_auc(scores, churned), abs=1e-4)
        assert 0.6 < float(o["auc"]) < 1  # the fixture's purchases do follow its predictions
        # the baselines on the same event and customers: recency alone, the BTYD probability, the
        # health score alone (lower is riskier; a customer without one left out)
        assert float(o["recency_auc"]) == pytest.approx(roc_auc([r[8] for _, r in preds], churned), abs=1e-4)
        assert float(o["btyd_auc"]) == pytest.approx(roc_auc([r[10] for _, r in preds], churned), abs=1e-4)
        with_health = [(-r[9], ch) for (_, r), ch in zip(preds, churned, strict=True) if r[9] is not None]
        assert float(o["health_auc"]) == pytest.approx(roc_auc(*zip(*with_health, strict=True)), abs=1e-4)
        # among the customers still active at the prediction (silent for at most 1.5 usual gaps, or 7
        # days, and a login within 7 days, or none on record)
        active = [
            (r, ch)
            for (_, r), ch in zip(preds, churned, strict=True)
            if r[8] <= max(1.5 * (30.0 if r[14] is None else r[14]), 7) and (r[19] is None or r[19] <= 7)
        ]
        assert 50 < len(active) < 400
        assert float(o["active_auc"]) == pytest.approx(
            roc_auc([r[2] for r, _ in active], [ch for _, ch in active]), abs=1e-4
        )
        assert float(o["active_recency_auc"]) == pytest.approx(
            roc_auc([r[8] for r, _ in active], [ch for _, ch in active]), abs=1e-4
        )
        saved = [ch for (_, r), ch in zip(preds, churned, strict=True) if r[12] == "save"]
        assert o["save_list"] == len(saved) > 10
        assert float(o["save_precision"]) == pytest.approx(np.mean(saved), abs=1e-4)
        assert all(r[k] is None for r in rows if r["measure"] != "overall" for k in scored)
        # calibration: deciles by predicted churn (ties by customer), as ntile(10) splits them
        order = sorted(range(len(preds)), key=lambda i: (scores[i], preds[i][0]))
        expected_deciles = calibration([scores[i] for i in order], [churned[i] for i in order])
        for k, (n, mean_p, share) in enumerate(expected_deciles, start=1):
            d = got["churn_decile", f"{k:02d}"]
            assert d["customers"] == n
            assert float(d["mean_churn_probability"]) == pytest.approx(mean_p, abs=1e-4)  # rounded to 4 places
            assert float(d["observed_churn_rate"]) == pytest.approx(share, abs=1e-4)
    # the event's edge: July first purchases on the 30th or 31st are after it
    late = {c for c, n, _, f, _ in july if f is not None and f >= event_end}
    assert late and any(c in late for c in (r[1] for r in published if r[0] == date(2025, 4, 1)))


def test_a_month_to_date_run_or_a_gap_scores_nothing():
    with fresh_pg_db() as dsn:
        *_, rows = _stage_backtest(dsn, complete_month=False)
    assert rows == []
    with fresh_pg_db() as dsn:  # May not published: the 3-month horizon cannot be scored
        *_, rows = _stage_backtest(dsn, missing=date(2025, 5, 1))
    assert {r["horizon_months"] for r in rows} == {1}


# -- the churn model against the ground truth ------------------------------------------------------


@pytest.fixture(scope="module")
def lives(tmp_path_factory):
    """3,000 customers with two years of lives, and July 2025's lifetime features from the sales DB."""
    import uuid

    from dev.stack import MYSQL, Stack, pg_dsn

    s = Stack(f"cp_l{uuid.uuid4().hex[:8]}", tmp_path_factory.mktemp("lives"))
    s.create_databases()
    try:
        planted = s.generate(3000, "2025-07", seed=11)
        feats = features({**MYSQL, "db": s.sales_db}, date(2025, 8, 1))
        with psycopg.connect(pg_dsn(s.customer_db)) as conn:
            truth = {c: event for c, (event, _, _) in ground_truth(conn, date(2025, 8, 1)).items()}
            sessions = conn.execute(
                # sessions in each customer's lead before it drops out, and in as long before that, over
                # the customers with a lead of at least 30 days
                "SELECT count(*) FILTER (WHERE a.session_start >= t.dropout_at - t.lead_days * interval '1 day'),"
                " count(*) FILTER (WHERE a.session_start < t.dropout_at - t.lead_days * interval '1 day')"
                " FROM ground_truth AS t JOIN customer_activity AS a USING (customer_id)"
                " WHERE t.dropout_at BETWEEN '2025-03-01' AND '2025-07-31' AND t.lead_days >= 30"
                " AND t.registration_date < t.dropout_at - 2 * t.lead_days * interval '1 day'"
                " AND a.session_start >= t.dropout_at - 2 * t.lead_days * interval '1 day'"
                " AND a.session_start < t.dropout_at"
            ).fetchone()
        yield planted, feats, truth, sessions
    finally:
        s.drop_databases()


def test_the_generator_gives_customers_lives(lives):
    planted, feats, truth, (fading, before) = lives
    life = planted["lives"]
    assert life["buyers"] > 2000 and 0.2 < life["gone_at_period_end"] / life["buyers"] < 0.8
    assert life["dropping_within_90_days"] > 0 and 0 < life["no_purchase_next_90_days"] < life["buyers"]
    # logins fade over each customer's lead before it drops out
    assert fading < 0.75 * before
    assert len(set(feats) & set(truth)) > 0.9 * len(truth)


def test_the_btyd_probability_of_no_purchase_ranks_and_is_calibrated(lives):
    """The BTYD figures (the fallback of the published probability, and one of its inputs) against
    the event they predict: no completed purchase in the 90 days after July. The lives are not the
    BTYD model's own process, so it is not asked to beat recency (the gradient-boosted model is,
    tests/test_churn_model.py and make bench-churn); it must rank well above a constant, and the
    MBG/NBD's probability must be calibrated."""
    from dev.churn_eval import calibration_error
    from include.customer_performance.churn import DEFAULT_SETTINGS, mbg_nbd, recency_ratio

    _, feats, truth, _ = lives
    ids = sorted(c for c in feats if c in truth)  # not the sales of customers the database does not know
    f, r, t = (np.array([feats[c][i] for c in ids]) for i in range(3))
    event = [truth[c] for c in ids]
    model = mbg_nbd(f, r, t, DEFAULT_SETTINGS).no_purchase
    fallback_auc = roc_auc(recency_ratio(f, r, t, DEFAULT_SETTINGS).no_purchase, event)
    constant_auc = roc_auc(np.full(len(ids), 0.5), event)
    assert constant_auc == 0.5
    assert fallback_auc > constant_auc + 0.2
    assert roc_auc(model, event) >= 0.8
    assert calibration_error(model, event) < 0.1


def test_only_a_month_that_has_ended_is_back_tested():
    """A month-close run scores the back-test; a month-to-date run does not, nor does a manual
    whole-month run of a month that is not over yet (its purchases are half a month's)."""
    closing = make_run(datetime(2025, 8, 1, 2), "scheduled__x", None, "cp_staging")
    to_date = make_run(datetime(2025, 7, 15, 2), "scheduled__y", None, "cp_staging")
    early = make_run(datetime(2025, 7, 15, 9), "manual__z", "2025-07", "cp_staging")
    backfill = make_run(datetime(2026, 12, 6, 9), "manual__w", "2025-07", "cp_staging")
    assert closing.month_closed and backfill.month_closed
    assert not to_date.month_closed and not early.month_closed
