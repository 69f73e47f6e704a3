"""Per-customer metrics for the period, computed in the analytics database from filtered staging.

Steps, each a staged table of the run, on two connections so that the database's cores work side
by side (each step reads only committed tables). As the calculate task runs them (``flag``):

    main: fx_rates -> probable_duplicate_keys -> int_transactions + dq_flagged_transactions
            -> latest versions -> int_customer_sales (even ids) -> customer_metrics
    side: repeated_transaction_ids -> int_customer_history -> int_customer_sessions
            -> int_customer_crm -> int_customers -> churn -> int_customer_sales (odd ids)
    then: customer_metrics -> the churn model and the lists (apply_churn_model)
            [-> customer_metrics again, when the model's probability is published]

(``repeated_transaction_ids`` and ``probable_duplicate_keys``: the keys the gate's grouping rules
read, each a sort of every staged transaction.)

``int_transactions`` is computed in the gate's flagging pass over the staged transactions (every
row rule evaluated once per row; flag_and_convert): the gate then judges those flags. Without
``flag`` (unit tests, the gate's rerun, which has flagged already), it converts ``vld_transactions``
and the side computes the repeated ids, then the per-customer tables.

``fx_rates`` (the period's daily rates to the reporting currency, staged by ``prepare_rates``
from the refreshed rates table, fx.py), ``int_transactions`` (converted, then each transaction_id
once: ``repeated_transaction_ids`` names the few ids whose versions need ranking; a sale without a
fresh rate fails the run, fx.StaleRatesError; rows in a missing or unknown currency are moved to
``dq_quarantine_unconverted``), ``int_customer_sales`` /
``_sessions`` / ``_crm`` (the period per customer), ``int_customers`` (each customer's latest
version), ``int_customer_history`` (lifetime history, converted), ``churn`` (the BTYD figures:
MBG/NBD or the recency ratio, computed in Python on three numbers per customer), then
``customer_metrics``; the gradient-boosted churn model (churn_model.py) reads it, and its
probability, the save and win-back lists and the reasons go into ``churn`` (and, when the model
publishes, ``customer_metrics`` is computed again).
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import timedelta

import numpy as np
from psycopg import sql

from include.customer_performance import churn_model, scorecard
from include.customer_performance.churn import ChurnSettings, fit, value_if_kept
from include.customer_performance.db import Connect, on_own_connection
from include.customer_performance.fx import Refresh, StaleRatesError, refresh_rates, stage_rates, stale_rates_message
from include.customer_performance.schemas import TRANSACTIONS, value_params
from include.customer_performance.sql import model
from include.customer_performance.staging import Run, analyze, drop_relation, replace_table_as

log = logging.getLogger(__name__)


def prepare_rates(conn, run: Run, cfg) -> Refresh:
    """Refresh the analytics database's rates table (fx.refresh_rates; the schema migrated first,
    the table is one of its migrations), then stage the period's rates as ``fx_rates``. Commits."""
    from include.customer_performance.migrations import migrate

    last_day = run.period.end - timedelta(days=1)
    with conn.cursor() as cur:
        migrate(cur, cfg.analytics_schema)
        refresh = refresh_rates(cur, cfg.analytics_schema, cfg, last_day)
    conn.commit()
    with conn.cursor() as cur:
        stage_rates(
            cur,
            run.table("fx_rates"),
            run.period.start,
            last_day,
            cfg.reporting_currency,
            cfg.analytics_schema,
            cfg.fx_max_staleness_days,
        )
        analyze(cur, run.table("fx_rates"))
    conn.commit()
    return refresh


def _raise_on_stale(cur, needs: list[tuple], what: str) -> None:
    if needs:
        from include.customer_performance.config import settings

        cfg = settings()
        raise StaleRatesError(stale_rates_message(needs, what, cfg.fx_max_staleness_days, cfg.analytics_schema))


