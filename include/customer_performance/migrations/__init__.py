"""Versioned migrations of the analytics schema: ``NNNN_<name>.sql`` files applied in order.

``migrate`` records each applied file in ``<schema>.schema_migrations`` (version, name, checksum)
and applies only the pending ones, in the caller's transaction and under an advisory lock, so two
runs starting at once apply each file exactly once. A file changed after it was applied is an
error: write a new migration instead. ``{schema}`` in a file is the analytics schema (other
braces would be read as placeholders too: write none).

    python -m include.customer_performance migrate     # the load also runs it before every publish
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from psycopg import sql

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent
_NAME = re.compile(r"^(\d{4})_(\w+)\.sql$")


class MigrationError(RuntimeError):
    pass


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    text: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()


def migrations(folder: Path = MIGRATIONS_DIR) -> list[Migration]:
    found = []
    for path in sorted(folder.glob("*.sql")):
        m = _NAME.match(path.name)
        if not m:
            raise MigrationError(f"{path}: a migration file is named NNNN_<name>.sql")
        found.append(Migration(int(m[1]), m[2], path.read_text()))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"{folder}: two migration files share a version number: {versions}")
    return found


def migrate(cur, schema: str, folder: Path = MIGRATIONS_DIR) -> list[str]:
    """Bring ``schema`` up to the newest migration; returns the names applied now. The caller
    commits (a failing migration rolls back with everything else in the transaction)."""
    cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"customer_performance:migrate:{schema}",))
    cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
    table = sql.Identifier(schema, "schema_migrations")
    cur.execute("SELECT to_regclass(%s), to_regclass(%s)", (f"{schema}.schema_migrations", f"{schema}.pipeline_runs"))
    versioned, tables = cur.fetchone()
    if versioned is None and tables is not None:
        raise MigrationError(
            f"schema {schema} holds this package's tables but no schema_migrations: it was created by a build"
            " before versioned migrations. Drop the schema (its months can be backfilled) or record the"
            " migrations it matches in schema_migrations by hand"
        )
    cur.execute(
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} (version integer PRIMARY KEY, name text NOT NULL,"
            " checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        ).format(table)
    )
    cur.execute(sql.SQL("SELECT version, name, checksum FROM {}").format(table))
    applied = {v: (n, c) for v, n, c in cur.fetchall()}
    done = []
    for m in migrations(folder):
        if m.version in applied:
            name, checksum = applied[m.version]
            if checksum != m.checksum:
                raise MigrationError(
                    f"migration {m.version:04d}_{m.name} was changed after it was applied to schema {schema}"
                    f" (as {m.version:04d}_{name}); put the change in a new migration file instead"
                )
            continue
        log.info("applying migration %04d_%s to schema %s", m.version, m.name, schema)
        cur.execute(sql.SQL(m.text).format(schema=sql.Identifier(schema)))
        cur.execute(
            sql.SQL("INSERT INTO {} (version, name, checksum) VALUES (%s, %s, %s)").format(table),
            (m.version, m.name, m.checksum),
        )
        done.append(f"{m.version:04d}_{m.name}")
    return done
