"""Great Expectations Core on the staged tables: one ephemeral context per task, a checkpoint per
suite part (column expectations on the staged table, row rules on its flagged rows), Data Docs
built once; the results turned into the report's ``CheckResult`` rows, with example keys.

GX computes every metric with SQL in the analytics database; nothing is pulled into pandas. At ten
million rows flagging the row rules first (flagging.py) turns a dozen scans (GX runs each rule's
query twice, once to count and once to fetch rows) into one."""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from psycopg import sql

from include.customer_performance.db import Connect, on_own_connection
from include.customer_performance.quality.flagging import _flag, flag_suite, suite_checks
from include.customer_performance.quality.report import CheckResult
from include.customer_performance.quality.suites import SUITES, Check, Suite
from include.customer_performance.staging import Run

log = logging.getLogger(__name__)


def _quiet_gx() -> None:
    for name in ("great_expectations", "great_expectations._docs_decorators"):
        logging.getLogger(name).setLevel(logging.WARNING)


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
        gx_suite.add_expectation(
            getattr(gxe, check.expectation)(**kwargs, meta={"rule": check.rule}, description=check.described())
        )
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
    flagged: tuple[str, ...] = (),
) -> list[CheckResult]:
    """Run the suites with GX on the committed staged tables; with ``docs_dir``, GX also writes its
    Data Docs (an HTML site of the suites and their results) there. With ``connect`` (a second
    connection to the analytics database), the largest table's rows are flagged on it while GX
    checks the other suites, and that suite is checked last (it starts before GX is imported:
    the import alone takes seconds). ``flagged``: the suites whose rows this run's calculate
    flagged already, from the same staged rows (``dq_flagged_<suite>``), judged as they are."""
    results: dict[str, list[CheckResult]] = {}
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="gate-flag") as pool:
        ahead: dict[str, Future] = {}
        for suite in suites:
            if suite.name in flagged:
                ahead[suite.name] = done = Future()
                done.set_result(run.table(f"dq_flagged_{suite.name}"))
        rest = tuple(suite for suite in suites if suite.name not in flagged)
        if connect is not None and len(rest) > 1:
            big = largest(cur, run, rest)
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
    # no server-side prepared statements (psycopg's default prepares a query run 5 times): behind a
    # transaction-pooling PgBouncer the next transaction may be another server session's
    return context, context.data_sources.add_postgres(
        "analytics_db", connection_string=sqlalchemy_url, kwargs={"connect_args": {"prepare_threshold": None}}
    )


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


def gx_url(cfg) -> str:
    """The analytics database for GX's own connection, with the transforms' work_mem as a startup
    option. A pooler that refuses startup options (PgBouncer: "unsupported startup parameter") gets
    the URL without it: GX's queries then run with the role's or database's work_mem (README,
    "Connection pooling")."""
    import psycopg
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    hook = PostgresHook(postgres_conn_id=cfg.analytics_db_conn_id)
    plain = hook.sqlalchemy_url
    url = plain.update_query_dict({"options": f"-c work_mem={cfg.transform_work_mem}"})
    c = hook.get_connection(cfg.analytics_db_conn_id)
    try:
        psycopg.connect(
            host=c.host,
            port=c.port or 5432,
            user=c.login,
            password=c.password,
            dbname=c.schema,
            options=f"-c work_mem={cfg.transform_work_mem}",
            connect_timeout=10,
        ).close()
    except psycopg.OperationalError as exc:
        if "startup parameter" not in str(exc):
            raise
        log.info("the analytics database refuses startup options (a pooler): GX runs with the server's work_mem")
        url = plain
    return url.render_as_string(hide_password=False)