def inputs_of(run: Run, source: str, dataset: str) -> dict[str, sql.Composable]:
    """The binding of a model's ``{vld_<dataset>}`` input: the validated view itself (source
    ``vld``: the rows the gate's warning rules reject left out), or with source ``flt`` the filtered
    table (a run before any gate, as the unit tests stage it)."""
    return {} if source == "vld" else {f"vld_{dataset}": run.table(f"{source}_{dataset}")}


def flag_and_convert(cur, run: Run) -> int:
    """``int_transactions`` before each id is taken once, with the gate's flagging of the
    transactions in the same pass (one evaluation of every row rule per row, rather than one for
    the ``vld_`` view here and another in the gate):

    - ``dq_flagged_transactions``: the staged rows failing a row rule, with ``failed_rules``,
      exactly as the gate's flagging pass writes them (quality/flagging.py); the gate judges them
      (a rerun of the gate flags again, from the staged rows as they are then);
    - the rows failing a warning rule are taken out of ``int_transactions``, which then holds
      what converting ``vld_transactions`` gives.

    The suite's key tables (``repeated_transaction_ids``, ``probable_duplicate_keys``) are staged
    already (``_stage_keys``). Returns the rows left in ``int_transactions``."""
    from include.customer_performance.quality.flagging import staged_columns, suite_checks, with_failed_rules
    from include.customer_performance.quality.suites import TRANSACTIONS as SUITE
    from include.customer_performance.quality.suites import WARNING

    checks = tuple(c for c in suite_checks(SUITE, run, cur) if c.bad_rows)
    table, flagged = run.table("int_transactions"), run.table(f"dq_flagged_{SUITE.name}")
    select = model("int_transactions", run, vld_transactions=with_failed_rules(cur, run, SUITE, checks, bound=True))
    drop_relation(cur, table)
    cur.execute(sql.SQL("CREATE UNLOGGED TABLE {} AS ").format(table) + select, value_params())
    rows = cur.rowcount  # analysed once its rows are final (convert_transactions)
    staged = staged_columns(cur, run, SUITE.stage)
    drop_relation(cur, flagged)
    cur.execute(
        sql.SQL("CREATE UNLOGGED TABLE {} AS SELECT {}, failed_rules FROM {} WHERE failed_rules IS NOT NULL").format(
            flagged, staged, table
        )
    )
    warnings = [c.rule for c in checks if c.severity == WARNING]
    cur.execute(sql.SQL("DELETE FROM {} WHERE failed_rules && %s::text[]").format(table), (warnings,))
    rows -= cur.rowcount
    cur.execute(sql.SQL("ALTER TABLE {} DROP COLUMN failed_rules").format(table))
    return rows


def _stage_keys(conn, run: Run, *keys: str) -> None:
    """The transactions suite's key tables (quality/flagging.py, stage_keys), all or those named,
    committed: the ids in more than one version (which int_transactions_latest reads too) and
    the probable duplicates' keys."""
    from include.customer_performance.quality.flagging import stage_keys
    from include.customer_performance.quality.suites import TRANSACTIONS as SUITE

    with conn.cursor() as cur:
        stage_keys(cur, run, SUITE, keys or None)
    conn.commit()


