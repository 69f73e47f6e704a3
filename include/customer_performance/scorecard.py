"""The scorecard: the weights and thresholds of the per-customer metrics, read from a validated file.

The package's ``scorecard.json`` lists every key with its default (``metrics.DEFAULTS``, where each
is explained); a deployment points the setting ``scorecard_config``
(``CUSTOMER_PERFORMANCE_SCORECARD_CONFIG``) at its own file, which may give only the keys it
changes. An invalid file is rejected before any data moves (every extract checks it first), with a
``ScorecardError`` naming the key: an unknown key, a value of the wrong type or out of its range,
weights that sum to nothing, bands out of order.
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass
from pathlib import Path

from include.customer_performance import metrics


class ScorecardError(ValueError):
    """The scorecard file is invalid; the message names the file and the key."""


# key path -> (kind, low, high): kind "number" (int or float), "int"; bounds inclusive
_WEIGHT = ("number", 0.0, 1e6)
_SCORE = ("number", 0.0, 100.0)
_SHARE = ("number", 0.0, 1.0)
_PART = ("part", 0.0, 1.0)  # a share of customers: above 0, at most 1
RULES: dict[str, tuple[str, float, float]] = {
    **{f"engagement.weights.{k}": _WEIGHT for k in metrics.DEFAULTS["engagement"]["weights"]},
    "activity.high_engagement": _SCORE,
    "activity.high_min_purchases": ("int", 0, 1e9),
    "activity.low_engagement": _SCORE,
    **{f"health.weights.{k}": _WEIGHT for k in metrics.DEFAULTS["health"]["weights"]},
    "health.bands.green": _SCORE,
    "health.bands.yellow": _SCORE,
    "health.trend_delta": _SCORE,
    "risk.high_risk_churn": _SHARE,
    "risk.renewal_likely_churn": _SHARE,
    "segments.vip_share": _PART,
    "pareto.top_share": _PART,
    "risk.active_gaps": ("number", 0.1, 100.0),
    "risk.active_days": ("int", 0, 365),
    "risk.active_login_days": ("int", 0, 3650),
    "risk.save_list_size": ("int", 1, 10000),
    "risk.win_back_list_size": ("int", 1, 10000),
    "churn.no_purchase_days": ("int", 7, 730),
    "churn.horizon_days": ("int", 1, 3650),
    "churn.training_months": ("int", 2, 36),
    "churn.min_training_rows": ("int", 100, 1e9),
    "churn.max_training_rows": ("int", 1000, 1e9),
    "churn.min_repeat_customers": ("int", 1, 1e9),
    "churn.fallback_gap_days": ("number", 1.0, 3650.0),
    "churn.penalizer": ("number", 0.0, 1e3),
}


@dataclass(frozen=True)
class Scorecard:
    values: dict  # the nested values, every key present
    source: str  # the file it came from

    def get(self, key: str):
        node = self.values
        for part in key.split("."):
            node = node[part]
        return node

    def sql_params(self) -> dict[str, float | str]:
        """The values as named parameters of the SQL models, with the satisfaction scale and the
        sources' status and type values (schemas.value_params)."""
        from include.customer_performance.schemas import value_params

        v = self.values
        params = {f"engagement_w_{k}": w for k, w in v["engagement"]["weights"].items()} | value_params()
        params |= {f"health_w_{k}": w for k, w in v["health"]["weights"].items()}
        return params | {
            "activity_high_engagement": v["activity"]["high_engagement"],
            "activity_high_min_purchases": v["activity"]["high_min_purchases"],
            "activity_low_engagement": v["activity"]["low_engagement"],
            "high_risk_churn": v["risk"]["high_risk_churn"],
            "renewal_likely_churn": v["risk"]["renewal_likely_churn"],
            "segment_vip_share": v["segments"]["vip_share"],
            "health_green": v["health"]["bands"]["green"],
            "health_yellow": v["health"]["bands"]["yellow"],
            "health_trend_delta": v["health"]["trend_delta"],
            "pareto_top_share": v["pareto"]["top_share"],
            "satisfaction_min": metrics.SATISFACTION_MIN,
            "satisfaction_max": metrics.SATISFACTION_MAX,
        }


