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

from include.customer_performance.quality.suites import CRITICAL, SUITES, TRANSACTIONS, WARNING, Check, Suite
from include.customer_performance.staging import Run

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

    currencies = sorted({*ecb_history(), "EUR"})
    known = Check(
        "transactions.currency.known",
        "ExpectColumnValuesToBeInSet",
        {"column": "currency", "value_set": currencies},
        WARNING,
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


def validate(run: Run, sqlalchemy_url: str, cur, suites: tuple[Suite, ...] = SUITES) -> dict:
    """Run the suites, store the results in staging; the caller fails on a critical failure."""
    _quiet_gx()
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    datasource = context.data_sources.add_postgres("analytics_db", connection_string=sqlalchemy_url)
    results = [r for suite in suites for r in run_suite(context, datasource, run, suite, cur)]

    target = run.table("dq_results")
    cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(target))
    cur.execute(
        sql.SQL(
            "CREATE UNLOGGED TABLE {} (suite text, table_name text, column_name text, rule text, expectation text,"
            " severity text, rows_checked bigint, failing_rows bigint, success boolean, examples jsonb)"
        ).format(target)
    )
    with cur.copy(
        sql.SQL("COPY {} ({}) FROM STDIN").format(target, sql.SQL(", ").join(map(sql.Identifier, DQ_COLUMNS)))
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
                )
            )
    failed = [r for r in results if not r.success]
    for r in failed:
        log.warning("%s check failed: %s", r.severity, r.describe())
    critical = [r for r in failed if r.severity == CRITICAL]
    summary = {
        "table": run.table_name("dq_results"),
        "checks": len(results),
        "failed": len(failed),
        "critical_failed": len(critical),
        "success": not critical,
    }
    return {"summary": summary, "critical": critical}


def raise_on_critical(critical: list[CheckResult], run: Run) -> None:
    if critical:
        lines = "\n".join(f"  - {r.describe()}" for r in critical)
        raise QualityGateError(
            f"data quality gate failed for {run.period} with {len(critical)} critical failure(s); "
            f"no destination was touched. Fix the source data, then clear 'validate' to rerun the gate:\n{lines}"
        )