def convert_transactions(
    cur, run: Run, reporting_currency: str, source: str = "flt", repeated: Future | None = None, flag: bool = False
) -> dict:
    """``int_transactions``: converted, then each transaction_id once. ``repeated``: the future of
    ``_stage_keys(..., "repeated_transaction_ids")`` on another connection (else it runs here, on
    ``cur``'s). ``flag``
    (with source ``vld``): flag the transactions for the gate in the same pass (flag_and_convert;
    the suite's key tables, the repeated ids among them, staged already)."""
    if flag:
        if source != "vld":
            raise ValueError("flagging the transactions computes vld_transactions: source must be vld")
        rows = flag_and_convert(cur, run)
    else:
        select = model("int_transactions", run, **inputs_of(run, source, "transactions"))
        rows = replace_table_as(cur, run.table("int_transactions"), select, value_params())
        if repeated is not None:
            repeated.result()
        else:
            _stage_keys(cur.connection, run, "repeated_transaction_ids")
    latest = model(
        "int_transactions_latest", run, columns=sql.SQL(", ").join(map(sql.Identifier, TRANSACTIONS.column_names))
    )
    cur.execute(latest)
    taken_out, put_back, conflicts, examples = cur.fetchone()
    rows += put_back - taken_out
    quarantine = run.table("dq_quarantine_unconverted")
    cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(quarantine))
    cur.execute(
        sql.SQL("CREATE UNLOGGED TABLE {} AS SELECT * FROM {} WHERE quarantine_reason IS NOT NULL").format(
            quarantine, run.table("int_transactions")
        )
    )
    quarantined = cur.rowcount
    if quarantined:
        # a known currency without a fresh rate: the month cannot be converted, say so by name
        cur.execute(
            sql.SQL(
                "SELECT r.missing_rate, min(r.last_rate_day), count(*), min(r.day), max(r.day) FROM {} AS q"
                " JOIN {} AS r ON r.currency = q.currency AND r.day = (q.order_date AT TIME ZONE 'UTC')::date"
                " WHERE r.missing_rate IS NOT NULL GROUP BY 1 ORDER BY 1"
            ).format(quarantine, run.table("fx_rates"))
        )
        _raise_on_stale(cur, cur.fetchall(), "transactions")
        cur.execute(sql.SQL("DELETE FROM {} WHERE quarantine_reason IS NOT NULL").format(run.table("int_transactions")))
        cur.execute(
            sql.SQL("SELECT quarantine_reason, count(*) FROM {} GROUP BY 1 ORDER BY 2 DESC LIMIT 5").format(quarantine)
        )
        log.warning(
            "quarantined %s transactions that cannot be converted to %s: %s",
            quarantined,
            reporting_currency,
            "; ".join(f"{r} ({n})" for r, n in cur.fetchall()),
        )
    # Versions of one transaction_id that disagree on what was sold: the latest wins, say so.
    if conflicts:
        log.warning(
            "%s transaction_id(s) arrived in conflicting versions; the latest (by updated_at) counts, e.g. %s",
            conflicts,
            ", ".join(examples),
        )
    # Statistics of the UTC day as the models group by it (performance_trends): without them the
    # planner takes the day for near-unique, sorts ten million rows to group them into a few
    # hundred and spills (3.7 s instead of 6.5 s at a million customers). Dropped with the table.
    cur.execute(
        sql.SQL("CREATE STATISTICS {} ON ((order_date AT TIME ZONE 'UTC')::date) FROM {}").format(
            sql.Identifier(run.schema, run.table_name("int_transactions") + "_day"), run.table("int_transactions")
        )
    )
    analyze(cur, run.table("int_transactions"))
    return {"rows": rows - quarantined, "quarantined": quarantined, "conflicting_versions": conflicts}


def _fetch_arrays(cur, query: sql.Composable, params: dict, chunk: int = 100_000) -> list[np.ndarray]:
    """Columns of a numeric query as numpy arrays, fetched a chunk at a time."""
    parts: list[list[np.ndarray]] = []
    cur.execute(query, params)
    while rows := cur.fetchmany(chunk):
        parts.append([np.asarray(col, dtype=float) for col in zip(*rows, strict=True)])
    if not parts:
        return []
    return [np.concatenate(cols) for cols in zip(*parts, strict=True)]


CHURN_COLUMNS = (
    "customer_id bigint PRIMARY KEY, churn_probability numeric, churn_probability_btyd numeric, p_alive numeric,"
    " expected_purchases_12m numeric, expected_purchases_1m numeric, expected_purchases_3m numeric,"
    " clv_12m numeric, value_if_kept numeric, expected_loss numeric, usual_gap_days numeric, churn_list text,"
    " list_rank integer,"
    " churn_reason text, churn_method text"
)


