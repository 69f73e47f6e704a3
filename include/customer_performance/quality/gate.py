"""The quality gate: run the expectation suites on the staged tables and judge the run.

The gate is five modules, one concern each:

- ``suites.py``: the rules, declared once (severity, what each catches);
- ``runner.py``: Great Expectations on the staged tables (checkpoints, Data Docs, example keys);
- ``flagging.py``: the row rules evaluated in one pass, the ``vld_`` views and the quarantine;
- ``report.py``: the results, the report tables, the scores, the summary line;
- ``outcome.py``: the checks of the month's outcome (empty sources, volume, freshness, NaN);

and this module: the verdict. A critical failure raises ``QualityGateError`` before any
destination. The names below are the gate's public interface, whatever module holds them.
"""

from __future__ import annotations

from include.customer_performance.quality.flagging import (  # noqa: F401 - the gate's interface
    create_valid_views,
    flag_rows,
    flag_suite,
    flagged_by_calculate,
    quarantine,
    suite_checks,
    warning_predicates,
)
from include.customer_performance.quality.report import (  # noqa: F401
    DQ_COLUMNS,
    CheckResult,
    append_results,
    data_docs_result,
    log_summary,
    scores,
    store_results,
)
from include.customer_performance.quality.runner import largest, run_suite, run_suites  # noqa: F401
from include.customer_performance.quality.suites import CRITICAL, INFO, WARNING  # noqa: F401
from include.customer_performance.staging import Run


class QualityGateError(RuntimeError):
    """A critical expectation failed: nothing may be published for this period."""


def raise_on_critical(critical: list[CheckResult], run: Run) -> None:
    if critical:
        lines = "\n".join(f"  - {r.describe()}" for r in critical)
        raise QualityGateError(
            f"data quality gate failed for {run.period} with {len(critical)} critical failure(s); "
            "no destination was touched. Fix the data, then clear 'validate' (with downstream) to rerun the gate on"
            " the staged tables, or clear the extract tasks (with downstream) if you fixed it at the source:"
            f"\n{lines}"
        )
