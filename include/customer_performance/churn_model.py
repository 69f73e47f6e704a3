"""The published churn probability: the probability of no completed purchase in the next
``churn.no_purchase_days`` (90), from gradient-boosted trees (LightGBM) trained in each run on the
customers' own history, with each high-risk customer's reason in words from the model's own
per-customer contributions.

Training rows are what the pipeline published at earlier month ends (``customer_performance``,
closed months): each customer's state then (recency, frequency, order value, tenure, the BTYD
figures, the month's purchases and refunds, logins, minutes, features used, CRM contacts, tickets,
escalations and satisfaction, and their change from the month before), labelled by what it did
in the ``no_purchase_days`` after that month end, read from the months published after it (each
month's first completed purchase) and this run's. Only months whose outcome is complete by this
run's period end are used (matured labels); no row sees a day after its own month end. The latest
of them is held out: the model is trained on the earlier ones and must rank the held-out month's
event better than the BTYD probability of no purchase (churn.py) and plain recency do, else the
BTYD probability is published. It is then trained again on every matured month (as many trees as the held-out
month chose) and scores this run's customers from the same features of this run's
``customer_metrics``.

Where the history is too short (fewer than two matured months, fewer than ``min_training_rows``
rows or one class empty) or the model does not beat them on the held-out month, the
run publishes the BTYD probability, logs why, and the run record says so (``pipeline_runs.
churn_model``). Why LightGBM and not scikit-learn's gradient boosting: the same trees in a fraction
of the time and memory at a million rows, missing values (a source silent for the month) handled
natively, and exact per-customer contributions (TreeSHAP, ``pred_contrib``) from which the reasons
are written, in one small wheel.
"""

from __future__ import annotations

import logging
import math
import time
from datetime import UTC, date, datetime, timedelta

import numpy as np
from psycopg import sql

from include.customer_performance.churn import ChurnSettings
from include.customer_performance.period import add_months

log = logging.getLogger(__name__)

# The features: each an expression over a month's published row ``c`` and the month before's ``p``
# (columns of customer_metrics), with %(last_day)s the month's last day.
FEATURES: dict[str, str] = {
    "days_since_last_purchase": "c.days_since_last_purchase",
    "lifetime_purchases": "c.lifetime_purchases",
    "tenure_days": "%(last_day)s::date - (c.lifetime_first_purchase AT TIME ZONE 'UTC')::date",
    "silence_over_usual_gap": (
        "c.days_since_last_purchase::float8 / nullif((%(last_day)s::date"
        " - (c.lifetime_first_purchase AT TIME ZONE 'UTC')::date)::float8 / c.lifetime_purchases, 0)"
    ),
    "lifetime_order_value": "greatest(c.lifetime_revenue, 0) / c.lifetime_purchases",
    "purchase_days": "c.purchase_days",
    "previous_purchase_days": "p.purchase_days",
    "revenue": "c.revenue",
    "refunds": "c.refunds",
    "churn_probability_btyd": "c.churn_probability_btyd",
    "p_alive": "c.p_alive",
    "expected_purchases_3m": "c.expected_purchases_3m",
    "login_count": "c.login_count",
    "previous_login_count": "p.login_count",
    "session_minutes": "c.session_minutes",
    "features_used": "c.features_used",
    "days_since_last_login": "c.days_since_last_login",
    "engagement_score": "c.engagement_score",
    "interaction_count": "c.interaction_count",
    "previous_interaction_count": "p.interaction_count",
    "ticket_count": "c.ticket_count",
    "escalations": "round(c.escalation_rate * c.interaction_count)",
    "avg_satisfaction": "c.avg_satisfaction",
    "previous_satisfaction": "p.avg_satisfaction",
}
NAMES = tuple(FEATURES)
PARAMS = {
    "objective": "binary",
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_data_in_leaf": 100,
    "feature_fraction": 0.9,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "num_threads": 2,
    "deterministic": True,
    "force_row_wise": True,
    "seed": 7,
    "verbosity": -1,
}
MAX_ROUNDS = 400


def _published(schema: str) -> sql.Composable:
    return sql.Identifier(schema, "customer_performance")


def closed_months(cur, schema: str, before: date) -> list[date]:
    """The months published closed (period_end the month's end) before ``before``, oldest first."""
    cur.execute(
        sql.SQL(
            "SELECT DISTINCT report_month FROM {} WHERE report_month < %s"
            " AND period_end = (report_month + interval '1 month')::date ORDER BY 1"
        ).format(_published(schema)),
        (before,),
    )
    return [r[0] for r in cur.fetchall()]