def _risk(card: scorecard.Scorecard) -> dict:
    return {
        "high_risk": card.get("risk.high_risk_churn"),
        "save_size": card.get("risk.save_list_size"),
        "win_back_size": card.get("risk.win_back_list_size"),
    }


def compute_churn(conn, run: Run, card: scorecard.Scorecard) -> dict:
    """Fit the BTYD model on the lifetime history and stage its figures as ``churn``: the
    probability of no purchase in the next ``churn.no_purchase_days`` (published unless the
    gradient-boosted model replaces it, ``apply_churn_model``), P(alive), expected purchases, CLV,
    value if kept, expected loss and the reasons (the buying rhythm's)."""
    query = sql.SQL(
        "SELECT customer_id, purchase_days - 1,"
        " (last_purchase AT TIME ZONE 'UTC')::date - (first_purchase AT TIME ZONE 'UTC')::date,"
        " %(last_day)s::date - (first_purchase AT TIME ZONE 'UTC')::date,"
        # the value of a purchase day, the unit the expected purchases count in (two orders on one
        # day are one purchase of their sum); refunds beyond the sales: no negative order value
        " greatest(lifetime_revenue, 0) / purchase_days"
        " FROM {} WHERE purchases > 0 ORDER BY customer_id"
    ).format(run.table("int_customer_history"))
    with conn.cursor(name="churn_input") as cur:
        cols = _fetch_arrays(cur, query, {"last_day": run.period.end - timedelta(days=1)})
    target = run.table("churn")
    with conn.cursor() as cur:
        cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(target))
        cur.execute(sql.SQL("CREATE UNLOGGED TABLE {} (" + CHURN_COLUMNS + ")").format(target))
        if not cols:
            conn.commit()
            return {"customers": 0, "method": None}
        ids, frequency, recency, T, aov = cols  # noqa: N806
        out = fit(frequency, recency, T, ChurnSettings.of(card))
        e = out.expected
        value = value_if_kept(e["expected_purchases_12m"], out.alive, aov)
        loss = value * out.no_purchase  # the lists are drawn after customer_metrics (apply_churn_model)
        # the BTYD probability's inputs are the buying rhythm alone: its reason is the silence against
        # it, for every buyer (the gradient-boosted model rewrites those it explains, apply_churn_model)
        gap = np.where(frequency > 0, recency / np.maximum(frequency, 1), np.nan)
        says = churn_model.btyd_reasons(T - recency, frequency + 1, gap)
        usual = np.where(np.isnan(gap), ChurnSettings.of(card).fallback_gap_days, np.maximum(gap, 1.0))
        with cur.copy(sql.SQL("COPY {} FROM STDIN").format(target)) as copy:
            for row in zip(
                ids.astype(np.int64).tolist(),
                np.round(out.no_purchase, 4).tolist(),
                np.round(out.no_purchase, 4).tolist(),
                np.round(out.alive, 4).tolist(),
                np.round(e["expected_purchases_12m"], 3).tolist(),
                np.round(e["expected_purchases_1m"], 4).tolist(),
                np.round(e["expected_purchases_3m"], 4).tolist(),
                np.round(e["expected_purchases_12m"] * aov, 2).tolist(),
                np.round(value, 2).tolist(),
                np.round(loss, 2).tolist(),
                np.round(usual, 1).tolist(),
                [None] * len(ids),
                [None] * len(ids),
                says,
                strict=True,
            ):
                copy.write_row((*row, out.method))
        analyze(cur, target)
    conn.commit()
    log.info("churn: %s customers with purchase history, method %s %s", len(ids), out.method, out.params or out.reason)
    # what the run record keeps of the model (pipeline_runs.churn_model)
    return {
        "customers": len(ids),
        "repeat_buyers": int(np.sum(frequency > 0)),
        "method": out.method,
        "params": {k: round(v, 6) for k, v in out.params.items()},
        "fallback_reason": out.reason,
    }


