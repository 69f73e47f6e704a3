"""Row rules in one pass: the rows of a suite's table failing any of its row rules are flagged into
``dq_flagged_<suite>_<run>`` (with the rules they fail), the table GX judges each rule on and the
quarantine copies from; ``vld_<dataset>`` views leave the rows the warning rules reject out of the
metrics; ``dq_quarantine_<suite>_<run>`` keeps them, with rule, reason and run."""

from __future__ import annotations

import logging

from psycopg import sql

from include.customer_performance.quality.report import CheckResult
from include.customer_performance.quality.suites import WARNING, Check, Suite
from include.customer_performance.sql import model
from include.customer_performance.staging import Run, drop_relation, replace_table_as

log = logging.getLogger(__name__)


def suite_checks(suite: Suite, run: Run | None = None, cur=None) -> tuple[Check, ...]:
    """The suite's checks, plus (given the run and a cursor) a critical rule against NaN and
    Infinity for each numeric column of its staged table (quality/outcome.py)."""
    if run is None or cur is None:
        return suite.checks
    from include.customer_performance.quality.outcome import finite_rules

    return (*suite.checks, *finite_rules(cur, run, suite))


# A key table a view's predicate reads inline instead, as the same set: every flagging pass drops
# and stages the key tables again, which a view depending on one would forbid (or, cascading, lose).
INLINE_KEYS = {
    "unknown_transaction_customers": (
        "(SELECT customer_id FROM {flt_transactions} EXCEPT SELECT customer_id FROM {flt_customers})"
        " AS unknown_transaction_customers"
    ),
}


def _templates(run: Run, inline: bool = False) -> dict[str, str]:
    """The rules' templates bound to ``run``; ``inline``: the INLINE_KEYS as their subqueries."""
    tables = {
        stage: run.table(stage).as_string(None)
        for stage in (
            "flt_customers",
            "flt_transactions",
            "customer_metrics",
            "fx_rates",
            "repeated_transaction_ids",
            "probable_duplicate_keys",
            "unknown_transaction_customers",
        )
    }
    if inline:
        tables.update({key: text.format(**tables) for key, text in INLINE_KEYS.items()})
    return {
        "batch": "{batch}",  # left for GX to fill in
        # the staged tables a rule reads, by their names (as in the SQL models)
        **tables,
        "period_start": f"'{run.period.start.isoformat()}'",
        "period_end": f"'{run.period.end.isoformat()}'",
    }


def with_failed_rules(cur, run: Run, suite: Suite, checks: tuple[Check, ...], bound: bool = False) -> sql.Composed:
    """The suite's table with ``failed_rules`` (text[]) added: the row rules each row fails, NULL
    for a row failing none; a subquery, each rule (and its subqueries) evaluated once per row.
    (OFFSET 0 keeps it whole: pulled up into a query that also filters on failed_rules, each rule
    would be evaluated twice.) ``bound``: for a statement run with parameters, where a ``%`` of a
    predicate (a LIKE pattern) must be written ``%%``."""
    src = run.table(suite.stage)
    templates = {**_templates(run), "batch": src.as_string(cur)}

    def predicate(check: Check) -> str:
        text = check.bad_rows.format(**templates)
        return text.replace("%", "%%") if bound else text

    cases = [
        sql.SQL("CASE WHEN coalesce((" + predicate(c) + "), false) THEN {} END").format(sql.Literal(c.rule))
        for c in checks
        if c.bad_rows
    ]
    return sql.SQL(
        "(SELECT t.*, nullif(array_remove(ARRAY[{cases}]::text[], NULL), '{{}}') AS failed_rules"
        " FROM {src} AS t OFFSET 0)"
    ).format(src=src, cases=sql.SQL(", ").join(cases) if cases else sql.SQL("NULL"))


def flag_rows(cur, run: Run, suite: Suite, checks: tuple[Check, ...]) -> sql.Composed:
    """``dq_flagged_<suite>``: the rows of the suite's table failing any of its row rules, each
    with ``failed_rules`` (text[]); one pass, each rule's subqueries computed once."""
    target = run.table(f"dq_flagged_{suite.name}")
    drop_relation(cur, target)
    cur.execute(
        sql.SQL("CREATE UNLOGGED TABLE {} AS SELECT * FROM {} AS f WHERE failed_rules IS NOT NULL").format(
            target, with_failed_rules(cur, run, suite, checks)
        )
    )
    return target


def stage_keys(cur, run: Run, suite: Suite, keys: tuple[str, ...] | None = None) -> None:
    """The suite's key tables (``Suite.keys``, each an SQL model over the staged rows), which its
    row rules read, or those of them in ``keys``; not committed."""
    for key in suite.keys:
        if keys is None or key in keys:
            replace_table_as(cur, run.table(key), model(key, run))