def _month_rows(schema: str, month: date) -> sql.Composable:
    return sql.SQL("(SELECT * FROM {} WHERE report_month = {} AND period_end = {})").format(
        _published(schema), sql.Literal(month), sql.Literal(add_months(month, 1))
    )


def _feature_query(current: sql.Composable, previous: sql.Composable, sample: int) -> sql.Composed:
    """Per customer who has bought: customer_id and the features, of the customers whose id's hash
    falls in the first ``sample`` of 1000 (a deterministic sample; 1000 keeps everyone)."""
    cols = sql.SQL(", ").join(sql.SQL(f"({expr})::float8") for expr in FEATURES.values())
    keep = (
        sql.SQL("")
        if sample >= 1000
        else sql.SQL(" AND abs(hashint8(c.customer_id) %% 1000) < {}").format(sql.Literal(sample))
    )
    return sql.SQL(
        "SELECT c.customer_id, {} FROM {} AS c LEFT JOIN {} AS p USING (customer_id)"
        " WHERE c.lifetime_purchases > 0{} ORDER BY c.customer_id"
    ).format(cols, current, previous, keep)


def _fetch(cur, query: sql.Composable, last_day: date, chunk: int = 100_000) -> tuple[np.ndarray, np.ndarray]:
    """The ids and the feature matrix of ``query``, through a server-side cursor a chunk at a time:
    a million customers' features are 200 MB as floats, several times that as Python rows."""
    parts = []
    with cur.connection.cursor(name="churn_features") as named:
        named.execute(query, {"last_day": last_day})
        while rows := named.fetchmany(chunk):
            parts.append(np.array(rows, dtype=float))
    if not parts:
        return np.empty(0, dtype=np.int64), np.empty((0, len(NAMES)))
    data = np.vstack(parts)
    return data[:, 0].astype(np.int64), data[:, 1:]


def _previous(schema: str, month: date, published: set[date]) -> sql.Composable:
    prev = add_months(month, -1)
    if prev in published:
        return _month_rows(schema, prev)
    return sql.SQL("(SELECT NULL::bigint AS customer_id, {} WHERE false)").format(
        sql.SQL(", ").join(
            sql.SQL("NULL::numeric AS {}").format(sql.Identifier(c))
            for c in ("purchase_days", "login_count", "interaction_count", "avg_satisfaction")
        )
    )


def _bought(cur, schema: str, month: date, until: datetime, current: sql.Composable, current_month: date) -> set[int]:
    """The customers with a completed purchase after ``month``'s end and before ``until``, from
    the closed months published after it and this run's."""
    cur.execute(
        sql.SQL(
            "SELECT customer_id FROM {} WHERE report_month > %(m)s AND report_month < %(cm)s"
            " AND period_end = (report_month + interval '1 month')::date AND first_purchase < %(until)s"
            " UNION SELECT customer_id FROM {} WHERE first_purchase < %(until)s"
        ).format(_published(schema), current),
        {"m": month, "cm": current_month, "until": until},
    )
    return {r[0] for r in cur.fetchall()}


def matured(months: list[date], current_month: date, period_end: date, days: int) -> list[date]:
    """The published months whose outcome over the next ``days`` is known by ``period_end``: every
    month between them and this one published closed."""
    published = set(months)
    out = []
    for m in months:
        if add_months(m, 1) + timedelta(days=days) > period_end:
            continue
        between, k = [], add_months(m, 1)
        while k < current_month:
            between.append(k)
            k = add_months(k, 1)
        if all(b in published for b in between):
            out.append(m)
    return out


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float | None:
    """Mann-Whitney ROC AUC with average ranks for ties; None when a class is empty."""
    from scipy.stats import rankdata

    y = labels.astype(bool)
    pos, neg = int(y.sum()), int((~y).sum())
    if not pos or not neg:
        return None
    r = rankdata(scores)
    return float((r[y].sum() - pos * (pos + 1) / 2) / (pos * neg))


def _fallback(reason: str, summary: dict) -> dict:
    log.info("churn model: %s; publishing the BTYD probability of no purchase", reason)
    return {**summary, "method": "btyd", "fallback_reason": reason}


