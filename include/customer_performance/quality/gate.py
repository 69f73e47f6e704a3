"""Run the expectation suites with GX Core on the staged tables and judge the run.

GX computes every metric with SQL in the analytics database; nothing is pulled into pandas.
Column expectations run on the staged table itself. Row-level rules are first evaluated together,
in one pass over the table, into ``dq_flagged_<suite>_<run>`` (the rows failing any rule, with
the rules they fail); GX then judges each rule on that table. At ten million rows this turns a
dozen scans (GX runs each rule's query twice, once to count and once to fetch rows) into one,
and the examples and the quarantine read the same small table. The outcome of every check is
written to the run's staged ``dq_results`` table, which the destinations publish as the data
quality report.
"""

from __future__ import annotations

import json
import logging
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from psycopg import sql

from include.customer_performance.db import Connect, on_own_connection
from include.customer_performance.quality.suites import (
    CRITICAL,
    INFO,
    SUITES,
    WARNING,
    Check,
    Suite,
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
    detail: str | None = None  # what an outcome check (quality/outcome.py) found, in words

    def describe(self) -> str:
        col = f", column {self.column_name}" if self.column_name else ""
        if self.detail:
            return f"{self.rule} on {self.table_name}{col}: {self.detail}"
        return (
            f"{self.expectation} ({self.rule}) on {self.table_name}{col}: {self.failing_rows} of"
            f" {self.rows_checked} rows fail (examples: {self.examples[:5]})"
        )


def suite_checks(suite: Suite, run: Run | None = None, cur=None) -> tuple[Check, ...]:
    """The suite's checks, plus (given the run and a cursor) a critical rule against NaN and
    Infinity for each numeric column of its staged table (quality/outcome.py)."""
    if run is None or cur is None:
        return suite.checks
    from include.customer_performance.quality.outcome import finite_rules

    return (*suite.checks, *finite_rules(cur, run, suite))


def _templates(run: Run) -> dict[str, str]:
    return {
        "batch": "{batch}",  # left for GX to fill in
        "customers": run.table("flt_customers").as_string(None),
        "metrics": run.table("customer_metrics").as_string(None),
        "rates": run.table("fx_rates").as_string(None),
        "period_start": f"'{run.period.start.isoformat()}'",
        "period_end": f"'{run.period.end.isoformat()}'",
    }


def _quiet_gx() -> None:
    for name in ("great_expectations", "great_expectations._docs_decorators"):
        logging.getLogger(name).setLevel(logging.WARNING)


def flag_rows(cur, run: Run, suite: Suite, checks: tuple[Check, ...]) -> sql.Composed:
    """``dq_flagged_<suite>``: the rows of the suite's table failing any of its row rules, each
    with ``failed_rules`` (text[]); one pass, each rule's subqueries computed once."""
    src = run.table(suite.stage)
    target = run.table(f"dq_flagged_{suite.name}")
    templates = {**_templates(run), "batch": src.as_string(cur)}
    cases = [
        sql.SQL("CASE WHEN coalesce((" + c.bad_rows.format(**templates) + "), false) THEN {} END").format(
            sql.Literal(c.rule)
        )
        for c in checks
        if c.bad_rows
    ]
    drop_relation(cur, target)
    cur.execute(
        sql.SQL(
            "CREATE UNLOGGED TABLE {target} AS SELECT * FROM"
            # OFFSET 0 keeps the subquery whole: pulled up, each rule (and its subqueries) would be
            # evaluated twice, once for failed_rules and once for the WHERE
            " (SELECT t.*, array_remove(ARRAY[{cases}]::text[], NULL) AS failed_rules FROM {src} AS t OFFSET 0) AS f"
            " WHERE cardinality(failed_rules) > 0"
        ).format(target=target, src=src, cases=sql.SQL(", ").join(cases) if cases else sql.SQL("NULL"))
    )
    return target


def flag_suite(cur, run: Run, suite: Suite, checks: tuple[Check, ...] | None = None) -> sql.Composed | None:
    """Flag the suite's rows (see flag_rows) and commit: GX reads through its own connection."""
    row_rules = tuple(c for c in checks or suite_checks(suite, run, cur) if c.bad_rows)
    flagged = flag_rows(cur, run, suite, row_rules) if row_rules else None
    cur.connection.commit()
    return flagged


def run_suite(context, datasource, run: Run, suite: Suite, cur, flagged: Future | None = None) -> list[CheckResult]:
    """GX on one suite: the column expectations on the suite's table, then the row rules on its
    flagged rows. ``flagged``: those rows being flagged elsewhere (else flagged here), awaited
    only once the column expectations are done."""
    checks = suite_checks(suite, run, cur)
    row_rules = tuple(c for c in checks if c.bad_rows)
    columns = tuple(c for c in checks if not c.bad_rows)
    results = _check(context, datasource, run, f"{suite.name}.table", run.table_name(suite.stage), columns)
    flagged = flagged.result() if flagged is not None else flag_suite(cur, run, suite, checks)
    results += _check(
        context, datasource, run, f"{suite.name}.rows", run.table_name(f"dq_flagged_{suite.name}"), row_rules
    )
    cur.execute(sql.SQL("SELECT count(*) FROM {}").format(run.table(suite.stage)))
    table_rows = cur.fetchone()[0]
    by_rule = {c.rule: c for c in checks}
    out = []
    for r in results:
        check = by_rule[r.expectation_config.meta["rule"]]
        res = r.result or {}
        observed = res.get("observed_value")
        if check.bad_rows:
            failing = observed if isinstance(observed, int) else None
            examples = _examples(cur, suite, check, flagged) if failing else []
            rows_checked = table_rows
        else:
            failing = res.get("unexpected_count", 0 if r.success else None)
            examples = _column_examples(cur, run, suite, check) if failing else []
            rows_checked = res.get("element_count", table_rows)
        out.append(
            CheckResult(
                suite=suite.name,
                table_name=suite.name,
                column_name=check.column,
                rule=check.rule,
                expectation=r.expectation_config.type,
                severity=check.severity,
                rows_checked=rows_checked,
                failing_rows=failing,
                success=bool(r.success),
                examples=examples,
            )
        )
    order = {c.rule: i for i, c in enumerate(checks)}
    from include.customer_performance.config import settings
    from include.customer_performance.quality.outcome import judge

    out.sort(key=lambda x: order[x.rule])
    return out + judge(cur, run, suite, out, settings(), table_rows)


def _check(context, datasource, run: Run, name: str, table: str, checks: tuple[Check, ...]) -> list:
    """One GX checkpoint of ``checks`` on a staged table (a row rule reads the rows flagged with
    it); returns GX's expectation results."""
    if not checks:
        return []
    import great_expectations as gx
    import great_expectations.expectations as gxe

    asset = datasource.add_table_asset(name, table_name=table, schema_name=run.schema)
    gx_suite = context.suites.add(gx.ExpectationSuite(name=name))
    for check in checks:
        kwargs = dict(check.kwargs)
        if check.bad_rows:
            kwargs = {
                "unexpected_rows_query": f"SELECT * FROM {{batch}} WHERE failed_rules @> ARRAY[{_quote(check.rule)}]"
            }
        gx_suite.add_expectation(getattr(gxe, check.expectation)(**kwargs, meta={"rule": check.rule}))
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=name, data=asset.add_batch_definition_whole_table("whole"), suite=gx_suite)
    )
    checkpoint = context.checkpoints.add(
        gx.Checkpoint(
            name=name,
            validation_definitions=[definition],
            actions=[],  # Data Docs are built once, by run_suites, from the stored results
            # counts only: GX would otherwise put sampled values (emails, ids from a source) in its
            # results and its Data Docs pages; the examples are the failing rows' keys (_column_examples)
            result_format={"result_format": "SUMMARY", "partial_unexpected_count": 0},
        )
    )
    return [r for v in checkpoint.run().run_results.values() for r in v.results]


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _examples(cur, suite: Suite, check: Check, flagged: sql.Composed) -> list[str]:
    """A few keys of the rows a row-level rule rejects."""
    cur.execute(
        sql.SQL("SELECT {} FROM {} WHERE failed_rules @> ARRAY[%s] ORDER BY 1 LIMIT 5").format(
            sql.Identifier(suite.key), flagged
        ),
        (check.rule,),
    )
    return [str(r[0]) for r in cur.fetchall()]


