"""Seeded synthetic source data: customers and sessions (PostgreSQL), transactions (MySQL) and
CRM interactions (the CRM stand-in's SQLite store), with every defect class planted at a known rate.

    python dev/generate.py --customers 5000 --month 2025-07 \
        --customer-dsn postgresql://postgres@127.0.0.1/cp_customer \
        --sales-db cp_sales --crm-store .demo/crm.sqlite

Rows are written to temporary tab-separated files and bulk-loaded (PostgreSQL COPY, MariaDB LOAD
DATA LOCAL INFILE, SQLite executemany), so the generator scales from hundreds to millions of rows.
"""

from __future__ import annotations

import argparse
import calendar
import itertools
import json
import random
import sqlite3
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

REGIONS = {
    "North America": {"United States": ["CA", "NY", "TX", "WA", "IL"], "Canada": ["ON", "BC", "QC"]},
    "Europe": {"Germany": ["BY", "BE", "HH"], "France": ["IDF", "PAC"], "United Kingdom": ["ENG", "SCT"]},
    "APAC": {"Australia": ["NSW", "VIC"], "Japan": ["13", "27"], "Singapore": ["SG"]},
    "LATAM": {"Brazil": ["SP", "RJ"], "Mexico": ["CMX", "JAL"]},
}
REGION_WEIGHTS = [0.45, 0.30, 0.15, 0.10]
SEGMENTS = ["enterprise", "mid-market", "smb", "consumer"]
CATEGORIES = ["electronics", "clothing", "services", "home", "software", "books"]
PAYMENTS = ["card", "paypal", "bank_transfer", "invoice"]
FEATURES = ["dashboard", "reports", "alerts", "api", "integrations", "billing", "search", "export"]
INTERACTION_TYPES = ["call", "email", "chat", "ticket"]
DEPARTMENTS = ["support", "sales", "success", "billing"]
FIRST = ["Ada", "Alan", "Grace", "Linus", "Margaret", "Ken", "Barbara", "Dennis", "Frances", "Edsger", "Radia", "Tim"]
LAST = ["Lovelace", "Turing", "Hopper", "Torvalds", "Hamilton", "Thompson", "Liskov", "Ritchie", "Allen", "Dijkstra"]

# Defect classes and the share of rows of their dataset that carry them (design.md: "plants the
# defects real data has"). Printed after every run so tests and people know what to expect.
DEFECT_RATES = {
    "customers.duplicate_row": 0.005,  # the same customer_id twice, an older version beside the new
    "customers.null_email": 0.02,
    "customers.bad_email": 0.015,
    "customers.null_region": 0.01,
    "customers.future_last_login": 0.003,  # last_login after the end of the month
    "transactions.duplicate_id": 0.01,  # the same transaction_id again, a later version
    "transactions.probable_duplicate": 0.005,  # same customer, amount, currency, time; new id
    "transactions.negative_amount": 0.005,
    "transactions.zero_amount": 0.005,
    "transactions.unknown_currency": 0.003,
    "transactions.unknown_customer": 0.002,
    "transactions.late_arriving": 0.01,  # updated_at after the end of the month
    "interactions.satisfaction_out_of_range": 0.005,
    "interactions.null_satisfaction": 0.05,
    "activity.negative_duration": 0.003,
}


@dataclass
class Planted:
    counts: dict
    rows: dict

    def rates(self) -> dict:
        out = {}
        for key, n in self.counts.items():
            total = self.rows[key.split(".")[0]]
            out[key] = {"rows": n, "of": total, "rate": round(n / total, 5) if total else 0.0}
        return out


def month_bounds(month: str) -> tuple[date, date]:
    y, m = map(int, month.split("-"))
    return date(y, m, 1), date(y, m, calendar.monthrange(y, m)[1]) + timedelta(days=1)


