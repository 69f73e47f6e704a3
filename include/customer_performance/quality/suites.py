"""Expectation suites as code, one per staged table, each expectation with a severity.

``critical``: a failure stops the run before any destination is touched.
``warning``: the offending rows move to a quarantine table (with the rule, the reason and the run)
and the run goes on without them; only row-level rules can be warnings.
``info``: reported, rows kept: the metrics already deal with it (duplicates are deduplicated,
off-scale scores and negative durations ignored), or dropping the row would lose a customer.

Row-level rules are SQL predicates of the offending rows (``bad_rows``), run by GX as an
``UnexpectedRowsExpectation``; the same predicate is what names the rows in the report. Templates
in them: ``{batch}`` (the table under test, filled in by GX), a staged table by its name as in the
SQL models (``{flt_customers}``, ``{customer_metrics}``, ``{fx_rates}``: every known currency,
fx.py; a suite's key tables, ``Suite.keys``, staged before its flagging pass:
``{repeated_transaction_ids}``, ``{probable_duplicate_keys}``, ``{unknown_transaction_customers}``),
``{period_start}`` /
``{period_end}`` (quoted dates).

The outcome checks (quality/outcome.py) are switched on per suite: ``not_empty``, ``volume``,
``freshness_column``, and the ceilings of the warning rules (by share of rows, and of gross amount
for a suite with an ``amount_column``); every numeric column also gets a critical rule against
NaN and Infinity.
"""

from __future__ import annotations

from dataclasses import dataclass

from include.customer_performance.config import settings
from include.customer_performance.metrics import SATISFACTION_MAX, SATISFACTION_MIN
from include.customer_performance.schemas import CUSTOMER_STATUS, INTERACTION_TYPE, TRANSACTION_STATUS

CRITICAL = "critical"
WARNING = "warning"
INFO = "info"

# Completeness of a required field under this share is critical (docs/quality.md, "Data quality gate"; configurable:
# CUSTOMER_PERFORMANCE_QUALITY_REQUIRED_COMPLETENESS).
REQUIRED_COMPLETENESS = settings().quality_required_completeness
# A warning rule may quarantine at most a share of its table's rows (and, in a suite with an
# amount column, of its gross amount); past it the rule fails as critical (outcome.py): the month
# would no longer be the month. Every warning rule names its ceiling here: the setting that holds
# it, read when the gate runs (quality_warning_max_share, quality_warning_max_amount_share: 2 %).
WARNING_CEILING = "quality_warning_max_share"
AMOUNT_CEILING = "quality_warning_max_amount_share"
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
# the values the sources may use (schemas.py names them once)
TRANSACTION_STATUSES = list(TRANSACTION_STATUS.values())
CUSTOMER_STATUSES = list(CUSTOMER_STATUS.values())
INTERACTION_TYPES = list(INTERACTION_TYPE.values())
# Rows whose customer_id the customer database does not know. Written as IN over EXCEPT (hashed
# set operations) rather than NOT IN (SELECT ...), which falls back to a row-by-row subplan when
# the customer ids do not fit in work_mem. ({batch} carries GX's own alias: no alias here.)
UNKNOWN_CUSTOMER = "customer_id IN (SELECT customer_id FROM {batch} EXCEPT SELECT customer_id FROM {flt_customers})"
# The same for the transactions, from the suite's key table of those ids (the same EXCEPT, staged
# beside the other keys: sql/unknown_transaction_customers.sql), so the flagging pass only probes it.
UNKNOWN_TRANSACTION_CUSTOMER = "customer_id IN (SELECT customer_id FROM {unknown_transaction_customers})"
# The rules that group the ten million transactions (ids in several versions, probable
# duplicates) read the suite's key tables (Suite.keys: sql/repeated_transaction_ids.sql,
# sql/probable_duplicate_keys.sql), staged before its flagging pass, side by side on calculate's
# two connections. Each sorts the rows' 64-bit hashes (a hash aggregate of ten million groups
# spills, and text sorts slowly where ids share long prefixes) and groups only the rows whose
# hash repeats, by the key itself in byte order ("C": the same equality, a cheaper comparison).