def _column_predicate(check: Check) -> tuple[sql.Composable, dict] | None:
    """The rows a column expectation rejects, as SQL (None for table-level expectations)."""
    col = sql.Identifier(check.column) if check.column else None
    kw = check.kwargs
    match check.expectation:
        case "ExpectColumnValuesToNotBeNull":
            return sql.SQL("{} IS NULL").format(col), {}
        case "ExpectColumnValuesToBeUnique":
            return sql.SQL("{c} IN (SELECT {c} FROM {{table}} GROUP BY 1 HAVING count(*) > 1)").format(c=col), {}
        case "ExpectColumnValuesToMatchRegex":
            return sql.SQL("{} !~ %(regex)s").format(col), {"regex": kw["regex"]}
        case "ExpectColumnValuesToBeInSet":
            return sql.SQL("{} <> ALL(%(values)s)").format(col), {"values": list(kw["value_set"])}
        case "ExpectColumnValuesToBeBetween":
            return (
                sql.SQL("{c} < %(low)s OR {c} > %(high)s").format(c=col),
                {"low": kw.get("min_value", float("-inf")), "high": kw.get("max_value", float("inf"))},
            )
    return None


def _column_examples(cur, run: Run, suite: Suite, check: Check) -> list[str]:
    """A few keys of the rows a column expectation rejects: keys, never the values themselves (an
    email address, or text from a source that a report or a page might render)."""
    found = _column_predicate(check)
    if found is None:
        return []
    predicate, params = found
    table = run.table(suite.stage)
    predicate = sql.SQL(predicate.as_string(cur).replace("{table}", table.as_string(cur)))
    cur.execute(
        sql.SQL("SELECT {key}::text FROM {table} WHERE {predicate} ORDER BY 1 LIMIT 5").format(
            key=sql.Identifier(suite.key), table=table, predicate=predicate
        ),
        params,
    )
    return [str(r[0]) for r in cur.fetchall()]


