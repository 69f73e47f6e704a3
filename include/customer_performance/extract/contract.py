"""Source contract checks: the columns a source must have, checked before any row is read."""

from __future__ import annotations

from collections.abc import Mapping

from include.customer_performance.schemas import FAMILIES, Dataset


class SourceContractError(RuntimeError):
    """A source table lacks a column the pipeline reads, or the column changed type."""


def check_columns(actual: Mapping[str, str], dataset: Dataset, where: str) -> None:
    """Compare the source's ``{column: data_type}`` with the dataset; extra columns are ignored.

    ``where`` names the connection and table for the error, e.g. ``sales_db: transactions``.
    """
    actual = {k.lower(): v.lower() for k, v in actual.items()}
    if not actual:
        raise SourceContractError(f"{where}: table not found or has no columns")
    problems = []
    for col in dataset.columns:
        found = actual.get(col.name)
        if found is None:
            problems.append(f"column {col.name!r} is missing (expected {col.family})")
        elif found.split("(")[0].strip() not in FAMILIES[col.family]:
            problems.append(f"column {col.name!r} is {found}, expected {col.family}")
    if problems:
        raise SourceContractError(f"{where}: " + "; ".join(problems))