def train_and_score(conn, run, schema: str, cfg: ChurnSettings, customer_metrics: sql.Composable) -> dict:
    """Train on the published history, check against the BTYD probability on the held-out month,
    score this run's customers. Returns what the run record keeps and, when the model is used,
    ``scores``: (customer ids, probabilities, reasons)."""
    t0 = time.monotonic()
    current_month, period_end = run.period.report_month, run.period.end
    summary: dict = {"event": f"no completed purchase in the {cfg.no_purchase_days} days after the period"}
    with conn.cursor() as cur:
        cur.execute("SELECT to_regclass(%s)", (f"{schema}.customer_performance",))
        months = closed_months(cur, schema, current_month) if cur.fetchone()[0] else []
        published = set(months)
        ready = matured(months, current_month, period_end, cfg.no_purchase_days)[-cfg.training_months :]
        summary["training_months"] = [m.isoformat() for m in ready]
        if len(ready) < 2:
            return _fallback(f"{len(ready)} published month(s) with a known outcome (needs 2)", summary)
        # sample so that the training rows stay under max_training_rows
        cur.execute(
            sql.SQL("SELECT count(*) FROM {} WHERE lifetime_purchases > 0").format(customer_metrics),
        )
        buyers = cur.fetchone()[0]
        sample = max(1, min(1000, math.floor(1000 * cfg.max_training_rows / max(buyers * len(ready), 1))))
        xs, ys = [], []
        for m in ready:
            until = datetime.combine(add_months(m, 1) + timedelta(days=cfg.no_purchase_days), datetime.min.time())
            ids, x = _fetch(
                cur,
                _feature_query(_month_rows(schema, m), _previous(schema, m, published), sample),
                add_months(m, 1) - timedelta(days=1),
            )
            bought = _bought(cur, schema, m, until.replace(tzinfo=UTC), customer_metrics, current_month)
            xs.append(x)
            ys.append(np.array([c not in bought for c in ids.tolist()]))
    rows = sum(len(y) for y in ys)
    summary["training_rows"] = rows
    train_x, train_y = np.vstack(xs[:-1]), np.concatenate(ys[:-1])
    hold_x, hold_y = xs[-1], ys[-1]
    if len(train_y) < cfg.min_training_rows or train_y.all() or not train_y.any() or hold_y.all() or not hold_y.any():
        return _fallback(f"{len(train_y)} training rows (needs {cfg.min_training_rows}, both outcomes)", summary)

    import lightgbm as lgb

    data = lgb.Dataset(train_x, train_y.astype(float), feature_name=list(NAMES), free_raw_data=False)
    valid = lgb.Dataset(hold_x, hold_y.astype(float), reference=data)
    booster = lgb.train(PARAMS, data, MAX_ROUNDS, valid_sets=[valid], callbacks=[lgb.early_stopping(30, verbose=False)])
    rounds = max(booster.best_iteration, 1)
    held = booster.predict(hold_x, num_iteration=rounds)
    col = NAMES.index
    auc = {
        "model": roc_auc(held, hold_y),
        "btyd": roc_auc(np.nan_to_num(hold_x[:, col("churn_probability_btyd")], nan=1.0), hold_y),
        "recency": roc_auc(np.nan_to_num(hold_x[:, col("days_since_last_purchase")], nan=1e6), hold_y),
    }
    summary["holdout"] = {
        "month": ready[-1].isoformat(),
        "customers": len(hold_y),
        "event_rate": round(float(hold_y.mean()), 4),
        **{f"{k}_auc": None if v is None else round(v, 4) for k, v in auc.items()},
    }
    summary["rounds"] = rounds
    # it must beat both: the BTYD probability it would replace and the days since the last purchase
    # (a month published before the BTYD columns existed has no BTYD probability to compare with)
    best = max((v for k, v in auc.items() if k != "model" and v is not None), default=0.5)
    if auc["model"] is None or auc["model"] <= best:
        return _fallback(
            f"the model ranked the held-out month {ready[-1]:%Y-%m} at AUC {auc['model']}, not above the BTYD"
            f" probability's {auc['btyd']} and recency's {auc['recency']}",
            summary,
        )
    final = lgb.train(
        PARAMS, lgb.Dataset(np.vstack(xs), np.concatenate(ys).astype(float), feature_name=list(NAMES)), rounds
    )
    summary["training_seconds"] = round(time.monotonic() - t0, 2)
    t1 = time.monotonic()
    with conn.cursor() as cur:
        prev = _previous(schema, current_month, published)
        ids, x = _fetch(cur, _feature_query(customer_metrics, prev, 1000), period_end - timedelta(days=1))
    p = final.predict(x)
    gain = final.feature_importance("gain")
    summary["top_features"] = [NAMES[i] for i in np.argsort(-gain)[:6]]
    summary["scoring_seconds"] = round(time.monotonic() - t1, 2)
    summary["method"] = "gradient_boosting"
    summary["scores"] = (ids, p, final, x)
    log.info(
        "churn model: trained on %s rows of %s, held-out %s AUC %.3f (BTYD %.3f, recency %.3f), %s trees",
        rows,
        ", ".join(summary["training_months"]),
        ready[-1],
        auc["model"],
        auc["btyd"] or float("nan"),
        auc["recency"] or float("nan"),
        rounds,
    )
    return summary