@dataclass(frozen=True)
class Check:
    """One expectation: its rule name, the GX expectation and kwargs, its severity."""

    rule: str
    expectation: str
    kwargs: dict
    severity: str  # CRITICAL, WARNING or INFO: always written out where the rule is declared
    bad_rows: str | None = None  # SQL predicate of the offending rows, for row-level rules
    catches: str | None = None  # the generator's defect class this rule is there to catch
    ceiling: str | None = None  # a warning rule: the setting holding the share of rows it may quarantine
    description: str = ""  # why the rule exists and what its severity does (shown in the Data Docs)

    def __post_init__(self) -> None:
        if self.severity not in (CRITICAL, WARNING, INFO):
            raise ValueError(f"{self.rule}: severity must be critical, warning or info, not {self.severity!r}")
        if (self.severity == WARNING) != (self.ceiling is not None):
            raise ValueError(f"{self.rule}: a warning rule, and only a warning rule, declares its ceiling")
        if self.ceiling is not None and not hasattr(settings(), self.ceiling):
            raise ValueError(f"{self.rule}: its ceiling {self.ceiling!r} is not a setting (config.py)")
        if not self.description.strip() or any(c in self.description for c in "<>&$"):
            # the Data Docs render it as a template, unescaped: plain words only
            raise ValueError(f"{self.rule}: every rule says why it exists, in plain text (no markup, no $)")

    @property
    def column(self) -> str | None:
        return self.kwargs.get("column")

    def described(self) -> str:
        """What the Data Docs show for the rule: its name, severity (and a warning rule's ceiling),
        and why it exists."""
        ceiling = f", ceiling: setting {self.ceiling}" if self.ceiling else ""
        return f"{self.rule} ({self.severity}{ceiling}): {self.description}"


def rows_rule(
    rule: str,
    bad_rows: str,
    severity: str,
    column: str | None = None,
    catches=None,
    ceiling: str | None = None,
    description: str = "",
) -> Check:
    """A row-level rule: the rows matching ``bad_rows`` are the failures."""
    kwargs = {"unexpected_rows_query": f"SELECT * FROM {{batch}} WHERE {bad_rows}"}
    if column:
        kwargs["column"] = column  # reported, not passed to GX (runner._check leaves it out)
    return Check(rule, "UnexpectedRowsExpectation", kwargs, severity, bad_rows, catches, ceiling, description)


# Figures the models derive for every customer who has bought; missing for more than this share
# of them, the month stops (customer_metrics.<column>.derived). The CLV is expected purchases x
# average order value, written 0 when they are missing: its rule is theirs.
DERIVED_FIGURES = (
    ("churn_probability", "churn probability"),
    ("expected_purchases_12m", "expected purchases (and so the CLV)"),
    ("health_score", "health score"),
)
DERIVED_MISSING_MAX = 0.5


@dataclass(frozen=True)
class Suite:
    name: str
    stage: str  # the staged table the suite runs on (run.table(stage))
    key: str  # the column that identifies a row in failure examples
    checks: tuple[Check, ...]
    not_empty: bool = False  # no rows in the period is critical (unless allowed, see outcome.py)
    volume: bool = False  # rows per day against the recent loaded periods: warning + alert
    freshness_column: str | None = None  # its latest value too long before the period end: warning + alert
    amount_column: str | None = None  # warning rules also have a ceiling on the share of this amount:
    amount_ceiling: str | None = None  # ... the setting holding the share of it
    keys: tuple[str, ...] = ()  # staged tables (SQL models) its rules read, staged before its flagging