def run_suites(
    run: Run,
    sqlalchemy_url: str,
    cur,
    suites: tuple[Suite, ...] = SUITES,
    docs_dir: Path | None = None,
    connect: Connect | None = None,
) -> list[CheckResult]:
    """Run the suites with GX on the committed staged tables; with ``docs_dir``, GX also writes its
    Data Docs (an HTML site of the suites and their results) there. With ``connect`` (a second
    connection to the analytics database), the largest table's rows are flagged on it while GX
    checks the other suites, and that suite is checked last (it starts before GX is imported:
    the import alone takes seconds)."""
    results: dict[str, list[CheckResult]] = {}
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="gate-flag") as pool:
        ahead: dict[str, Future] = {}
        if connect is not None and len(suites) > 1:
            big = largest(cur, run, suites)
            ahead[big.name] = pool.submit(on_own_connection, connect, _flag, run, big)
        context, datasource = _gx_context(sqlalchemy_url, docs_dir)
        for suite in sorted(suites, key=lambda x: x.name in ahead):
            results[suite.name] = run_suite(context, datasource, run, suite, cur, ahead.get(suite.name))
    if docs_dir is not None:
        # one build of the site from the validation results the checkpoints stored (an update
        # action per checkpoint would rebuild the site once per validation)
        context.build_data_docs(site_names=["run"])
    return [r for suite in suites for r in results[suite.name]]


def _gx_context(sqlalchemy_url: str, docs_dir: Path | None):
    """An ephemeral GX context on the analytics database; with ``docs_dir``, a Data Docs site
    there. Returns the context and its datasource."""
    _quiet_gx()
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    if docs_dir is not None:
        context.add_data_docs_site(
            site_name="run",
            site_config={
                "class_name": "SiteBuilder",
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
                "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
            },
        )
    return context, context.data_sources.add_postgres("analytics_db", connection_string=sqlalchemy_url)


def largest(cur, run: Run, suites: tuple[Suite, ...]) -> Suite:
    """The suite whose table has the most rows, by the planner's statistics (a ``flt_`` stage is
    a view over the staged table of the same name without the prefix)."""
    tables = {suite.name: run.table_name(suite.stage.removeprefix("flt_")) for suite in suites}
    cur.execute(
        "SELECT c.relname, c.reltuples FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %s AND c.relname = ANY(%s)",
        (run.schema, list(tables.values())),
    )
    rows = dict(cur.fetchall())
    return max(suites, key=lambda suite: rows.get(tables[suite.name], 0))


def _flag(conn, run: Run, suite: Suite) -> sql.Composed | None:
    with conn.cursor() as cur:
        return flag_suite(cur, run, suite)


def warning_predicates(cur, run: Run, suite: Suite) -> list[tuple[Check, str]]:
    """The suite's warning rules with their predicates bound to the run's tables."""
    templates = {**_templates(run), "batch": run.table(suite.stage).as_string(cur)}
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


def quarantine(cur, run: Run, results: list[CheckResult], suites: tuple[Suite, ...]) -> dict[str, int]:
    """Keep the rows failing a warning rule, with rule, reason and run, in ``dq_quarantine_<name>``
    (a row failing two rules twice, once per rule), copied from the suite's flagged rows;
    ``vld_<dataset>`` (see create_valid_views), which the metrics are computed from, leaves them
    out. Rebuilt on every run of the gate."""
    failed = {r.rule for r in results if r.severity == WARNING and r.failing_rows}
    templates = _templates(run)
    moved = {}
    for suite in suites:
        src = run.table(suite.stage)
        flagged = run.table(f"dq_flagged_{suite.name}")
        target = run.table(f"dq_quarantine_{suite.name}")
        cur.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s"
            " ORDER BY ordinal_position",
            (run.schema, run.table_name(suite.stage)),
        )
        cols = sql.SQL(", ").join(sql.Identifier(r[0]) for r in cur.fetchall())
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
        f"gate {'PASSED' if summary['success'] else 'FAILED'}: {len(results)} checks; failed: {by[CRITICAL]} critical,"
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


def raise_on_critical(critical: list[CheckResult], run: Run) -> None:
    if critical:
        lines = "\n".join(f"  - {r.describe()}" for r in critical)
        raise QualityGateError(
            f"data quality gate failed for {run.period} with {len(critical)} critical failure(s); "
            "no destination was touched. Fix the data, then clear 'validate' (with downstream) to rerun the gate on"
            " the staged tables, or clear the extract tasks (with downstream) if you fixed it at the source:"
            f"\n{lines}"
        )