# ------------------------------------------------------------------------------ reasons in words


def _n(v: float) -> int:
    return int(round(v))


def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def _usual_purchase_gap(f: dict) -> str:
    """The customer's rhythm: its own gap between purchase days when known (``usual_gap``), else its
    days as a customer over its purchases."""
    gap = f.get("usual_gap")
    if gap is None:
        purchases, tenure = f["lifetime_purchases"], f["tenure_days"]
        gap = tenure / purchases if purchases >= 2 and tenure > 0 else math.nan
    return "" if math.isnan(gap) else f" (usually every {max(_n(gap), 1)})"


def _silence(f: dict) -> str | None:
    d = f["days_since_last_purchase"]
    if math.isnan(d):
        return None
    if f["lifetime_purchases"] <= 1:
        return f"one purchase only, {_plural(_n(d), 'day')} ago"
    return f"no purchase in {_plural(_n(d), 'day')}{_usual_purchase_gap(f)}"


def _logins(f: dict) -> str | None:
    now, before = f["login_count"], f["previous_login_count"]
    if math.isnan(now):
        return None
    if not math.isnan(before) and before > now:
        return f"{_plural(_n(now), 'login')} this month, down from {_n(before)}"
    return "no login this month" if now == 0 else f"only {_plural(_n(now), 'login')} this month"


def _last_login(f: dict) -> str | None:
    d, before = f["days_since_last_login"], f["previous_login_count"]
    if math.isnan(d):
        return "no login on record"
    usual = f" (usually every {max(_n(30 / before), 1)})" if not math.isnan(before) and before >= 1 else ""
    return f"no login in {_plural(_n(d), 'day')}{usual}"


def _contacts(f: dict) -> str | None:
    now, before = f["interaction_count"], f["previous_interaction_count"]
    if math.isnan(now) or now == 0:
        return None
    up = f", up from {_n(before)}" if not math.isnan(before) and before < now else ""
    return f"{_plural(_n(now), 'support contact')} this month{up}"


def _satisfaction(f: dict) -> str | None:
    now, before = f["avg_satisfaction"], f["previous_satisfaction"]
    if math.isnan(now):
        return None
    if not math.isnan(before) and before - now >= 1:
        return f"satisfaction fell from {before:.0f} to {now:.0f}"
    return f"satisfaction {now:.1f} of 10"


def _purchases_this_month(f: dict) -> str | None:
    now, before = f["purchase_days"], f["previous_purchase_days"]
    if not math.isnan(before) and before > now:
        return f"bought on {_plural(_n(now), 'day')} this month, down from {_n(before)}"
    return _silence(f)


PHRASES = {
    "days_since_last_purchase": _silence,
    "silence_over_usual_gap": _silence,
    "churn_probability_btyd": _silence,
    "p_alive": _silence,
    "expected_purchases_3m": _silence,
    "tenure_days": _silence,
    "lifetime_purchases": lambda f: (
        "one purchase only"
        if f["lifetime_purchases"] <= 1
        else f"{_n(f['lifetime_purchases'])} purchases in {_n(f['tenure_days'])} days"
    ),
    "lifetime_order_value": lambda f: f"small orders ({f['lifetime_order_value']:,.0f} on average)",
    "purchase_days": _purchases_this_month,
    "previous_purchase_days": _purchases_this_month,
    "revenue": _purchases_this_month,
    "refunds": lambda f: f"{f['refunds']:,.0f} refunded this month" if f["refunds"] > 0 else None,
    "login_count": _logins,
    "previous_login_count": _logins,
    "session_minutes": lambda f: (
        None
        if math.isnan(f["session_minutes"])
        else f"{_plural(_n(f['session_minutes']), 'minute')} in the product this month"
    ),
    "features_used": lambda f: (
        None if math.isnan(f["features_used"]) else f"{_plural(_n(f['features_used']), 'feature')} used this month"
    ),
    "days_since_last_login": _last_login,
    "engagement_score": lambda f: (
        None if math.isnan(f["engagement_score"]) else f"engagement {f['engagement_score']:.0f} of 100"
    ),
    "interaction_count": _contacts,
    "previous_interaction_count": _contacts,
    "ticket_count": lambda f: (
        f"{_plural(_n(f['ticket_count']), 'ticket')} this month" if f["ticket_count"] > 0 else None
    ),
    "escalations": lambda f: (
        f"{_plural(_n(f['escalations']), 'escalation')} this month" if f["escalations"] > 0 else None
    ),
    "avg_satisfaction": _satisfaction,
    "previous_satisfaction": _satisfaction,
}