def _merge(base: dict, override: object, where: str, source: str) -> None:
    if not isinstance(override, dict):
        raise ScorecardError(f"scorecard {source}: {where or 'the file'} must be a JSON object")
    for key, value in override.items():
        path = f"{where}.{key}" if where else str(key)
        if key not in base:
            known = ", ".join(sorted(base))
            raise ScorecardError(f"scorecard {source}: unknown key {path!r} (known here: {known})")
        if isinstance(base[key], dict):
            _merge(base[key], value, path, source)
        else:
            base[key] = value


def _check(key: str, value: object, source: str) -> None:
    kind, low, high = RULES[key]
    ok_type = isinstance(value, int) if kind == "int" else isinstance(value, int | float)
    ok = ok_type and not isinstance(value, bool)
    if ok:
        try:  # an integer too large for a float is out of range, not an OverflowError
            ok = math.isfinite(value) and (low < value if kind == "part" else low <= value) and value <= high
        except OverflowError:
            ok = False
    if not ok:
        what = {"int": "an integer from", "part": "a number above"}.get(kind, "a number from")
        shown = json.dumps(value)
        raise ScorecardError(
            f"scorecard {source}: {key} must be {what} {low:g} {'and at most' if kind == 'part' else 'to'} {high:g},"
            f" got {shown[:40]}"
        )


def parse(raw: object, source: str = "scorecard") -> Scorecard:
    """Validate ``raw`` (the parsed JSON) over the defaults."""
    values = copy.deepcopy(metrics.DEFAULTS)
    _merge(values, raw, "", source)
    card = Scorecard(values, source)
    for key in RULES:
        _check(key, card.get(key), source)
    for group in ("engagement.weights", "health.weights"):
        if sum(card.get(group).values()) <= 0:
            raise ScorecardError(f"scorecard {source}: the {group} must not all be 0")
    if card.get("health.bands.yellow") > card.get("health.bands.green"):
        raise ScorecardError(f"scorecard {source}: health.bands.yellow must not be above health.bands.green")
    if card.get("activity.low_engagement") > card.get("activity.high_engagement"):
        raise ScorecardError(f"scorecard {source}: activity.low_engagement must not be above activity.high_engagement")
    if card.get("risk.renewal_likely_churn") > card.get("risk.high_risk_churn"):
        raise ScorecardError(f"scorecard {source}: risk.renewal_likely_churn must not be above risk.high_risk_churn")
    return card


def load(path: Path | str) -> Scorecard:
    """Read and validate the scorecard file ``path``."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ScorecardError(f"scorecard {path}: {exc}") from exc
    return parse(raw, str(path))


def current() -> Scorecard:
    """The scorecard of this deployment (the setting ``scorecard_config``)."""
    from include.customer_performance.config import settings

    return load(settings().scorecard_config)


def stage(cur, run, card: Scorecard) -> None:
    """Fix ``card`` for the run: the staged table ``scorecard`` (one row), which every later task of
    the run reads (``of_run``), so that a file edited mid-run, or a task cleared after a deploy,
    never mixes two scorecards in one month's figures."""
    from psycopg import sql

    target = run.table("scorecard")
    cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(target))
    cur.execute(sql.SQL("CREATE UNLOGGED TABLE {} (source text, scorecard jsonb)").format(target))
    cur.execute(sql.SQL("INSERT INTO {} VALUES (%s, %s)").format(target), (card.source, json.dumps(card.values)))


def of_run(cur, run) -> Scorecard:
    """The scorecard the run's calculate fixed (``stage``)."""
    from psycopg import sql

    cur.execute(sql.SQL("SELECT source, scorecard FROM {}").format(run.table("scorecard")))
    source, values = cur.fetchone()
    return parse(values, f"{source} (as staged for run {run.run_id})")
