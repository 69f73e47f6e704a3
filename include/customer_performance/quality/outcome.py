"""The gate's judgement of the outcome, beside the rules on rows: is this month still the month?

- **Non-finite numbers**: every numeric column of every suite's table gets a critical row rule
  ``<suite>.<column>.finite`` (NaN, Infinity, -Infinity): such a value would reach a mean, a sum
  and an email.
- **Empty sources**: a source dataset with no rows in the period is critical (``<suite>.not_empty``)
  unless the previous loaded period had none either or the run's param ``allow_empty_sources``
  is set; then it is reported as info.
- **Volume**: rows per day against the last three loaded periods, outside
  ``quality_volume_min_ratio`` .. ``quality_volume_max_ratio``: a warning, and an alert; below
  ``quality_volume_stop_ratio`` in a period of ``VOLUME_STOP_MIN_DAYS`` days or more: critical (a
  collapse at the source is an outage until proven otherwise).
- **Freshness**: the latest event (``Suite.freshness_column``) older than
  ``quality_freshness_days`` before the period end, or no row at all: a warning, and an alert.
- **Ceilings**: a warning rule that quarantines more than its ceiling (``Check.ceiling`` of the
  table's rows, or for a suite with ``amount_column`` ``Suite.amount_ceiling`` of its gross
  amount; both named in suites.py, their values the settings) fails as critical, naming the rule,
  the share and the ceiling.

These results are computed in SQL here, not by GX, and go into the same report as GX's.
"""

from __future__ import annotations

from psycopg import sql

from include.customer_performance.period import ReportPeriod
from include.customer_performance.quality.suites import CRITICAL, INFO, WARNING, Check, Suite, rows_rule

NUMERIC_TYPES = ("numeric", "double precision", "real")
NOT_FINITE = "{column} IN ('NaN', 'Infinity', '-Infinity')"


def dataset(suite: Suite) -> str:
    """The dataset a suite's table holds (the filter configuration's key)."""
    return suite.stage.removeprefix("flt_")


def finite_rules(cur, run, suite: Suite) -> tuple[Check, ...]:
    """A critical row rule per numeric column of the suite's staged table."""
    cur.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s"
        " AND data_type = ANY(%s) ORDER BY ordinal_position",
        (run.schema, run.table_name(suite.stage), list(NUMERIC_TYPES)),
    )
    return tuple(
        rows_rule(
            f"{suite.name}.{name}.finite",
            NOT_FINITE.format(column=sql.Identifier(name).as_string(cur)),
            CRITICAL,
            column=name,
            description="NaN or Infinity in a number: it would silently poison every sum and average built on it,"
            " so the month stops before any destination.",
        )
        for (name,) in cur.fetchall()
    )


def _previous_runs(cur, run, cfg, limit: int) -> list[tuple]:
    """``(period_start, period_end, row_counts)`` of the latest loaded periods before this one."""
    cur.execute("SELECT to_regclass(%s)", (f"{cfg.analytics_schema}.pipeline_runs",))
    if cur.fetchone()[0] is None:
        return []
    cur.execute(
        sql.SQL(
            "SELECT period_start, period_end, row_counts FROM {} WHERE period_end <= %s"
            " ORDER BY period_end DESC, loaded_at DESC LIMIT %s"
        ).format(sql.Identifier(cfg.analytics_schema, "pipeline_runs")),
        (run.period.start, limit),
    )
    return cur.fetchall()


def staged_rows(row_counts: dict, name: str) -> int | None:
    """The rows a loaded run had of a dataset after the filter (else as extracted); None if unknown."""
    flt = (row_counts.get("filter_period") or {}).get(name) or {}
    if isinstance(flt.get("rows_out"), int):
        return flt["rows_out"]
    for task, out in row_counts.items():
        if task.startswith("extract_") and isinstance((out or {}).get(name, {}).get("rows"), int):
            return out[name]["rows"]
    return None


VOLUME_STOP_MIN_DAYS = 7