CUSTOMERS = Suite(
    name="customers",
    stage="flt_customers",
    key="customer_id",
    not_empty=True,
    checks=(
        Check(
            "customers.customer_id.required",
            "ExpectColumnValuesToNotBeNull",
            {"column": "customer_id"},
            CRITICAL,
            description="Every customer row has an id: without one it joins nothing and counts nowhere.",
        ),
        Check(
            "customers.email.completeness",
            "ExpectColumnValuesToNotBeNull",
            {"column": "email", "mostly": REQUIRED_COMPLETENESS},
            CRITICAL,
            catches="customers.null_email",
            description="At least the required share of customers have an email; below it the customer extract"
            " is broken (a column renamed, a join lost), so the month stops.",
        ),
        rows_rule(
            "customers.email.format",
            f"email IS NOT NULL AND email !~ '{EMAIL_PATTERN}'",
            INFO,
            column="email",
            catches="customers.bad_email",
            description="Emails that are not addresses (no domain, spaces): reported, the customer kept; the"
            " CRM fixes them.",
        ),
        Check(
            "customers.region.completeness",
            "ExpectColumnValuesToNotBeNull",
            {"column": "region", "mostly": REQUIRED_COMPLETENESS},
            INFO,
            catches="customers.null_region",
            description="Customers without a region are kept and grouped as unknown in the regional summary;"
            " reported so the share stays visible.",
        ),
        rows_rule(
            "customers.last_login.not_future",
            "last_login >= {period_end}",
            INFO,
            column="last_login",
            catches="customers.future_last_login",
            description="A last login after the period end is ignored by days_since_last_login; reported"
            " because the source clock or a late sync produced it.",
        ),
        Check(
            "customers.customer_id.unique",
            "ExpectColumnValuesToBeUnique",
            {"column": "customer_id"},
            INFO,
            catches="customers.duplicate_row",
            description="A customer listed twice: the latest version (updated_at) counts; reported because the"
            " source should not keep both.",
        ),
        Check(
            "customers.status.allowed",
            "ExpectColumnValuesToBeInSet",
            {"column": "status", "value_set": CUSTOMER_STATUSES},
            INFO,
            description="A status outside the declared values (schemas.py): reported; the metrics do not use it.",
        ),
    ),
)

TRANSACTIONS = Suite(
    name="transactions",
    stage="flt_transactions",
    key="transaction_id",
    not_empty=True,
    volume=True,
    freshness_column="updated_at",
    amount_column="amount",
    amount_ceiling=AMOUNT_CEILING,
    keys=("repeated_transaction_ids", "probable_duplicate_keys", "unknown_transaction_customers"),
    checks=(
        Check(
            "transactions.amount.completeness",
            "ExpectColumnValuesToNotBeNull",
            {"column": "amount", "mostly": REQUIRED_COMPLETENESS},
            CRITICAL,
            description="At least the required share of sales have an amount; below it the sales extract is"
            " broken, so the month stops.",
        ),
        Check(
            "transactions.transaction_id.required",
            "ExpectColumnValuesToNotBeNull",
            {"column": "transaction_id"},
            CRITICAL,
            description="Every sale has an id: deduplication and the quarantine need it.",
        ),
        rows_rule(
            "transactions.order_date.in_period",
            "order_date < {period_start} OR order_date >= {period_end}",
            CRITICAL,
            column="order_date",
            description="Every sale staged for the period is dated inside it; one outside means the filter or"
            " the extract is wrong, so the month stops.",
        ),
        rows_rule(
            # a row rule here, not ExpectColumnValuesToBeUnique: the ids are grouped once, sorted,
            # into the suite's key table (GX would hash ten million ids, twice)
            "transactions.transaction_id.unique",
            "transaction_id IN (SELECT transaction_id FROM {repeated_transaction_ids})",
            INFO,
            column="transaction_id",
            catches="transactions.duplicate_id",
            description="An id in several versions: the latest (updated_at) counts once, conflicting versions"
            " are logged; reported.",
        ),
        rows_rule(
            "transactions.amount.negative",
            "amount < 0",
            WARNING,
            column="amount",
            catches="transactions.negative_amount",
            ceiling=WARNING_CEILING,
            description="A sale with a negative amount is not a refund (refunds carry status refunded):"
            " quarantined and left out of revenue, up to the ceiling.",
        ),
        rows_rule(
            "transactions.amount.zero",
            "amount = 0",
            WARNING,
            column="amount",
            catches="transactions.zero_amount",
            ceiling=WARNING_CEILING,
            description="A sale of zero carries no revenue and would count as an order: quarantined, up to the"
            " ceiling.",
        ),
        rows_rule(
            "transactions.customer_id.known",
            UNKNOWN_TRANSACTION_CUSTOMER,
            WARNING,
            column="customer_id",
            catches="transactions.unknown_customer",
            ceiling=WARNING_CEILING,
            description="A sale of a customer the customer database does not know cannot be attributed:"
            " quarantined, up to the ceiling.",
        ),
        rows_rule(
            "transactions.updated_at.late_arriving",
            "updated_at >= {period_end}",
            INFO,
            column="updated_at",
            catches="transactions.late_arriving",
            description="A sale updated after the period end arrived late; it counts in its own period,"
            " reported so a rerun of that period is considered.",
        ),
        rows_rule(
            "transactions.probable_duplicate",
            "(customer_id, amount, currency, order_date) IN"
            " (SELECT customer_id, amount, currency, order_date FROM {probable_duplicate_keys})",
            INFO,
            catches="transactions.probable_duplicate",
            description="Same customer, amount, currency and time under another id: flagged"
            " (probable_duplicates), revenue still counts it.",
        ),
        rows_rule(
            "transactions.status.allowed",
            "status IS NULL OR status NOT IN (" + ", ".join(f"'{v}'" for v in TRANSACTION_STATUSES) + ")",
            WARNING,
            column="status",
            ceiling=WARNING_CEILING,
            description="A status the pipeline does not know would be neither a sale nor a refund: quarantined,"
            " up to the ceiling.",
        ),
        rows_rule(
            # a currency the rates table has never held (a known one without a fresh rate fails
            # calculate instead: fx.StaleRatesError); the reporting currency is always known
            "transactions.currency.known",
            "currency IS NULL OR currency NOT IN (SELECT currency FROM {fx_rates})",
            WARNING,
            column="currency",
            catches="transactions.unknown_currency",
            ceiling=WARNING_CEILING,
            description="A currency the rates table has never held (a typo, a code nobody publishes) cannot be"
            " converted and is never counted as 0: quarantined, up to the ceiling.",
        ),
    ),
)

