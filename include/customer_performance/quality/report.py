"""The data quality report: one result per check, written to the run's staged report tables
(``dq_results``: the gate's, written by validate; ``dq_aggregates``: the aggregate suites', by
aggregate), which the destinations publish as ``data_quality_results`` and the CSV report; plus
the per-table scores and the gate's one-line summary."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from psycopg import sql

from include.customer_performance.quality.suites import CRITICAL, INFO, WARNING
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
    detail: str | None = None  # what an outcome check (quality/outcome.py) found, in words

    def describe(self) -> str:
        col = f", column {self.column_name}" if self.column_name else ""
        if self.detail:
            return f"{self.rule} on {self.table_name}{col}: {self.detail}"
        return (
            f"{self.expectation} ({self.rule}) on {self.table_name}{col}: {self.failing_rows} of"
            f" {self.rows_checked} rows fail (examples: {self.examples[:5]})"
        )


def store_results(
    cur,
    run: Run,
    results: list[CheckResult],
    moved: dict[str, int],
    stage: str = "dq_results",
    with_scores: bool = True,
) -> dict:
    """Replace the task's part of the run's data quality report: ``dq_results`` is the gate's
    (validate), ``dq_aggregates`` the aggregate suites' (aggregate). Each task owns its table and
    rewrites it whole, so a task cleared any number of times, alone or with others, leaves one copy
    of its results; the report is both tables. Returns the results' summary."""
    target = run.table(stage)
    cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(target))
    cur.execute(
        sql.SQL(
            "CREATE UNLOGGED TABLE {} (suite text, table_name text, column_name text, rule text, expectation text,"
            " severity text, rows_checked bigint, failing_rows bigint, success boolean, examples jsonb,"
            " quarantined_rows bigint, score numeric)"
        ).format(target)
    )
    return append_results(cur, run, results, moved, with_scores=with_scores, stage=stage)


def data_docs_result(problem: str) -> CheckResult:
    """The report's row for Data Docs that could not be written: a warning (and an alert), never a
    reason to stop the gate."""
    text = problem[:300]
    return CheckResult(
        "run", "data_docs", None, "run.data_docs", "data_docs_written", WARNING, None, None, False, [text], text
    )


def append_results(
    cur,
    run: Run,
    results: list[CheckResult],
    moved: dict[str, int],
    with_scores: bool = False,
    stage: str = "dq_results",
) -> dict:
    """Add results to the task's part of the report (``store_results`` creates it); returns their summary."""
    target = run.table(stage)
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
        for table, table_scores in (scores(results) if with_scores else {}).items():
            for name, value in table_scores.items():
                copy.write_row(
                    (table, table, None, f"{table}.{name}", f"{name}_score", "info", None, None, True, "[]", 0, value)
                )
    failed = [r for r in results if not r.success]
    for r in failed:
        log.log(
            logging.INFO if r.severity == INFO else logging.WARNING, "%s check failed: %s", r.severity, r.describe()
        )
    critical = [r for r in failed if r.severity == CRITICAL]
    return {
        "table": run.table_name(stage),
        "checks": len(results),
        "failed": len(failed),
        "critical_failed": len(critical),
        "quarantined_rows": sum(moved.values()),
        "scores": scores(results),
        "success": not critical,
    }


def log_summary(results: list[CheckResult], summary: dict) -> str:
    """One line for the task log: the gate's verdict, its checks, failures by severity, quarantined rows."""
    failed = [r for r in results if not r.success]
    by = {s: sum(1 for r in failed if r.severity == s) for s in (CRITICAL, WARNING, INFO)}
    line = (
        f"gate {'PASSED' if summary['success'] else 'FAILED'}: {len(results)} checks of the sources and the metrics"
        f" (the aggregates' follow in aggregate; the month's report counts both); failed: {by[CRITICAL]} critical,"
        f" {by[WARNING]} warning, {by[INFO]} info; {summary['quarantined_rows']} rows quarantined"
    )
    (log.info if summary["success"] else log.error)(line)
    return line


def scores(results: list[CheckResult]) -> dict[str, dict[str, float]]:
    """Per table: completeness (share of filled values over its not-null checks) and accuracy
    (1 - rows failing its value rules / rows; a row failing two rules counts twice)."""
    out = {}
    for table in dict.fromkeys(r.table_name for r in results):
        mine = [
            r
            for r in results
            if r.table_name == table and r.rows_checked and r.failing_rows is not None and r.detail is None
        ]
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


