"""Every defect class the generator plants is caught, at the planted rate, by an expectation.

The generator counts what it planted exactly. Copies of rows (a customer's stale second version, a
transaction's later version, a probable-duplicate twin) inherit their original's defects, so for
classes they can overlap with, the failing rows lie between the planted count and the planted
count plus those copies; for the others they must match exactly.
"""

import psycopg
import pytest

from dev.generate import DEFECT_RATES
from dev.stack import pg_dsn
from include.customer_performance.quality.gate import suite_checks
from include.customer_performance.quality.suites import SUITES
from include.customer_performance.staging import run_key
from tests.conftest import LOGICAL_DATE

RULE_FOR = {c.catches: c.rule for s in SUITES for c in suite_checks(s) if c.catches}


@pytest.fixture(scope="module")
def results(stack, july_run):
    with psycopg.connect(pg_dsn(stack.analytics_db)) as conn:
        rows = conn.execute(
            # the period's rows: a later run of the same period (the rerun test) replaces them
            "SELECT rule, failing_rows, rows_checked, severity FROM analytics.data_quality_results"
            " WHERE report_month = '2025-07-01' AND period_end = '2025-08-01'"
        ).fetchall()
    return {rule: (failing, checked, severity) for rule, failing, checked, severity in rows}


def planted(stack, defect: str) -> int:
    return stack.planted["defects"][defect]["rows"]


def test_every_planted_class_has_a_rule():
    assert set(RULE_FOR) == set(DEFECT_RATES)


@pytest.mark.parametrize("defect", sorted(DEFECT_RATES))
def test_defect_class_is_caught_at_the_planted_rate(stack, results, defect):
    n = planted(stack, defect)
    assert n > 0, f"the test data plants no {defect}; the test would prove nothing"
    failing, checked, severity = results[RULE_FOR[defect]]
    customer_copies = planted(stack, "customers.duplicate_row")
    tx_copies = planted(stack, "transactions.duplicate_id") + planted(stack, "transactions.probable_duplicate")
    if defect in ("customers.duplicate_row", "transactions.duplicate_id"):
        assert failing == 2 * n  # the original and its copy share the id
    elif defect == "transactions.probable_duplicate":
        assert 2 * n <= failing <= 2 * n + planted(stack, "transactions.duplicate_id")
    elif defect.startswith("customers."):
        assert n <= failing <= n + customer_copies
    elif defect.startswith("transactions."):
        assert n <= failing <= n + tx_copies
    else:
        assert failing == n
    assert checked > failing
    rate = stack.planted["defects"][defect]["rate"]
    assert failing / checked == pytest.approx(rate * (2 if "duplicate" in defect else 1), rel=0.35, abs=0.002)


def test_data_docs_are_written_with_the_run_artifacts(stack, july_run):
    docs = stack.export_dir / "2025-07" / "data_docs" / run_key(LOGICAL_DATE, july_run["run_id"])
    for part in ("sources", "customer_metrics", "aggregates"):
        assert (docs / part / "index.html").is_file(), part
    validations = docs / "sources" / "validations"
    assert {p.name for p in validations.iterdir()} == {"customers", "transactions", "interactions", "customer_activity"}
    pages = [p.read_text() for p in validations.rglob("*.html")]
    assert any("transactions.amount.negative" in p or "amount &lt; 0" in p or "amount < 0" in p for p in pages)
    # every rule's description (suites.py) is what the Data Docs say of it: name, severity, ceiling, why
    from include.customer_performance.quality.suites import TRANSACTIONS

    negative = next(c for c in TRANSACTIONS.checks if c.rule == "transactions.amount.negative")
    assert any(negative.described() in p for p in pages)


def test_quarantined_rows_are_kept_with_rule_reason_and_run(stack, july_run):
    with psycopg.connect(pg_dsn(stack.analytics_db)) as conn:
        key = run_key(LOGICAL_DATE, july_run["run_id"])
        rows = conn.execute(
            "SELECT rule, count(*), min(reason), count(DISTINCT run_id) FROM"
            f" cp_staging.dq_quarantine_transactions_{key} GROUP BY rule ORDER BY rule"
        ).fetchall()
        reported = dict(
            conn.execute(
                "SELECT rule, quarantined_rows FROM analytics.data_quality_results"
                " WHERE report_month = '2025-07-01' AND period_end = '2025-08-01' AND quarantined_rows > 0"
            ).fetchall()
        )
    by_rule = {rule: n for rule, n, _, _ in rows}
    assert {"transactions.amount.negative", "transactions.customer_id.known", "transactions.currency.known"} <= set(
        by_rule
    )
    assert all(reason.startswith(rule) and runs == 1 for rule, _, reason, runs in rows)
    assert {r: n for r, n in by_rule.items()} == {r: n for r, n in reported.items() if r.startswith("transactions.")}