INTERACTIONS = Suite(
    name="interactions",
    stage="flt_interactions",
    key="interaction_id",
    not_empty=True,
    volume=True,
    checks=(
        Check(
            "interactions.interaction_id.unique",
            "ExpectColumnValuesToBeUnique",
            {"column": "interaction_id"},
            CRITICAL,
            description="Each CRM interaction once: a repeated id means the API served a page twice or the"
            " cursor looped, so the month stops.",
        ),
        rows_rule(
            "interactions.satisfaction.scale",
            f"satisfaction_score NOT BETWEEN {SATISFACTION_MIN} AND {SATISFACTION_MAX}",
            INFO,
            column="satisfaction_score",
            catches="interactions.satisfaction_out_of_range",
            description="Scores off the 1 to 10 scale are ignored in the averages; reported.",
        ),
        Check(
            "interactions.satisfaction.completeness",
            "ExpectColumnValuesToNotBeNull",
            {"column": "satisfaction_score", "mostly": 0.9},
            INFO,
            catches="interactions.null_satisfaction",
            description="Interactions without a score are left out of the satisfaction average; reported.",
        ),
        rows_rule(
            "interactions.interaction_type.allowed",
            "interaction_type IS NULL OR interaction_type NOT IN ("
            + ", ".join(f"'{v}'" for v in INTERACTION_TYPES)
            + ")",
            WARNING,
            column="interaction_type",
            ceiling=WARNING_CEILING,
            description="A type the pipeline does not know would count in no channel: quarantined, up to the ceiling.",
        ),
        rows_rule(
            "interactions.customer_id.known",
            UNKNOWN_CUSTOMER,
            WARNING,
            column="customer_id",
            ceiling=WARNING_CEILING,
            description="An interaction of a customer the customer database does not know: quarantined, up to"
            " the ceiling.",
        ),
    ),
)

ACTIVITY = Suite(
    name="customer_activity",
    stage="flt_customer_activity",
    key="session_id",
    not_empty=True,
    volume=True,
    checks=(
        Check(
            "activity.session_id.unique",
            "ExpectColumnValuesToBeUnique",
            {"column": "session_id"},
            CRITICAL,
            description="Each session once: a repeated id means the extract read a row twice, so the month stops.",
        ),
        rows_rule(
            "activity.duration.non_negative",
            "duration_minutes < 0",
            INFO,
            column="duration_minutes",
            catches="activity.negative_duration",
            description="A negative duration counts as a session, not as minutes; reported.",
        ),
    ),
)