def flag_suite(cur, run: Run, suite: Suite, checks: tuple[Check, ...] | None = None) -> sql.Composed | None:
    """Flag the suite's rows (see flag_rows; its key tables staged first) and commit: GX reads
    through its own connection."""
    stage_keys(cur, run, suite)
    row_rules = tuple(c for c in checks or suite_checks(suite, run, cur) if c.bad_rows)
    flagged = flag_rows(cur, run, suite, row_rules) if row_rules else None
    cur.connection.commit()
    return flagged


def flagged_by_calculate(cur, run: Run) -> tuple[str, ...]:
    """The suites whose rows this run's calculate flagged (the transactions, as it converts them:
    transform/calculate.py, flag_and_convert): their ``dq_flagged_<suite>`` tables exist."""
    from include.customer_performance.quality.suites import TRANSACTIONS

    cur.execute("SELECT to_regclass(%s)", (run.table(f"dq_flagged_{TRANSACTIONS.name}").as_string(cur),))
    return (TRANSACTIONS.name,) if cur.fetchone()[0] is not None else ()


def _flag(conn, run: Run, suite: Suite) -> sql.Composed | None:
    with conn.cursor() as cur:
        return flag_suite(cur, run, suite)


def warning_predicates(cur, run: Run, suite: Suite) -> list[tuple[Check, str]]:
    """The suite's warning rules with their predicates bound to the run's tables (a key table of
    INLINE_KEYS as its subquery: the vld_ views are made of these)."""
    templates = {**_templates(run, inline=True), "batch": run.table(suite.stage).as_string(cur)}
    return [(c, c.bad_rows.format(**templates)) for c in suite.checks if c.severity == WARNING and c.bad_rows]


def create_valid_views(cur, run: Run, suites: tuple[Suite, ...]) -> None:
    """``vld_<dataset>``: the staged table without the rows any warning rule rejects. calculate
    reads these, so the rows the gate quarantines never reach a metric; rebuilt on every call."""
    for suite in suites:
        src = run.table(suite.stage)
        view = run.table(suite.stage.replace("flt_", "vld_", 1))
        keep = " OR ".join(f"({p})" for _, p in warning_predicates(cur, run, suite)) or "false"
        drop_relation(cur, view)
        cur.execute(
            sql.SQL("CREATE VIEW {} AS SELECT * FROM {} WHERE NOT coalesce(" + keep + ", false)").format(view, src)
        )


def staged_columns(cur, run: Run, stage: str) -> sql.Composed:
    """The columns of the run's staged table (or view) ``stage``, in order, as a select list."""
    cur.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s"
        " ORDER BY ordinal_position",
        (run.schema, run.table_name(stage)),
    )
    return sql.SQL(", ").join(sql.Identifier(r[0]) for r in cur.fetchall())


def quarantine(cur, run: Run, results: list[CheckResult], suites: tuple[Suite, ...]) -> dict[str, int]:
    """Keep the rows failing a warning rule, with rule, reason and run, in ``dq_quarantine_<name>``
    (a row failing two rules twice, once per rule), copied from the suite's flagged rows;
    ``vld_<dataset>`` (see create_valid_views), which the metrics are computed from, leaves them
    out. Rebuilt on every run of the gate."""
    failed = {r.rule for r in results if r.severity == WARNING and r.failing_rows}
    templates = _templates(run, inline=True)
    moved = {}
    for suite in suites:
        src = run.table(suite.stage)
        flagged = run.table(f"dq_flagged_{suite.name}")
        target = run.table(f"dq_quarantine_{suite.name}")
        cols = staged_columns(cur, run, suite.stage)
        drop_relation(cur, target)
        cur.execute(
            sql.SQL(
                "CREATE UNLOGGED TABLE {} AS SELECT *, NULL::text AS rule, NULL::text AS reason, NULL::text AS run_id,"
                " NULL::timestamptz AS quarantined_at FROM {} WITH NO DATA"
            ).format(target, src)
        )
        for check, _ in warning_predicates(cur, run, suite):
            if check.rule not in failed:
                continue
            cur.execute(
                sql.SQL("INSERT INTO {} SELECT {}, %s, %s, %s, now() FROM {} WHERE failed_rules @> ARRAY[%s]").format(
                    target, cols, flagged
                ),
                (check.rule, f"{check.rule}: {check.bad_rows.format(**templates)}", run.run_id, check.rule),
            )
            moved[check.rule] = cur.rowcount
    create_valid_views(cur, run, suites)
    if moved:
        log.warning("quarantined rows per rule: %s", moved)
    return moved
