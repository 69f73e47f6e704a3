"""Run the expectation suites with GX Core on the staged tables and judge the run.

GX computes every metric with SQL in the analytics database; nothing is pulled into pandas.
The outcome of every check is written to the run's staged ``dq_results`` table, which the
destinations publish as the data quality report.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from psycopg import sql

from include.customer_performance.quality.suites import (
    CRITICAL,
    SUITES,
    TRANSACTIONS,
    WARNING,
    Check,
    Suite,
    rows_rule,
)
from include.customer_performance.staging import Run, drop_relation

log = logging.getLogger(__name__)

DQ_COLUMNS = (
    "suite",
    "table_name",
    "column_name",
    "rule",
    "expectation",
    "severity",
    "rows_checked",
    "failing_rows",
    "success",
    "examples",
)


class QualityGateError(RuntimeError):
    """A critical expectation failed: nothing may be published for this period."""


@dataclass(frozen=True)
class CheckResult:
    suite: str
    table_name: str
    column_name: str | None
    rule: str
    expectation: str
    severity: str
    rows_checked: int | None
    failing_rows: int | None
    success: bool
    examples: list

    def describe(self) -> str:
        col = f", column {self.column_name}" if self.column_name else ""
        return (
            f"{self.expectation} ({self.rule}) on {self.table_name}{col}: {self.failing_rows} of"
            f" {self.rows_checked} rows fail (examples: {self.examples[:5]})"
        )


def suite_checks(suite: Suite) -> tuple[Check, ...]:
    """The suite's checks, plus those whose parameters come from data shipped with the package."""
    if suite is not TRANSACTIONS:
        return suite.checks
    from include.customer_performance.fx import ecb_history

    currencies = ", ".join(f"'{c}'" for c in sorted({*ecb_history(), "EUR"}))
    known = rows_rule(
        "transactions.currency.known",
        f"currency IS NULL OR currency NOT IN ({currencies})",
        WARNING,
        column="currency",
        catches="transactions.unknown_currency",
    )
    return (*suite.checks, known)


def _templates(run: Run) -> dict[str, str]:
    return {
        "batch": "{batch}",  # left for GX to fill in
        "customers": run.table("flt_customers").as_string(None),
        "period_start": f"'{run.period.start.isoformat()}'",
        "period_end": f"'{run.period.end.isoformat()}'",
    }


def _quiet_gx() -> None:
    for name in ("great_expectations", "great_expectations._docs_decorators"):
        logging.getLogger(name).setLevel(logging.WARNING)


def run_suite(context, datasource, run: Run, suite: Suite, cur) -> list[CheckResult]:
    import great_expectations as gx
    import great_expectations.expectations as gxe

    table = run.table_name(suite.stage)
    asset = datasource.add_table_asset(suite.name, table_name=table, schema_name=run.schema)
    batch = asset.add_batch_definition_whole_table("whole").get_batch()
    checks = suite_checks(suite)
    templates = _templates(run)
    gx_suite = gx.ExpectationSuite(name=suite.name)
    for check in checks:
        kwargs = dict(check.kwargs)
        if check.bad_rows:
            kwargs.pop("column", None)  # reported only; a row rule's query names its columns
            kwargs["unexpected_rows_query"] = kwargs["unexpected_rows_query"].format(**templates)
        gx_suite.add_expectation(getattr(gxe, check.expectation)(**kwargs, meta={"rule": check.rule}))
    result = batch.validate(gx_suite, result_format={"result_format": "SUMMARY", "partial_unexpected_count": 5})
    cur.execute(sql.SQL("SELECT count(*) FROM {}").format(run.table(suite.stage)))
    table_rows = cur.fetchone()[0]
    by_rule = {c.rule: c for c in checks}
    out = []
    for r in result.results:
        check = by_rule[r.expectation_config.meta["rule"]]
        res = r.result or {}
        observed = res.get("observed_value")
        if check.bad_rows:
            failing = observed if isinstance(observed, int) else None
            examples = _examples(cur, run, suite, check, templates) if failing else []
        else:
            failing = res.get("unexpected_count", 0 if r.success else None)
            examples = [str(x) for x in res.get("partial_unexpected_list") or []]
        out.append(
            CheckResult(
                suite=suite.name,
                table_name=suite.name,
                column_name=check.column,
                rule=check.rule,
                expectation=r.expectation_config.type,
                severity=check.severity,
                rows_checked=res.get("element_count", table_rows),
                failing_rows=failing,
                success=bool(r.success),
                examples=examples,
            )
        )
    return out


def _examples(cur, run: Run, suite: Suite, check: Check, templates: dict) -> list[str]:
    """A few keys of the rows a row-level rule rejects."""
    where = check.bad_rows.format(**{**templates, "batch": run.table(suite.stage).as_string(cur)})
    cur.execute(
        sql.SQL("SELECT {} FROM {} WHERE " + where + " ORDER BY 1 LIMIT 5").format(
            sql.Identifier(suite.key), run.table(suite.stage)
        )
    )
    return [str(r[0]) for r in cur.fetchall()]


def run_suites(run: Run, sqlalchemy_url: str, cur, suites: tuple[Suite, ...] = SUITES) -> list[CheckResult]:
    """Run the suites with GX on the committed staged tables."""
    _quiet_gx()
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    datasource = context.data_sources.add_postgres("analytics_db", connection_string=sqlalchemy_url)
    return [r for suite in suites for r in run_suite(context, datasource, run, suite, cur)]