def volume_bounds(cur, run, cfg, name: str = "transactions") -> tuple[int, int, int] | None:
    """Expected rows of dataset ``name`` for the period from the last three loaded periods' rows per
    day: (warning below, warning above, stop below), by the configured ratios; None without
    history."""
    rates = []
    for start, end, counts in _previous_runs(cur, run, cfg, 3):
        n = staged_rows(counts or {}, name)
        if n is not None and end > start:
            rates.append(n / (end - start).days)
    if not rates:
        return None
    expected = sum(rates) / len(rates) * (run.period.end - run.period.start).days
    return (
        int(expected * cfg.quality_volume_min_ratio),
        int(expected * cfg.quality_volume_max_ratio) + 1,
        int(expected * cfg.quality_volume_stop_ratio),
    )


def _result(suite: Suite, rule: str, expectation: str, severity: str, success: bool, detail: str, **kw):
    from include.customer_performance.quality.gate import CheckResult

    return CheckResult(
        suite=suite.name,
        table_name=suite.name,
        column_name=kw.get("column"),
        rule=rule,
        expectation=expectation,
        severity=severity,
        rows_checked=kw.get("rows_checked"),
        failing_rows=kw.get("failing_rows"),
        success=success,
        examples=[detail],
        detail=detail,
    )


def judge(cur, run, suite: Suite, results: list, cfg, table_rows: int) -> list:
    """The outcome checks of one suite (see the module docstring), given its rule results."""
    out = []
    if suite.not_empty:
        out.append(_not_empty(cur, run, suite, cfg, table_rows))
    if suite.volume:
        bounds = volume_bounds(cur, run, cfg, dataset(suite))
        if bounds is not None:
            low, high, stop = bounds
            ok = low <= table_rows <= high
            detail = (
                f"{table_rows} rows in the period; {low} to {high} expected from the last loaded periods"
                f" ({cfg.quality_volume_min_ratio} to {cfg.quality_volume_max_ratio} times their rows per day)"
            )
            severity = WARNING
            if table_rows < stop and (run.period.end - run.period.start).days >= VOLUME_STOP_MIN_DAYS:
                severity = CRITICAL
                detail += (
                    f", and fewer than {stop} ({cfg.quality_volume_stop_ratio} times): rows lost at the source,"
                    " a broken extract or filter? Check the source; if the month really fell this far, lower"
                    " CUSTOMER_PERFORMANCE_QUALITY_VOLUME_STOP_RATIO and clear the run"
                )
            out.append(
                _result(
                    suite,
                    f"{suite.name}.volume",
                    "expect_table_row_count_to_be_between",
                    severity,
                    ok,
                    detail,
                    rows_checked=table_rows,
                )
            )
    if suite.freshness_column:
        out.append(_freshness(cur, run, suite, cfg, table_rows))
    out += _ceilings(cur, run, suite, results, cfg)
    return out


def _not_empty(cur, run, suite: Suite, cfg, table_rows: int):
    rule = f"{suite.name}.not_empty"
    if table_rows > 0:
        return _result(
            suite, rule, "expect_table_row_count_to_be_between", CRITICAL, True, f"{table_rows} rows", rows_checked=0
        )
    previous = _previous_runs(cur, run, cfg, 1)
    before = staged_rows(previous[0][2] or {}, dataset(suite)) if previous else None
    if run.allow_empty_sources:
        severity, why = INFO, "published as empty: the run's param allow_empty_sources is set"
    elif before == 0:
        severity, why = INFO, f"the previous loaded period ({ReportPeriod(*previous[0][:2])}) was empty too"
    else:
        severity = CRITICAL
        why = (
            "a source that delivers nothing is an outage until proven otherwise"
            + (f" (the previous loaded period had {before} rows)" if before else "")
            + ". Check the source and its connection; if the period really had none, trigger the run again"
            " with the param allow_empty_sources = true"
        )
    return _result(
        suite,
        rule,
        "expect_table_row_count_to_be_between",
        severity,
        False,
        f"{dataset(suite)} has no rows in {run.period}: {why}",
        rows_checked=0,
    )