CUSTOMER_METRICS = Suite(
    name="customer_metrics",
    stage="customer_metrics",
    key="customer_id",
    not_empty=True,
    checks=(
        Check(
            "customer_metrics.customer_id.required",
            "ExpectColumnValuesToNotBeNull",
            {"column": "customer_id"},
            CRITICAL,
            description="Every metrics row belongs to a customer.",
        ),
        Check(
            "customer_metrics.customer_id.unique",
            "ExpectColumnValuesToBeUnique",
            {"column": "customer_id"},
            CRITICAL,
            description="One row per customer: a join that multiplied rows would double revenue, so the month stops.",
        ),
        Check(
            "customer_metrics.email.completeness",
            "ExpectColumnValuesToNotBeNull",
            {"column": "email", "mostly": REQUIRED_COMPLETENESS},
            CRITICAL,
            description="The published customers carry an email at the required share, as their source does.",
        ),
        Check(
            "customer_metrics.email.format",
            "ExpectColumnValuesToMatchRegex",
            {"column": "email", "regex": EMAIL_PATTERN},
            INFO,
            description="Malformed emails reach the metrics as they are in the source; reported.",
        ),
        Check(
            "customer_metrics.region.completeness",
            "ExpectColumnValuesToNotBeNull",
            {"column": "region", "mostly": REQUIRED_COMPLETENESS},
            INFO,
            description="Customers without a region, grouped as unknown; reported.",
        ),
        Check(
            "customer_metrics.transaction_count.range",
            "ExpectColumnValuesToBeBetween",
            {"column": "transaction_count", "min_value": 0},
            CRITICAL,
            description="Transaction counts are whole numbers from 0: anything else is a broken model, so the"
            " month stops.",
        ),
        Check(
            "customer_metrics.avg_satisfaction.scale",
            "ExpectColumnValuesToBeBetween",
            {"column": "avg_satisfaction", "min_value": SATISFACTION_MIN, "max_value": SATISFACTION_MAX},
            INFO,
            description="Average satisfaction stays on the 1 to 10 scale; reported otherwise.",
        ),
        Check(
            "customer_metrics.engagement_score.range",
            "ExpectColumnValuesToBeBetween",
            {"column": "engagement_score", "min_value": 0, "max_value": 100},
            CRITICAL,
            description="Engagement is a score from 0 to 100: outside it the model is broken, so the month stops.",
        ),
        Check(
            "customer_metrics.churn_probability.range",
            "ExpectColumnValuesToBeBetween",
            {"column": "churn_probability", "min_value": 0, "max_value": 1},
            CRITICAL,
            description="Churn is a probability from 0 to 1: outside it the model is broken, so the month stops.",
        ),
        *(
            rows_rule(
                f"customer_metrics.{column}.derived",
                f"lifetime_purchases > 0 AND {column} IS NULL AND (SELECT count(*) FILTER (WHERE {column} IS NULL)"
                f" > {DERIVED_MISSING_MAX} * count(*) FROM {{customer_metrics}} WHERE lifetime_purchases > 0)",
                CRITICAL,
                column=column,
                description=f"The {what} is there for most customers who have bought: missing for more than half"
                " of them, a model was switched off (a source change, an empty lifetime history), so the month"
                " stops.",
            )
            for column, what in DERIVED_FIGURES
        ),
    ),
)

# The aggregates are checked at the end of `aggregate`, still before any destination.
REGIONAL_SUMMARY = Suite(
    name="regional_summary",
    stage="regional_summary",
    key="grouping_level",
    checks=(
        rows_rule(
            "regional_summary.market_penetration.range",
            "market_penetration < 0 OR market_penetration > 1",
            INFO,
            column="market_penetration",
            description="Market penetration is a share from 0 to 1: above 1, a region has more active customers than"
            " the addressable market the deployment gives it (market_size_file); reported.",
        ),
        rows_rule(
            "regional_summary.total.matches_customers",
            "grouping_level = 'total' AND revenue IS DISTINCT FROM (SELECT sum(revenue) FROM {customer_metrics})",
            CRITICAL,
            column="revenue",
            description="The total row counts every customer and all their revenue: the summary adds up to the"
            " metrics.",
        ),
        rows_rule(
            "regional_summary.regions.sum_to_total",
            "grouping_level = 'region' AND (SELECT sum(revenue) FROM {batch} WHERE grouping_level = 'region')"
            " IS DISTINCT FROM (SELECT revenue FROM {batch} WHERE grouping_level = 'total')",
            CRITICAL,
            column="revenue",
            description="The regions add up to the total: no customer lost or counted twice by the grouping sets.",
        ),
    ),
)
PERFORMANCE_TRENDS = Suite(
    name="performance_trends",
    stage="performance_trends",
    key="bucket_start",
    checks=(
        rows_rule(
            "performance_trends.days.sum_to_total",
            "grain = 'day' AND scope = 'all'"
            " AND (SELECT sum(revenue) FROM {batch} WHERE grain = 'day' AND scope = 'all')"
            " IS DISTINCT FROM (SELECT coalesce(sum(revenue), 0) FROM {customer_metrics})",
            CRITICAL,
            column="revenue",
            description="The days add up to the period's revenue and transactions.",
        ),
        rows_rule(
            "performance_trends.weeks.sum_to_total",
            "grain = 'week' AND scope = 'all'"
            " AND (SELECT sum(revenue) FROM {batch} WHERE grain = 'week' AND scope = 'all')"
            " IS DISTINCT FROM (SELECT coalesce(sum(revenue), 0) FROM {customer_metrics})",
            CRITICAL,
            column="revenue",
            description="The ISO weeks add up to the period's revenue and transactions.",
        ),
    ),
)
KPIS = Suite(
    name="kpis",
    stage="kpis",
    key="customers",
    checks=(
        Check(
            "kpis.one_row",
            "ExpectTableRowCountToEqual",
            {"value": 1},
            CRITICAL,
            description="One KPI row per run: the executive summary, the BI push and the email read exactly one.",
        ),
    ),
)