def gate_counts(cur, report: sql.Composable) -> list[dict]:
    """The checks of a month's report (``report``: a relation of its rows) per severity, critical
    first: ``{severity, checks, failed, quarantined}``. A check is a rule; the per-table scores, rows
    of the same report, are not. What the dashboard, the email and the report CLI count."""
    with cur.connection.cursor() as plain:
        plain.execute(
            sql.SQL(
                "SELECT severity, count(*) FILTER (WHERE score IS NULL),"
                " count(*) FILTER (WHERE score IS NULL AND NOT success), coalesce(sum(quarantined_rows), 0)"
                " FROM {} AS report GROUP BY severity"
                " ORDER BY array_position(ARRAY['critical', 'warning', 'info'], severity), severity"
            ).format(report)
        )
        names = ("severity", "checks", "failed", "quarantined")
        return [dict(zip(names, row, strict=True)) for row in plain.fetchall()]


def trust(cur, report: sql.Composable, cfg) -> dict:
    """What to trust in a month, from its data quality report (``report``: a relation of its rows,
    the run's staged report or the published month's): per source suite its completeness and
    accuracy scores and its freshness against their minimums, and each warning rule that failed
    with its rows and its ceiling (the share it may quarantine before the month stops; the
    outcome checks, volume and freshness, have none: they raise an alert). Ceilings and minimums
    are the settings' (``cfg``)."""
    from include.customer_performance.quality.suites import SOURCE_SUITES

    with cur.connection.cursor() as plain:  # tuples, whatever rows the caller's cursor makes
        return _trust(plain, report, cfg, [s.name for s in SOURCE_SUITES])


def _trust(cur, report: sql.Composable, cfg, sources: list[str]) -> dict:
    cur.execute(
        sql.SQL(
            "SELECT table_name,"
            " max(score) FILTER (WHERE expectation = 'completeness_score') AS completeness,"
            " max(score) FILTER (WHERE expectation = 'accuracy_score') AS accuracy,"
            " bool_and(success) FILTER (WHERE rule = table_name || '.freshness') AS fresh,"
            " max(examples ->> 0) FILTER (WHERE rule = table_name || '.freshness') AS freshness_detail"
            " FROM {} AS report WHERE table_name = ANY(%s) GROUP BY table_name"
        ).format(report),
        (sources,),
    )
    found = {r[0]: r[1:] for r in cur.fetchall()}
    accuracy_min = 1 - cfg.quality_warning_max_share
    scores = []
    for name in sources:
        completeness, accuracy, fresh, detail = found.get(name, (None, None, None, None))
        scores.append(
            {
                "table_name": name,
                "completeness": None if completeness is None else float(completeness),
                "completeness_min": cfg.alert_completeness_min,
                "accuracy": None if accuracy is None else float(accuracy),
                "accuracy_min": accuracy_min,
                "fresh": fresh,
                "freshness_detail": detail,
                "freshness_days": cfg.quality_freshness_days,
            }
        )
    ceilings = {c.rule: getattr(cfg, c.ceiling) for s in _all_suites() for c in s.checks if c.ceiling}
    cur.execute(
        sql.SQL(
            "SELECT rule, table_name, failing_rows, rows_checked, quarantined_rows, examples ->> 0 FROM {} AS report"
            " WHERE severity = 'warning' AND NOT success AND score IS NULL ORDER BY table_name, rule"
        ).format(report)
    )
    warnings = [
        {
            "rule": rule,
            "table_name": table,
            "failing_rows": failing,
            "rows_checked": checked,
            "quarantined_rows": quarantined,
            "ceiling": ceilings.get(rule),
            "message": message if rule not in ceilings else None,
        }
        for rule, table, failing, checked, quarantined, message in cur.fetchall()
    ]
    return {"scores": scores, "warnings": warnings}


def _all_suites():
    from include.customer_performance.quality.suites import AGGREGATE_SUITES, CUSTOMER_METRICS, SOURCE_SUITES

    return (*SOURCE_SUITES, CUSTOMER_METRICS, *AGGREGATE_SUITES)