def _freshness(cur, run, suite: Suite, cfg, table_rows: int):
    column = suite.freshness_column
    cur.execute(sql.SQL("SELECT max({}) FROM {}").format(sql.Identifier(column), run.table(suite.stage)))
    latest = cur.fetchone()[0]
    cur.execute("SELECT %s::timestamptz - make_interval(days => %s)", (run.period.end, int(cfg.quality_freshness_days)))
    limit = cur.fetchone()[0]
    ok = latest is not None and latest >= limit
    if latest is None:
        detail = f"no {column} at all: the table has no rows in {run.period}"
    else:
        detail = f"the latest {column} is {latest:%Y-%m-%d %H:%M}; expected on or after {limit:%Y-%m-%d %H:%M}"
    return _result(
        suite,
        f"{suite.name}.freshness",
        "source_freshness",
        WARNING,
        ok,
        detail,
        column=column,
        rows_checked=table_rows,
    )


def _ceilings(cur, run, suite: Suite, results: list, cfg) -> list:
    """A critical result per warning rule over its ceiling."""
    over = [r for r in results if r.severity == WARNING and r.failing_rows and r.rule and r.rows_checked]
    if not over:
        return []
    amounts = _amount_shares(cur, run, suite, [r.rule for r in over]) if suite.amount_column else {}
    ceilings = {c.rule: c.ceiling for c in suite.checks}
    out = []
    for r in over:
        row_share = r.failing_rows / r.rows_checked
        ceiling = getattr(cfg, ceilings[r.rule])
        parts = []
        if row_share > ceiling:
            parts.append(
                f"{row_share:.2%} of the rows ({r.failing_rows} of {r.rows_checked}), over the ceiling {ceiling:.2%}"
            )
        amount_share = amounts.get(r.rule)
        amount_ceiling = getattr(cfg, suite.amount_ceiling) if suite.amount_ceiling else None
        if amount_share is not None and amount_ceiling is not None and amount_share > amount_ceiling:
            parts.append(f"{amount_share:.2%} of the gross amount, over the ceiling {amount_ceiling:.2%}")
        if parts:
            out.append(
                _result(
                    suite,
                    f"{r.rule}.ceiling",
                    "quarantine_ceiling",
                    CRITICAL,
                    False,
                    f"warning rule {r.rule} would quarantine "
                    + " and ".join(parts)
                    + ": too much of the month to leave out; find out why (a source change, a new"
                    " currency or status, a broken customer extract) before publishing",
                    column=r.column_name,
                    rows_checked=r.rows_checked,
                    failing_rows=r.failing_rows,
                )
            )
    return out


def _amount_shares(cur, run, suite: Suite, rules: list[str]) -> dict[str, float]:
    """Per rule, the share of the table's gross amount (absolute, converted at the day's rate; a
    row in a currency without a rate at face value) in the rows it flags."""
    amount = sql.SQL("abs(t.{} * coalesce(r.fx_rate, 1))").format(sql.Identifier(suite.amount_column))
    join = sql.SQL(
        "LEFT JOIN {} AS r ON r.currency = t.currency AND r.day = (t.order_date AT TIME ZONE 'UTC')::date"
    ).format(run.table("fx_rates"))
    cur.execute(sql.SQL("SELECT sum({}) FROM {} AS t {}").format(amount, run.table(suite.stage), join))
    total = cur.fetchone()[0]
    if not total:
        return {}
    cur.execute(
        sql.SQL(
            "SELECT rule, sum({}) FROM {} AS t CROSS JOIN LATERAL unnest(t.failed_rules) AS rule {}"
            " WHERE rule = ANY(%s) GROUP BY rule"
        ).format(amount, run.table(f"dq_flagged_{suite.name}"), join),
        (rules,),
    )
    return {rule: float(v / total) for rule, v in cur.fetchall() if v is not None}
