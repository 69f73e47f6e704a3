"""Expectation suites as code, one per staged table, each expectation with a severity.

``critical``: a failure stops the run before any destination is touched.
``warning``: recorded in the data quality report; the run continues.
"""

from __future__ import annotations

from dataclasses import dataclass, field

CRITICAL = "critical"
WARNING = "warning"

# Completeness of a required field under this share is critical (design.md).
REQUIRED_COMPLETENESS = 0.95


@dataclass(frozen=True)
class Check:
    """One expectation: the GX expectation class name, its kwargs, and its severity."""

    expectation: str
    kwargs: dict = field(default_factory=dict)
    severity: str = CRITICAL

    @property
    def column(self) -> str | None:
        return self.kwargs.get("column")


@dataclass(frozen=True)
class Suite:
    name: str
    stage: str  # the staged table the suite runs on (run.table(stage))
    key: str  # the column that identifies a row in failure examples
    checks: tuple[Check, ...]


CUSTOMER_METRICS = Suite(
    name="customer_metrics",
    stage="customer_metrics",
    key="customer_id",
    checks=(
        Check("ExpectTableRowCountToBeBetween", {"min_value": 1}),
        Check("ExpectColumnValuesToNotBeNull", {"column": "customer_id"}),
        Check("ExpectColumnValuesToBeUnique", {"column": "customer_id"}),
        Check("ExpectColumnValuesToNotBeNull", {"column": "email", "mostly": REQUIRED_COMPLETENESS}),
        Check("ExpectColumnValuesToMatchRegex", {"column": "email", "regex": r"^[^@\s]+@[^@\s]+\.[^@\s]+$"}, WARNING),
        Check("ExpectColumnValuesToNotBeNull", {"column": "region", "mostly": REQUIRED_COMPLETENESS}, WARNING),
        Check("ExpectColumnValuesToBeBetween", {"column": "transaction_count", "min_value": 0}),
        Check(
            "ExpectColumnValuesToBeBetween", {"column": "avg_satisfaction", "min_value": 1, "max_value": 10}, WARNING
        ),
    ),
)

SUITES = (CUSTOMER_METRICS,)