def apply_churn_model(conn, run: Run, card: scorecard.Scorecard, analytics_schema: str) -> dict:
    """After the first ``customer_metrics``: train the gradient-boosted model on the published
    history and, when it beats the BTYD probability on the held-out month, take its probability,
    expected loss and reasons into ``churn`` (churn_model.py); then draw the save and win-back lists
    (churn_model.lists, over the customers who bought, still active by their days since the last
    purchase and since the last login) and mark them in ``churn`` and ``customer_metrics``. Returns what the run
    record keeps; ``replaced`` says whether customer_metrics must be computed again (the model's
    probability feeds the health score). Commits."""
    cfg = ChurnSettings.of(card)
    metrics_table, target = run.table("customer_metrics"), run.table("churn")
    out = churn_model.train_and_score(conn, run, analytics_schema, cfg, metrics_table)
    scores = out.pop("scores", None)
    # this run's figures of every customer who bought, in id order: the BTYD probability (or the
    # model's, below), the value if kept and the silence the activity rule reads
    query = sql.SQL(
        "SELECT m.customer_id, c.churn_probability::float8, c.value_if_kept::float8,"
        " m.days_since_last_purchase::float8, c.usual_gap_days::float8, m.days_since_last_login::float8"
        " FROM {} AS m JOIN {} AS c USING (customer_id) ORDER BY m.customer_id"
    ).format(metrics_table, target)
    with conn.cursor(name="churn_lists") as cur:
        got = _fetch_arrays(cur, query, {})
    if not got:
        conn.commit()
        return {**out, "replaced": False}
    ids, churn, value, since_purchase, usual_gap, since_login = got
    ids = ids.astype(np.int64)
    risk = _risk(card)
    active = churn_model.still_active(
        since_purchase,
        usual_gap,
        since_login,
        card.get("risk.active_gaps"),
        card.get("risk.active_days"),
        card.get("risk.active_login_days"),
    )
    says = np.full(len(ids), None, dtype=object)
    if scores is not None:
        model_ids, p, booster, x = scores
        at = np.searchsorted(ids, model_ids)
        found = (at < len(ids)) & (ids[np.minimum(at, len(ids) - 1)] == model_ids)
        churn[at[found]] = p[found]
    t0 = time.monotonic()
    loss, names, ranks = churn_model.lists(churn, active, value, **risk)
    if scores is not None:
        rows = churn_model.reason_rows(loss, value, active, churn, risk["high_risk"])
        # the model's rows of those customers (its feature matrix is in id order too)
        where = np.searchsorted(model_ids, ids[rows])
        ok = (where < len(model_ids)) & (model_ids[np.minimum(where, len(model_ids) - 1)] == ids[rows])
        says[rows[ok]] = churn_model.reasons(booster, x, where[ok])
        out["reasons_seconds"] = round(time.monotonic() - t0, 2)
    listed = np.flatnonzero(names != None)  # noqa: E711 - an object array compared element-wise
    changed = np.arange(len(ids)) if scores is not None else listed
    with conn.cursor() as cur:
        scored = run.table("churn_scored")
        cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(scored))
        cur.execute(
            sql.SQL(
                "CREATE UNLOGGED TABLE {} (customer_id bigint PRIMARY KEY, churn_probability numeric,"
                " expected_loss numeric, churn_list text, list_rank integer, churn_reason text)"
            ).format(scored)
        )
        with cur.copy(sql.SQL("COPY {} FROM STDIN").format(scored)) as copy:
            for i in changed.tolist():
                copy.write_row(
                    (int(ids[i]), round(float(churn[i]), 4), round(float(loss[i]), 2), names[i], int(ranks[i]) or None,
                     says[i])
                )  # fmt: skip
        # the model's figures replace the BTYD's; without it only the lists are new
        figures = (
            sql.SQL(
                "churn_probability = s.churn_probability, expected_loss = s.expected_loss,"
                " churn_reason = coalesce(s.churn_reason, c.churn_reason), churn_method = 'gradient_boosting', "
            )
            if scores is not None
            else sql.SQL("")
        )
        cur.execute(
            sql.SQL(
                "UPDATE {} AS c SET {}churn_list = s.churn_list, list_rank = s.list_rank FROM {} AS s"
                " WHERE s.customer_id = c.customer_id"
            ).format(target, figures, scored)
        )
        if scores is None:  # the figures stand; only the lists are marked, in customer_metrics too
            cur.execute(
                sql.SQL(
                    "UPDATE {} AS m SET churn_list = s.churn_list, list_rank = s.list_rank FROM {} AS s"
                    " WHERE s.customer_id = m.customer_id"
                ).format(metrics_table, scored)
            )
        drop_relation(cur, scored)
        analyze(cur, target)
    conn.commit()
    out["save_list"], out["win_back_list"] = int(np.sum(names == "save")), int(np.sum(names == "win-back"))
    return {**out, "replaced": scores is not None}