def shift_month(d: date, months: int) -> date:
    m = d.month - 1 + months
    return date(d.year + m // 12, m % 12 + 1, 1)


def _ts(d: datetime) -> str:
    return d.strftime("%Y-%m-%d %H:%M:%S")


def _tsv(value: object) -> str:
    if value is None:
        return r"\N"
    s = str(value)
    return s.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


class Generator:
    def __init__(
        self,
        customers: int,
        month: str,
        history_months: int,
        tx_per_customer: float,
        sessions_per_customer: float,
        interactions_per_customer: float,
        seed: int,
        defects: bool,
    ):
        self.n = customers
        self.start, self.end = month_bounds(month)
        self.history_start = shift_month(self.start, -history_months)
        self.tx_rate = tx_per_customer
        self.sess_rate = sessions_per_customer
        self.int_rate = interactions_per_customer
        self.rng = random.Random(seed)
        self.defects = defects
        self.counts = {k: 0 for k in DEFECT_RATES}
        self.rows = {"customers": 0, "transactions": 0, "interactions": 0, "activity": 0}

    def plant(self, key: str) -> bool:
        if self.defects and self.rng.random() < DEFECT_RATES[key]:
            self.counts[key] += 1
            return True
        return False

    def _moment(self, lo: date, hi: date) -> datetime:
        span = (hi - lo).total_seconds()
        return datetime.combine(lo, datetime.min.time()) + timedelta(seconds=int(self.rng.random() * span))

    # -- customers -----------------------------------------------------------------------------
    def customers(self):
        r = self.rng
        regions = list(REGIONS)
        self.activity_weight = {}
        for cid in range(1, self.n + 1):
            region = r.choices(regions, REGION_WEIGHTS)[0]
            country = r.choice(list(REGIONS[region]))
            state = r.choice(REGIONS[region][country])
            first, last = r.choice(FIRST), r.choice(LAST)
            # ~8 % register inside the report month ("new"), the rest over the three years before.
            if r.random() < 0.08:
                reg = self._moment(self.start, self.end).date()
            else:
                reg = self._moment(self.start - timedelta(days=3 * 365), self.start).date()
            status = r.choices(["active", "inactive", "suspended"], [0.85, 0.10, 0.05])[0]
            email = f"{first}.{last}{cid}@example.com".lower()
            if self.plant("customers.null_email"):
                email = None
            elif self.plant("customers.bad_email"):
                email = r.choice([f"{first}.{last}{cid}@", f"{first}{cid}.example.com", f"{first} {last}@example"])
            if self.plant("customers.null_region"):
                region = country = state = None
            last_login = self._moment(max(reg, self.start - timedelta(days=60)), self.end)
            if self.plant("customers.future_last_login"):
                last_login = self._moment(self.end + timedelta(days=2), self.end + timedelta(days=90))
            created = datetime.combine(reg, datetime.min.time()) + timedelta(hours=r.randint(0, 23))
            updated = self._moment(reg, self.end)
            row = [
                cid,
                f"{first} {last}",
                email,
                f"+1-555-{cid % 10000:04d}",
                reg,
                _ts(last_login),
                status,
                region,
                country,
                state,
                r.choice(SEGMENTS),
                _ts(created),
                _ts(updated),
            ]
            # a skewed activity level: a few customers buy a lot (Pareto-like revenue)
            self.activity_weight[cid] = r.paretovariate(1.6) if status == "active" else 0.2
            self.rows["customers"] += 1
            yield row
            if self.plant("customers.duplicate_row"):
                older = list(row)
                older[12] = _ts(created)  # the stale version: updated when created
                older[4] = reg - timedelta(days=1)
                self.rows["customers"] += 1
                yield older

    def _customer_ids(self, per_customer: float, lo: date, hi: date):
        """Customer ids for events in [lo, hi), about ``per_customer`` a month each, skewed."""
        r = self.rng
        months = max(1.0, (hi - lo).days / 30.4)
        ids = list(self.activity_weight)
        weights = [self.activity_weight[c] for c in ids]
        total = sum(weights)
        expected = int(per_customer * len(ids) * months)
        return r.choices(ids, weights=[w / total for w in weights], k=expected)

    # -- transactions --------------------------------------------------------------------------
    def transactions(self):
        r = self.rng
        seq = 0
        for lo, hi in ((self.history_start, self.start), (self.start, self.end)):
            in_month = lo == self.start
            for cid in self._customer_ids(self.tx_rate if in_month else self.tx_rate * 0.8, lo, hi):
                seq += 1
                tid = f"T{seq:010d}"
                when = self._moment(lo, hi)
                amount = round(min(5000.0, r.lognormvariate(3.9, 0.8)), 2)
                currency = r.choices(["USD", "EUR", "GBP"], [0.8, 0.12, 0.08])[0]
                status = r.choices(["completed", "refunded", "pending", "cancelled"], [0.9, 0.04, 0.03, 0.03])[0]
                if in_month:
                    if self.plant("transactions.negative_amount"):
                        amount = -amount
                    elif self.plant("transactions.zero_amount"):
                        amount = 0.0
                    if self.plant("transactions.unknown_currency"):
                        currency = r.choice(["XXX", "ZZZ", "US$"])
                    if self.plant("transactions.unknown_customer"):
                        cid = self.n + 1_000_000 + seq
                updated = when + timedelta(minutes=r.randint(0, 120))
                if in_month and self.plant("transactions.late_arriving"):
                    updated = self._moment(self.end, self.end + timedelta(days=5))
                qty = r.randint(1, 5)
                row = [
                    tid,
                    cid,
                    _ts(when),
                    f"{amount:.2f}",
                    currency,
                    r.choice(CATEGORIES),
                    qty,
                    r.choice(PAYMENTS),
                    status,
                    f"{amount * r.choice([0, 0, 0.05, 0.1]):.2f}",
                    f"{amount * 0.08:.2f}",
                    _ts(updated),
                ]
                if in_month:
                    self.rows["transactions"] += 1
                yield row
                if in_month and self.plant("transactions.duplicate_id"):
                    again = list(row)
                    again[11] = _ts(updated + timedelta(hours=1))
                    again[8] = "completed" if status != "completed" else status
                    self.rows["transactions"] += 1
                    yield again
                if in_month and self.plant("transactions.probable_duplicate"):
                    seq += 1
                    twin = list(row)
                    twin[0] = f"T{seq:010d}"
                    self.rows["transactions"] += 1
                    yield twin

    # -- sessions ------------------------------------------------------------------------------
    def activity(self):
        r = self.rng
        lo = shift_month(self.start, -1)
        for seq, cid in enumerate(self._customer_ids(self.sess_rate, lo, self.end), start=1):
            when = self._moment(lo, self.end)
            minutes = round(r.expovariate(1 / 18), 2)
            if when.date() >= self.start:
                self.rows["activity"] += 1
                if self.plant("activity.negative_duration"):
                    minutes = -minutes
            yield [seq, cid, "login", _ts(when), f"{minutes:.2f}", r.choice(FEATURES)]

    # -- CRM interactions ----------------------------------------------------------------------
    def interactions(self):
        r = self.rng
        lo = shift_month(self.start, -1)
        for seq, cid in enumerate(self._customer_ids(self.int_rate, lo, self.end), start=1):
            when = self._moment(lo, self.end)
            kind = r.choices(INTERACTION_TYPES, [0.25, 0.3, 0.25, 0.2])[0]
            in_month = when.date() >= self.start
            satisfaction = r.choices(range(1, 11), [1, 1, 2, 3, 5, 7, 10, 12, 8, 5])[0]
            if in_month:
                self.rows["interactions"] += 1
                if self.plant("interactions.null_satisfaction"):
                    satisfaction = None
                elif self.plant("interactions.satisfaction_out_of_range"):
                    satisfaction = r.choice([0, 11, 42, -1])
            resolution = r.choices(["resolved", "open", "escalated"], [0.75, 0.1, 0.15])[0]
            hours = round(r.expovariate(1 / 16.7), 2) if resolution != "open" else None
            yield (
                f"I{seq:010d}",
                cid,
                kind,
                when.isoformat() + "+00:00",
                round(r.expovariate(1 / 12), 2),
                satisfaction,
                resolution,
                hours,
                f"A{r.randint(1, 60):03d}",
                r.choice(DEPARTMENTS),
            )

    def planted(self) -> Planted:
        return Planted(self.counts, self.rows)


CUSTOMER_DDL = """
DROP TABLE IF EXISTS customers;
DROP TABLE IF EXISTS customer_activity;
CREATE TABLE customers (
    customer_id bigint NOT NULL, name text, email text, phone text, registration_date date,
    last_login timestamptz, status text, region text, country text, state text, segment text,
    created_at timestamptz, updated_at timestamptz
);
CREATE TABLE customer_activity (
    session_id bigint PRIMARY KEY, customer_id bigint NOT NULL, activity_type text,
    session_start timestamptz NOT NULL, duration_minutes numeric(10, 2), feature text
);
"""
CUSTOMER_INDEXES = """
CREATE INDEX ON customers (registration_date);
CREATE INDEX ON customer_activity (session_start);
ANALYZE customers; ANALYZE customer_activity;
"""
SALES_DDL = [
    "DROP TABLE IF EXISTS transactions",
    """CREATE TABLE transactions (
        transaction_id varchar(40) NOT NULL, customer_id bigint NOT NULL, order_date datetime NOT NULL,
        amount decimal(14, 2), currency char(3), product_category varchar(50), quantity int,
        payment_method varchar(30), status varchar(20), discount_applied decimal(14, 2),
        tax_amount decimal(14, 2), updated_at datetime,
        KEY ix_order_date (order_date), KEY ix_customer (customer_id)
    ) ENGINE=InnoDB""",
]
CRM_DDL = """
DROP TABLE IF EXISTS interactions;
CREATE TABLE interactions (
    interaction_id text PRIMARY KEY, customer_id integer, interaction_type text, interaction_date text,
    duration_minutes real, satisfaction_score real, resolution_status text, resolution_hours real,
    agent_id text, department text
);
CREATE INDEX ix_interactions_date ON interactions (interaction_date, interaction_id);
"""


def load_customer_db(gen: Generator, dsn: str, tmp: Path) -> None:
    import psycopg

    with psycopg.connect(dsn, autocommit=False) as conn, conn.cursor() as cur:
        cur.execute(CUSTOMER_DDL)
        for table, rows in (("customers", gen.customers()), ("customer_activity", gen.activity())):
            with cur.copy(f"COPY {table} FROM STDIN") as copy:
                buf = []
                for row in rows:
                    buf.append("\t".join(_tsv(v) for v in row))
                    if len(buf) >= 10_000:
                        copy.write("\n".join(buf) + "\n")
                        buf.clear()
                if buf:
                    copy.write("\n".join(buf) + "\n")
        cur.execute(CUSTOMER_INDEXES)
        conn.commit()


def load_sales_db(gen: Generator, mysql_kwargs: dict, tmp: Path) -> None:
    import MySQLdb

    path = tmp / "transactions.tsv"
    with path.open("w") as fh:
        for row in gen.transactions():
            fh.write("\t".join(_tsv(v) for v in row) + "\n")
    conn = MySQLdb.connect(**mysql_kwargs, local_infile=1)
    try:
        cur = conn.cursor()
        for stmt in SALES_DDL:
            cur.execute(stmt)
        cur.execute(
            f"LOAD DATA LOCAL INFILE '{path}' INTO TABLE transactions FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\'"
            " LINES TERMINATED BY '\\n'"
        )
        cur.execute("ANALYZE TABLE transactions")
        cur.fetchall()
        conn.commit()
    finally:
        conn.close()


def load_crm_store(gen: Generator, store: Path) -> None:
    store.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(store)
    try:
        conn.executescript(CRM_DDL)
        rows = gen.interactions()
        while batch := list(itertools.islice(rows, 10_000)):
            conn.executemany("INSERT INTO interactions VALUES (?,?,?,?,?,?,?,?,?,?)", batch)
        conn.commit()
    finally:
        conn.close()


def generate(
    customers: int,
    month: str,
    customer_dsn: str,
    mysql_kwargs: dict,
    crm_store: Path,
    seed: int = 42,
    history_months: int = 3,
    tx_per_customer: float = 10.0,
    sessions_per_customer: float = 5.0,
    interactions_per_customer: float = 2.0,
    defects: bool = True,
) -> dict:
    """Create and fill the three sources; returns what was planted, per defect class."""
    gen = Generator(
        customers,
        month,
        history_months,
        tx_per_customer,
        sessions_per_customer,
        interactions_per_customer,
        seed,
        defects,
    )
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="cp-gen-") as tmp:
        load_customer_db(gen, customer_dsn, Path(tmp))
        load_sales_db(gen, mysql_kwargs, Path(tmp))
        load_crm_store(gen, crm_store)
    planted = gen.planted()
    return {
        "month": month,
        "seed": seed,
        "seconds": round(time.monotonic() - t0, 1),
        "rows_in_month": planted.rows,
        "defects": planted.rates(),
        "config": asdict(planted)["rows"],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--customers", type=int, default=5000)
    p.add_argument("--month", default="2025-07")
    p.add_argument("--history-months", type=int, default=3)
    p.add_argument("--tx-per-customer", type=float, default=10.0)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--no-defects", action="store_true")
    p.add_argument("--customer-dsn", required=True, help="libpq DSN of the customer database")
    p.add_argument("--sales-db", required=True, help="MariaDB/MySQL database name")
    p.add_argument("--mysql-host", default="127.0.0.1")
    p.add_argument("--mysql-port", type=int, default=3306)
    p.add_argument("--mysql-user", default="root")
    p.add_argument("--mysql-password", default="")
    p.add_argument("--crm-store", type=Path, required=True)
    a = p.parse_args(argv)
    result = generate(
        a.customers,
        a.month,
        a.customer_dsn,
        {
            "host": a.mysql_host,
            "port": a.mysql_port,
            "user": a.mysql_user,
            "passwd": a.mysql_password,
            "db": a.sales_db,
        },
        a.crm_store,
        seed=a.seed,
        history_months=a.history_months,
        tx_per_customer=a.tx_per_customer,
        defects=not a.no_defects,
    )
    json.dump(result, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