def quarantine(cur, run: Run, results: list[CheckResult], suites: tuple[Suite, ...]) -> dict[str, int]:
    """Move the rows failing a warning rule out of the way, keeping them with rule, reason and run.

    For each suite: ``dq_quarantine_<name>`` holds the offending rows (a row failing two rules
    twice, once per rule) and ``vld_<dataset>`` is a view of the staged table without them, from
    which the metrics are recomputed. Both are rebuilt on every run of the gate, so clearing
    ``validate`` after fixing the data starts from the staged tables again.
    """
    failed = {r.rule for r in results if r.severity == WARNING and r.failing_rows}
    templates = _templates(run)
    moved = {}
    for suite in suites:
        src = run.table(suite.stage)
        target = run.table(f"dq_quarantine_{suite.name}")
        view = run.table(suite.stage.replace("flt_", "vld_", 1))
        rules = [c for c in suite_checks(suite) if c.rule in failed]
        preds = [c.bad_rows.format(**{**templates, "batch": src.as_string(cur)}) for c in rules]
        drop_relation(cur, view)
        drop_relation(cur, target)
        cur.execute(
            sql.SQL(
                "CREATE UNLOGGED TABLE {} AS SELECT *, NULL::text AS rule, NULL::text AS reason, NULL::text AS run_id,"
                " NULL::timestamptz AS quarantined_at FROM {} WITH NO DATA"
            ).format(target, src)
        )
        for check, pred in zip(rules, preds, strict=True):
            cur.execute(
                sql.SQL("INSERT INTO {} SELECT *, %s, %s, %s, now() FROM {} WHERE " + pred).format(target, src),
                (check.rule, f"{check.rule}: {check.bad_rows.format(**templates)}", run.run_id),
            )
            moved[check.rule] = cur.rowcount
        keep = " OR ".join(f"({p})" for p in preds) or "false"
        cur.execute(
            sql.SQL("CREATE VIEW {} AS SELECT * FROM {} WHERE NOT coalesce(" + keep + ", false)").format(view, src)
        )
    if moved:
        log.warning("quarantined rows per rule: %s", moved)
    return moved


def store_results(cur, run: Run, results: list[CheckResult], moved: dict[str, int]) -> dict:
    """Write the data quality report of the run to staging; returns its summary."""
    target = run.table("dq_results")
    cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(target))
    cur.execute(
        sql.SQL(
            "CREATE UNLOGGED TABLE {} (suite text, table_name text, column_name text, rule text, expectation text,"
            " severity text, rows_checked bigint, failing_rows bigint, success boolean, examples jsonb,"
            " quarantined_rows bigint, score numeric)"
        ).format(target)
    )
    with cur.copy(
        sql.SQL("COPY {} ({}) FROM STDIN").format(
            target, sql.SQL(", ").join(map(sql.Identifier, (*DQ_COLUMNS, "quarantined_rows", "score")))
        )
    ) as copy:
        for r in results:
            copy.write_row(
                (
                    r.suite,
                    r.table_name,
                    r.column_name,
                    r.rule,
                    r.expectation,
                    r.severity,
                    r.rows_checked,
                    r.failing_rows,
                    r.success,
                    json.dumps(r.examples),
                    moved.get(r.rule, 0),
                    None,
                )
            )
        # the per-table scores, as rows of the same report
        for table, table_scores in scores(results).items():
            for name, value in table_scores.items():
                copy.write_row(
                    (table, table, None, f"{table}.{name}", f"{name}_score", "info", None, None, True, "[]", 0, value)
                )
    failed = [r for r in results if not r.success]
    for r in failed:
        log.warning("%s check failed: %s", r.severity, r.describe())
    critical = [r for r in failed if r.severity == CRITICAL]
    return {
        "table": run.table_name("dq_results"),
        "checks": len(results),
        "failed": len(failed),
        "critical_failed": len(critical),
        "quarantined_rows": sum(moved.values()),
        "scores": scores(results),
        "success": not critical,
    }


def scores(results: list[CheckResult]) -> dict[str, dict[str, float]]:
    """Per table: completeness (share of filled values over its not-null checks) and accuracy
    (1 - rows failing its value rules / rows; a row failing two rules counts twice)."""
    out = {}
    for table in dict.fromkeys(r.table_name for r in results):
        mine = [r for r in results if r.table_name == table and r.rows_checked and r.failing_rows is not None]
        nulls = [r for r in mine if r.expectation == "expect_column_values_to_not_be_null"]
        values = [
            r
            for r in mine
            if r.expectation not in ("expect_column_values_to_not_be_null", "expect_table_row_count_to_be_between")
        ]
        rows = max((r.rows_checked for r in mine), default=0)
        out[table] = {
            "completeness": round(1 - sum(r.failing_rows / r.rows_checked for r in nulls) / len(nulls), 4)
            if nulls
            else 1.0,
            "accuracy": round(max(0.0, 1 - sum(r.failing_rows for r in values) / rows), 4) if rows else 1.0,
        }
    return out


def validate(run: Run, sqlalchemy_url: str, cur, suites: tuple[Suite, ...] = SUITES) -> dict:
    """Run the suites and store the report (no quarantine); the caller fails on a critical one."""
    results = run_suites(run, sqlalchemy_url, cur, suites)
    summary = store_results(cur, run, results, {})
    return {"summary": summary, "critical": [r for r in results if r.severity == CRITICAL and not r.success]}


def raise_on_critical(critical: list[CheckResult], run: Run) -> None:
    if critical:
        lines = "\n".join(f"  - {r.describe()}" for r in critical)
        raise QualityGateError(
            f"data quality gate failed for {run.period} with {len(critical)} critical failure(s); "
            "no destination was touched. Fix the data, then clear 'validate' (with downstream) to rerun the gate on"
            " the staged tables, or clear the extract tasks (with downstream) if you fixed it at the source:"
            f"\n{lines}"
        )