def previous_health(cur, run: Run, analytics_schema: str) -> sql.Composable:
    """Last month's health scores, or an empty relation before the first load of that shape."""
    cur.execute(
        "SELECT 1 FROM information_schema.columns WHERE table_schema = %s AND table_name = 'customer_performance'"
        " AND column_name = 'health_score'",
        (analytics_schema,),
    )
    if cur.fetchone() is None:
        return sql.SQL("(SELECT NULL::bigint AS customer_id, NULL::numeric AS health_score WHERE false)")
    return sql.SQL("(SELECT customer_id, health_score FROM {} WHERE report_month = {})").format(
        sql.Identifier(analytics_schema, "customer_performance"), sql.Literal(run.period.previous_month.report_month)
    )


def per_customer(conn, run: Run, reporting_currency: str, source: str, card: scorecard.Scorecard) -> dict:
    """The side connection's steps: lifetime history, churn, sessions and CRM per customer, each
    customer's latest version; returns the churn summary."""
    rate_day = run.period.end - timedelta(days=1)
    with conn.cursor() as cur:
        replace_table_as(
            cur,
            run.table("int_customer_history"),
            model("int_customer_history", run),
            {"rate_day": rate_day},
        )
    with conn.cursor() as cur:
        replace_table_as(
            cur,
            run.table("int_customer_sessions"),
            model("int_customer_sessions", run, **inputs_of(run, source, "customer_activity")),
        )
        replace_table_as(
            cur,
            run.table("int_customer_crm"),
            model("int_customer_crm", run, **inputs_of(run, source, "interactions")),
            card.sql_params(),
        )
        replace_table_as(
            cur, run.table("int_customers"), model("int_customers", run, **inputs_of(run, source, "customers"))
        )
    conn.commit()
    return compute_churn(conn, run, card)


def stage_customer_sales(conn, run: Run, part: int | None = None) -> None:
    """Fill ``int_customer_sales`` (created empty) with the customers whose id has the parity
    ``part``, or with all of them: two connections sort half the transactions each, side by side,
    rather than one sorting all of them. Commits."""
    source = run.table("int_transactions")
    if part is not None:  # a missing customer_id groups with the even ones
        source = sql.SQL("(SELECT * FROM {} WHERE coalesce(customer_id & 1, 0) = {}) AS t").format(
            source, sql.Literal(part)
        )
    with conn.cursor() as cur:
        cur.execute(
            sql.SQL("INSERT INTO {} ").format(run.table("int_customer_sales"))
            + model("int_customer_sales", run, int_transactions=source)
        )
    conn.commit()