def reasons(booster, x: np.ndarray, rows: np.ndarray, most: int = 2) -> list[str | None]:
    """For the customers at ``rows`` of ``x``: the features pushing their probability up the most
    (the model's own contributions, TreeSHAP), in words, up to ``most`` different phrases joined
    by "; ". None where nothing pushes it up."""
    out: list[str | None] = [None] * len(rows)
    if not len(rows):
        return out
    contrib = booster.predict(x[rows], pred_contrib=True)[:, : len(NAMES)]
    for i, (r, c) in enumerate(zip(rows.tolist(), contrib, strict=True)):
        f = dict(zip(NAMES, x[r].tolist(), strict=True))
        said: list[str] = []
        for j in np.argsort(-c):
            if c[j] <= 0 or len(said) == most:
                break
            phrase = PHRASES[NAMES[j]](f)
            if phrase and phrase not in said:
                said.append(phrase)
        out[i] = "; ".join(said) or None
    return out


def btyd_reasons(days_since: np.ndarray, purchase_days: np.ndarray, gap: np.ndarray) -> list[str | None]:
    """The BTYD probability's reason: its only inputs are the buying rhythm, so the silence against
    it (days since the last purchase, purchase days, the usual gap between them; NaN for one)."""
    return [
        _silence({"days_since_last_purchase": d, "lifetime_purchases": n, "usual_gap": g})
        for d, n, g in zip(days_since.tolist(), purchase_days.tolist(), gap.tolist(), strict=True)
    ]


# ------------------------------------------------------------------------------------- the lists


def still_active(
    since_purchase: np.ndarray, usual_gap: np.ndarray, since_login: np.ndarray, gaps: float, days: int, login_days: int
) -> np.ndarray:
    """Still active: silent since its last completed purchase for at most ``gaps`` times its usual
    gap between purchase days (risk.active_gaps; a one-time buyer's usual gap is the BTYD fallback's,
    30 days) or ``days`` (risk.active_days), whichever is longer, and in the product within the last
    ``login_days`` (risk.active_login_days: a customer that has stopped using it has most likely
    stopped, whatever its last purchase says). NaN since the last purchase: never bought; NaN since
    the last login: no login on record (or no activity source), judged by its purchases alone. In
    words: glossary.active_text."""
    limit = np.maximum(gaps * np.nan_to_num(usual_gap, nan=0.0), days)
    using = np.nan_to_num(since_login, nan=-np.inf) <= login_days
    return (np.nan_to_num(since_purchase, nan=np.inf) <= limit) & using


def lists(
    churn: np.ndarray, active: np.ndarray, value: np.ndarray, high_risk: float, save_size: int, win_back_size: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The two lists, as (expected loss, list name per customer or None, rank in its list or 0).

    - expected loss = value if kept x churn probability: what the customer is expected to take
      away over the CLV horizon;
    - save: still active (``active``), high risk (churn >= high_risk) and at least 1 to lose, the
      ``save_size`` with the largest expected loss;
    - win-back: high risk and no longer active (most likely gone already), the ``win_back_size``
      with the largest value if won back (value if kept).
    Ties by position (the customers come in id order)."""
    loss = value * churn
    name = np.full(len(churn), None, dtype=object)
    rank = np.zeros(len(churn), dtype=np.int64)
    risky = np.nan_to_num(churn, nan=0.0) >= high_risk
    save = np.flatnonzero(active & risky & (np.round(loss, 2) >= 1))
    top = save[np.argsort(-loss[save], kind="stable")][:save_size]
    gone = np.flatnonzero(~active & risky)
    back = gone[np.argsort(-value[gone], kind="stable")][:win_back_size]
    for which, rows in (("save", top), ("win-back", back)):
        name[rows] = which
        rank[rows] = np.arange(1, len(rows) + 1)
    return loss, name, rank


def reason_rows(
    loss: np.ndarray, value: np.ndarray, active: np.ndarray, churn: np.ndarray, high_risk: float, top: int = 2000
) -> np.ndarray:
    """The customers whose reason the model writes: the ``top`` high-risk ones with the largest
    expected loss and the ``top`` // 2 most valuable of the high-risk no longer active (both lists
    within them)."""
    risky = np.flatnonzero(np.nan_to_num(churn, nan=0.0) >= high_risk)
    gone = risky[~active[risky]]
    rows = np.concatenate(
        [
            risky[np.argsort(-loss[risky], kind="stable")][:top],
            gone[np.argsort(-value[gone], kind="stable")][: top // 2],
        ]
    )
    return np.unique(rows)
