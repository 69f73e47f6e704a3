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

from include.customer_performance.quality.suites import CRITICAL, SUITES, Suite
from include.customer_performance.staging import Run

log = logging.getLogger(__name__)

DQ_COLUMNS = (
    "suite",
    "table_name",
    "column_name",
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
    expectation: str
    severity: str
    rows_checked: int | None
    failing_rows: int | None
    success: bool
    examples: list

    def describe(self) -> str:
        col = f", column {self.column_name}" if self.column_name else ""
        return (
            f"{self.expectation} on {self.table_name}{col}: {self.failing_rows} of {self.rows_checked} rows fail"
            f" (examples: {self.examples[:5]})"
        )


def _quiet_gx() -> None:
    for name in ("great_expectations", "great_expectations._docs_decorators"):
        logging.getLogger(name).setLevel(logging.WARNING)


def run_suite(context, datasource, run: Run, suite: Suite) -> list[CheckResult]:
    import great_expectations as gx
    import great_expectations.expectations as gxe

    table = run.table_name(suite.stage)
    asset = datasource.add_table_asset(suite.name, table_name=table, schema_name=run.schema)
    batch = asset.add_batch_definition_whole_table("whole").get_batch()
    gx_suite = gx.ExpectationSuite(name=suite.name)
    for check in suite.checks:
        gx_suite.add_expectation(getattr(gxe, check.expectation)(**check.kwargs, meta={"severity": check.severity}))
    result = batch.validate(gx_suite, result_format={"result_format": "SUMMARY", "partial_unexpected_count": 5})
    out = []
    for r in result.results:
        cfg = r.expectation_config
        res = r.result or {}
        observed = res.get("observed_value")
        out.append(
            CheckResult(
                suite=suite.name,
                table_name=suite.stage,
                column_name=cfg.kwargs.get("column"),
                expectation=cfg.type,
                severity=cfg.meta.get("severity", CRITICAL),
                rows_checked=res.get("element_count", observed if isinstance(observed, int) else None),
                failing_rows=res.get("unexpected_count", 0 if r.success else None),
                success=bool(r.success),
                examples=[str(x) for x in res.get("partial_unexpected_list") or []],
            )
        )
    return out


def validate(run: Run, sqlalchemy_url: str, cur) -> dict:
    """Run every suite, store the results in staging, and fail on any critical failure."""
    _quiet_gx()
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    datasource = context.data_sources.add_postgres("analytics_db", connection_string=sqlalchemy_url)
    results = [r for suite in SUITES for r in run_suite(context, datasource, run, suite)]

    target = run.table("dq_results")
    cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(target))
    cur.execute(
        sql.SQL(
            "CREATE UNLOGGED TABLE {} (suite text, table_name text, column_name text, expectation text,"
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