# The insights reconcile with the metrics they summarise, like the aggregates above.
PERIOD_COMPARISON = Suite(
    name="period_comparison",
    stage="period_comparison",
    key="grouping_level",
    checks=(
        rows_rule(
            "period_comparison.total.matches_customers",
            "grouping_level = 'total' AND (revenue IS DISTINCT FROM (SELECT coalesce(sum(revenue), 0)"
            " FROM {customer_metrics}) OR customers IS DISTINCT FROM (SELECT count(*) FROM {customer_metrics}))",
            CRITICAL,
            column="revenue",
            description="The comparison's total is this period's customers and revenue, the same as the metrics.",
        ),
        rows_rule(
            "period_comparison.regions.sum_to_total",
            "grouping_level = 'region' AND (SELECT sum(revenue) FROM {batch} WHERE grouping_level = 'region')"
            " IS DISTINCT FROM (SELECT revenue FROM {batch} WHERE grouping_level = 'total')",
            CRITICAL,
            column="revenue",
            description="The regions add up to the total this month: growth by region is of every customer once.",
        ),
        rows_rule(
            "period_comparison.rates.range",
            "retention_rate NOT BETWEEN 0 AND 1 OR acquisition_rate < 0"
            " OR retained_customers > previous_active_customers",
            CRITICAL,
            column="retention_rate",
            description="Retention is a share from 0 to 1 of last month's active customers; acquisition is not"
            " negative.",
        ),
    ),
)
INTERACTION_SUMMARY = Suite(
    name="interaction_summary",
    stage="interaction_summary",
    key="grouping_level",
    checks=(
        rows_rule(
            "interaction_summary.total.matches_customers",
            "grouping_level = 'total' AND interactions IS DISTINCT FROM"
            " (SELECT coalesce(sum(interaction_count), 0) FROM {customer_metrics})",
            CRITICAL,
            column="interactions",
            description="The interactions summarised are the customers' interactions counted in the metrics.",
        ),
    ),
)
ENGAGEMENT_HEATMAP = Suite(
    name="engagement_heatmap",
    stage="engagement_heatmap",
    key="weekday",
    checks=(
        rows_rule(
            "engagement_heatmap.sessions.match_logins",
            "(SELECT sum(sessions) FROM {batch}) IS DISTINCT FROM"
            " (SELECT coalesce(sum(login_count), 0) FROM {customer_metrics})",
            CRITICAL,
            column="sessions",
            description="The heatmap's cells add up to the customers' sessions in the metrics.",
        ),
        rows_rule(
            "engagement_heatmap.cell.valid",
            "weekday NOT BETWEEN 1 AND 7 OR hour NOT BETWEEN 0 AND 23",
            CRITICAL,
            column="hour",
            description="A cell is a weekday from 1 (Monday) to 7 and an hour from 0 to 23.",
        ),
    ),
)

SOURCE_SUITES = (CUSTOMERS, TRANSACTIONS, INTERACTIONS, ACTIVITY)
AGGREGATE_SUITES = (
    REGIONAL_SUMMARY,
    PERFORMANCE_TRENDS,
    KPIS,
    PERIOD_COMPARISON,
    INTERACTION_SUMMARY,
    ENGAGEMENT_HEATMAP,
)
SUITES = (*SOURCE_SUITES, CUSTOMER_METRICS)
