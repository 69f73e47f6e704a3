"""The source contracts and the staged tables they land in: one column list per dataset.

The same list drives the contract check on the source, the staging DDL, the SELECT pushed down to
the source, and the filter's field validation, so a column is declared exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass

# Type families a source column may have; the contract check compares families, not exact types,
# so varchar(40) and text, or int and bigint, both pass.
FAMILIES = {
    "integer": {"smallint", "integer", "bigint", "int", "tinyint", "mediumint"},
    "numeric": {"numeric", "decimal", "double precision", "real", "double", "float"},
    "text": {"text", "character varying", "varchar", "char", "character", "enum", "tinytext", "mediumtext", "longtext"},
    "date": {"date"},
    "timestamp": {"timestamp with time zone", "timestamp without time zone", "datetime", "timestamp"},
}
PG_TYPES = {"integer": "bigint", "numeric": "numeric", "text": "text", "date": "date", "timestamp": "timestamptz"}

# The values the sources use, named once: the SQL models bind them as parameters (``value_params``:
# ``%(status_sale)s``, ``%(type_ticket)s``, ...) and the gate's rules accept exactly these.
TRANSACTION_STATUS = {"sale": "completed", "refund": "refunded", "pending": "pending", "cancelled": "cancelled"}
CUSTOMER_STATUS = {"active": "active", "inactive": "inactive", "suspended": "suspended"}
INTERACTION_TYPE = {"call": "call", "email": "email", "chat": "chat", "ticket": "ticket"}
RESOLUTION = {  # an interaction's outcome (others: open, ...); false_positive: a security alert that was none
    "resolved": "resolved",
    "escalated": "escalated",
    "false_positive": "false_positive",
}
DEPARTMENT = {"security": "security"}  # the security operations department: its interactions are incidents
PRIORITY = {"critical": "critical"}  # the priority of a critical incident (others: low, medium, high)


def value_params() -> dict[str, str]:
    """The source values above as named SQL parameters."""
    return (
        {f"status_{k}": v for k, v in TRANSACTION_STATUS.items()}
        | {f"type_{k}": v for k, v in INTERACTION_TYPE.items()}
        | {f"resolution_{k}": v for k, v in RESOLUTION.items()}
        | {f"department_{k}": v for k, v in DEPARTMENT.items()}
        | {f"priority_{k}": v for k, v in PRIORITY.items()}
    )


@dataclass(frozen=True)
class Column:
    name: str
    family: str  # a key of FAMILIES
    optional: bool = False  # an API record may leave it out (NULL); the CRM's only (crm_api.Record)

    @property
    def pg_type(self) -> str:
        return PG_TYPES[self.family]


@dataclass(frozen=True)
class Dataset:
    """One source dataset: where it lives, its columns, and the column its period window is on."""

    name: str  # staged table prefix and filter-config key
    source_table: str  # table (or API resource) at the source
    event_column: str
    columns: tuple[Column, ...]

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"{self.name} has no column {name!r}; columns: {', '.join(self.column_names)}")


def _cols(*spec: str) -> tuple[Column, ...]:
    """``name:family`` or ``name:family:optional``."""
    return tuple(Column(*item.split(":")[:2], optional=item.endswith(":optional")) for item in spec)


CUSTOMERS = Dataset(
    name="customers",
    source_table="customers",
    event_column="registration_date",
    columns=_cols(
        "customer_id:integer",
        "name:text",
        "email:text",
        "phone:text",
        "registration_date:date",
        "last_login:timestamp",
        "status:text",
        "region:text",
        "country:text",
        "state:text",
        "segment:text",
        "created_at:timestamp",
        "updated_at:timestamp",
    ),
)

ACTIVITY = Dataset(
    name="customer_activity",
    source_table="customer_activity",
    event_column="session_start",
    columns=_cols(
        "session_id:integer",
        "customer_id:integer",
        "activity_type:text",
        "session_start:timestamp",
        "duration_minutes:numeric",
        "feature:text",
    ),
)

TRANSACTIONS = Dataset(
    name="transactions",
    source_table="transactions",
    event_column="order_date",
    columns=_cols(
        "transaction_id:text",
        "customer_id:integer",
        "order_date:timestamp",
        "amount:numeric",
        "currency:text",
        "product_category:text",
        "quantity:integer",
        "payment_method:text",
        "status:text",
        "discount_applied:numeric",
        "tax_amount:numeric",
        "updated_at:timestamp",
    ),
)

INTERACTIONS = Dataset(
    name="interactions",
    source_table="/v1/interactions",
    event_column="interaction_date",
    columns=_cols(
        "interaction_id:text",
        "customer_id:integer",
        "interaction_type:text",
        "interaction_date:timestamp",
        "duration_minutes:numeric",
        "satisfaction_score:numeric",
        "resolution_status:text",
        "resolution_hours:numeric",
        "agent_id:text",
        "department:text",
        "priority:text:optional",
    ),
)

DATASETS = {d.name: d for d in (CUSTOMERS, ACTIVITY, TRANSACTIONS, INTERACTIONS)}

# Staged only (not filtered): the lifetime purchase summary per customer up to the period end,
# aggregated inside the sales database. One row per (customer, currency) with that currency's
# monetary value, plus one row per customer with currency NULL covering all currencies (recency,
# purchase count and distinct purchase days for the churn model).
CUSTOMER_HISTORY = Dataset(
    name="customer_history",
    source_table="transactions",
    event_column="last_purchase",
    columns=_cols(
        "customer_id:integer",
        "currency:text",
        "first_purchase:timestamp",
        "last_purchase:timestamp",
        "purchases:integer",
        "purchase_days:integer",
        "monetary:numeric",
    ),
)