def stage_customer_metrics(conn, run: Run, card: scorecard.Scorecard, analytics_schema: str) -> int:
    """``customer_metrics`` from the staged per-customer tables. Commits; returns its rows."""
    with conn.cursor() as cur:
        select = model("customer_metrics", run, previous=previous_health(cur, run, analytics_schema))
        params = {**card.sql_params(), **run.period.as_params()}
        rows = replace_table_as(cur, run.table("customer_metrics"), select, params)
        # One row per customer is what every later stage assumes; a join must not multiply rows.
        cur.execute(
            sql.SQL("SELECT count(*) - count(DISTINCT customer_id) FROM {}").format(run.table("customer_metrics"))
        )
        dupes = cur.fetchone()[0]
        if dupes:
            raise RuntimeError(f"customer_metrics for {run.period}: {dupes} customer_id values appear more than once")
    conn.commit()
    return rows


def calculate_metrics(
    conn,
    run: Run,
    reporting_currency: str,
    analytics_schema: str,
    source: str = "flt",
    connect: Connect | None = None,
    card: scorecard.Scorecard | None = None,
    flag: bool = False,
) -> dict:
    """All of calculate. ``source`` is the prefix of the input tables: ``flt`` (filtered) from the
    calculate task, ``vld`` (filtered minus quarantined rows) when the gate recomputes. ``connect``
    opens a second connection to the same database for the side steps (without it they run after
    the main ones, on ``conn``). The period's rates are staged already (``prepare_rates``).
    ``card`` is the scorecard to compute with (by default the deployment's, ``scorecard.current``);
    it is staged as the run's (``scorecard.stage``) for the tasks after this one. ``flag`` (source
    ``vld``): the transactions are flagged for the gate in the conversion's pass (flag_and_convert).
    Commits ``conn``."""
    card = card or scorecard.current()
    with conn.cursor() as cur:
        scorecard.stage(cur, run, card)
    conn.commit()  # the side connection reads the rates and the vld_ views
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="calculate-side") as pool:
        side = repeated = None
        if flag:
            # the keys of the gate's grouping rules (a sort of every staged transaction each), one
            # on each connection; then the side computes the per-customer tables while this one
            # flags and converts the transactions
            if connect is not None:
                repeated = pool.submit(
                    on_own_connection,
                    connect,
                    _stage_keys,
                    run,
                    "repeated_transaction_ids",
                    "unknown_transaction_customers",
                )
                side = pool.submit(on_own_connection, connect, per_customer, run, reporting_currency, source, card)
                _stage_keys(conn, run, "probable_duplicate_keys")
                repeated.result()
            else:
                _stage_keys(conn, run)
        elif connect is not None:
            repeated = pool.submit(on_own_connection, connect, _stage_keys, run, "repeated_transaction_ids")
            side = pool.submit(on_own_connection, connect, per_customer, run, reporting_currency, source, card)
        with conn.cursor() as cur:
            converted = convert_transactions(cur, run, reporting_currency, source, repeated, flag)
            target = run.table("int_customer_sales")
            cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(target))
            cur.execute(
                sql.SQL("CREATE UNLOGGED TABLE {} AS ").format(target)
                + model("int_customer_sales", run)
                + sql.SQL(" WITH NO DATA")
            )
        conn.commit()  # the side connection fills half of int_customer_sales, once done with its own steps
        half = pool.submit(on_own_connection, connect, stage_customer_sales, run, 1) if connect is not None else None
        stage_customer_sales(conn, run, 0 if half is not None else None)
        if half is not None:
            half.result()
        churn = side.result() if side is not None else per_customer(conn, run, reporting_currency, source, card)
        with conn.cursor() as cur:
            analyze(cur, target)
    rows = stage_customer_metrics(conn, run, card, analytics_schema)
    # the gradient-boosted model reads the BTYD run's customer_metrics (its features are those of the
    # published months); when it replaces the probability, customer_metrics is computed again from it
    churn["model"] = apply_churn_model(conn, run, card, analytics_schema)
    if churn["model"].pop("replaced"):
        churn["method"] = churn["model"]["method"]
        rows = stage_customer_metrics(conn, run, card, analytics_schema)
    log.info("customer_metrics: %s customers", rows)
    return {
        "table": run.table_name("customer_metrics"),
        "rows": rows,
        "transactions": converted,
        "churn": churn,
    }
