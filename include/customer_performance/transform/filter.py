"""The filter engine: the seed's JSON filter configuration, validated and compiled to SQL.

A configuration per dataset has ``conditions`` (``field``, ``operator``, ``value``, ``logic``),
``caseSensitive`` and ``nullHandling`` (``exclude``: a NULL field fails the condition;
``include``: it passes). Conditions fold left to right: ``((c1 <logic2> c2) <logic3> c3)``; the
first condition's ``logic`` is ignored. Values may use ``{{ period_start }}``, ``{{ period_end }}``
and ``{{ report_month }}``. Values are always bound parameters; fields must be columns of the
dataset, so no text from the configuration ever becomes SQL.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from psycopg import sql

from include.customer_performance.period import ReportPeriod
from include.customer_performance.schemas import DATASETS, Dataset
from include.customer_performance.staging import analyze, drop_relation

COMPARISONS = {
    "equals": "=",
    "not_equals": "<>",
    "greater": ">",
    "greater_than": ">",
    "greater_equal": ">=",
    "less": "<",
    "less_than": "<",
    "less_equal": "<=",
}
TEXT_MATCH = {"contains", "starts_with", "ends_with"}
OPERATORS = set(COMPARISONS) | TEXT_MATCH | {"between", "in", "not_in", "is_null", "is_not_null"}
_TEMPLATE = re.compile(r"\{\{\s*(\w+)\s*\}\}")


class FilterConfigError(ValueError):
    """The filter configuration is invalid; the message names the dataset and condition."""


@dataclass(frozen=True)
class Condition:
    field: str
    operator: str
    value: object
    logic: str


@dataclass(frozen=True)
class DatasetFilter:
    dataset: Dataset
    conditions: tuple[Condition, ...]
    case_sensitive: bool
    null_handling: str


def load_filters(path: Path, period: ReportPeriod) -> dict[str, DatasetFilter]:
    """Read, template and validate the whole configuration file."""
    try:
        raw = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise FilterConfigError(f"filter configuration {path}: {exc}") from exc
    return parse_filters(raw, period, source=str(path))


def parse_filters(raw: object, period: ReportPeriod, source: str = "filter configuration") -> dict[str, DatasetFilter]:
    if not isinstance(raw, dict):
        raise FilterConfigError(f"{source}: expected an object keyed by dataset ({', '.join(DATASETS)})")
    unknown = set(raw) - set(DATASETS)
    if unknown:
        raise FilterConfigError(f"{source}: unknown dataset(s) {sorted(unknown)}; known: {', '.join(DATASETS)}")
    return {name: parse_dataset_filter(DATASETS[name], cfg, period, source) for name, cfg in raw.items()}


def parse_dataset_filter(dataset: Dataset, cfg: object, period: ReportPeriod, source: str) -> DatasetFilter:
    where = f"{source}: {dataset.name}"
    if not isinstance(cfg, dict):
        raise FilterConfigError(f"{where}: expected an object with 'conditions'")
    extra = set(cfg) - {"conditions", "caseSensitive", "nullHandling"}
    if extra:
        raise FilterConfigError(f"{where}: unknown key(s) {sorted(extra)}")
    conds = cfg.get("conditions", [])
    if not isinstance(conds, list):
        raise FilterConfigError(f"{where}: 'conditions' must be a list")
    case_sensitive = cfg.get("caseSensitive", False)
    if not isinstance(case_sensitive, bool):
        raise FilterConfigError(f"{where}: 'caseSensitive' must be true or false")
    null_handling = cfg.get("nullHandling", "exclude")
    if null_handling not in ("exclude", "include"):
        raise FilterConfigError(f"{where}: 'nullHandling' must be 'exclude' or 'include', got {null_handling!r}")
    templates = {k: v.isoformat() for k, v in period.as_params().items()}
    parsed = tuple(
        _parse_condition(dataset, c, i, f"{where} condition {i + 1}", templates) for i, c in enumerate(conds)
    )
    return DatasetFilter(dataset, parsed, case_sensitive, null_handling)


def _template(value: object, templates: Mapping[str, str], where: str) -> object:
    if isinstance(value, list):
        return [_template(v, templates, where) for v in value]
    if not isinstance(value, str):
        return value

    def sub(m: re.Match) -> str:
        if m.group(1) not in templates:
            raise FilterConfigError(f"{where}: unknown template variable {m.group(1)!r}; known: {', '.join(templates)}")
        return templates[m.group(1)]

    return _TEMPLATE.sub(sub, value)


def _check_scalar(value: object, family: str, where: str) -> object:
    if family in ("integer", "numeric"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise FilterConfigError(f"{where}: value {value!r} must be a number for a {family} field")
        return value
    if family in ("date", "timestamp"):
        if not isinstance(value, str):
            raise FilterConfigError(f"{where}: value {value!r} must be an ISO date string")
        try:
            return date.fromisoformat(value) if family == "date" and len(value) == 10 else datetime.fromisoformat(value)
        except ValueError:
            raise FilterConfigError(f"{where}: value {value!r} is not an ISO date or timestamp") from None
    if not isinstance(value, str):
        raise FilterConfigError(f"{where}: value {value!r} must be a string for a text field")
    return value


def _parse_condition(dataset: Dataset, raw: object, index: int, where: str, templates: Mapping[str, str]) -> Condition:
    if not isinstance(raw, dict):
        raise FilterConfigError(f"{where}: expected an object with field, operator, value, logic")
    field, op = raw.get("field"), raw.get("operator")
    if field not in dataset.column_names:
        raise FilterConfigError(
            f"{where}: unknown field {field!r}; {dataset.name} has {', '.join(dataset.column_names)}"
        )
    if op not in OPERATORS:
        raise FilterConfigError(f"{where}: unknown operator {op!r}; known: {', '.join(sorted(OPERATORS))}")
    logic = str(raw.get("logic", "AND")).upper()
    if logic not in ("AND", "OR"):
        raise FilterConfigError(f"{where}: logic must be AND or OR, got {raw.get('logic')!r}")
    family = dataset.column(field).family
    value = _template(raw.get("value"), templates, where)
    if op in ("is_null", "is_not_null"):
        value = None
    elif op in ("between", "in", "not_in"):
        if not isinstance(value, list) or not value or (op == "between" and len(value) != 2):
            want = "a list of two values" if op == "between" else "a non-empty list"
            raise FilterConfigError(f"{where}: operator {op} needs {want}, got {value!r}")
        value = [_check_scalar(v, family, where) for v in value]
    elif op in TEXT_MATCH:
        if family != "text":
            raise FilterConfigError(f"{where}: operator {op} applies to text fields; {field} is {family}")
        value = _check_scalar(value, family, where)
    else:
        value = _check_scalar(value, family, where)
    return Condition(field, op, value, logic)


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def condition_sql(cond: Condition, flt: DatasetFilter) -> tuple[sql.Composable, list]:
    """The condition as a boolean SQL expression that is never NULL, and its bound parameters."""
    col = sql.Identifier(cond.field)
    text = flt.dataset.column(cond.field).family == "text"
    fold = text and not flt.case_sensitive
    params: list = []

    def fold_case(x: object) -> object:
        if isinstance(x, list):
            return [fold_case(i) for i in x]
        return x.lower() if fold and isinstance(x, str) else x

    def v(x: object) -> sql.Composable:
        params.append(fold_case(x))
        return sql.Placeholder()

    lhs = sql.SQL("lower({})").format(col) if fold else col
    op = cond.operator
    if op == "is_null":
        return sql.SQL("({} IS NULL)").format(col), params
    if op == "is_not_null":
        return sql.SQL("({} IS NOT NULL)").format(col), params
    if op in COMPARISONS:
        expr = sql.SQL("{} {} {}").format(lhs, sql.SQL(COMPARISONS[op]), v(cond.value))
    elif op == "between":
        expr = sql.SQL("{} BETWEEN {} AND {}").format(lhs, v(cond.value[0]), v(cond.value[1]))
    elif op in ("in", "not_in"):
        expr = sql.SQL("{} {} ALL({})" if op == "not_in" else "{} {} ANY({})").format(
            lhs, sql.SQL("<>" if op == "not_in" else "="), v(list(cond.value))
        )
    else:
        pattern = _like_escape(cond.value.lower() if fold else cond.value)
        pattern = {"contains": f"%{pattern}%", "starts_with": f"{pattern}%", "ends_with": f"%{pattern}"}[op]
        expr = sql.SQL("{} LIKE {}").format(lhs, v(pattern))
    if flt.null_handling == "include":
        return sql.SQL("({} IS NULL OR {})").format(col, expr), params
    return sql.SQL("COALESCE({}, FALSE)").format(expr), params


def where_sql(flt: DatasetFilter) -> tuple[sql.Composable, list]:
    """All conditions folded left to right (TRUE when there are none), and their parameters."""
    if not flt.conditions:
        return sql.SQL("TRUE"), []
    expr, params = condition_sql(flt.conditions[0], flt)
    for cond in flt.conditions[1:]:
        right, more = condition_sql(cond, flt)
        expr = sql.SQL("({} {} {})").format(expr, sql.SQL(cond.logic), right)
        params += more
    return expr, params


def apply_filter(cur, flt: DatasetFilter, source: sql.Composable, target: sql.Composable) -> dict:
    """Make ``target`` hold the rows of ``source`` that pass; count what each condition removed.

    One scan counts, per condition, the rows that fail it (whatever the other conditions say) and
    the rows the combined expression removes. When it removes none, which is the usual case since
    the period window is already pushed down to the sources, ``target`` is a view of ``source``
    rather than a copy of every row.
    """
    where, where_params = where_sql(flt)
    counts, params = [sql.SQL("count(*)"), sql.SQL("count(*) FILTER (WHERE NOT {})").format(where)], list(where_params)
    for cond in flt.conditions:
        expr, more = condition_sql(cond, flt)
        counts.append(sql.SQL("count(*) FILTER (WHERE NOT {})").format(expr))
        params += more
    cur.execute(sql.SQL("SELECT {} FROM {}").format(sql.SQL(", ").join(counts), source), params)
    rows_in, removed_total, *removed = cur.fetchone()
    drop_relation(cur, target)
    if removed_total == 0:
        cur.execute(sql.SQL("CREATE VIEW {} AS SELECT * FROM {}").format(target, source))
    else:
        cur.execute(sql.SQL("CREATE UNLOGGED TABLE {} (LIKE {})").format(target, source))
        cur.execute(sql.SQL("INSERT INTO {} SELECT * FROM {} WHERE {}").format(target, source, where), where_params)
        analyze(cur, target)
    return {
        "rows_in": rows_in,
        "rows_out": rows_in - removed_total,
        "conditions": [
            {"field": c.field, "operator": c.operator, "removed": n}
            for c, n in zip(flt.conditions, removed, strict=True)
        ],
    }
