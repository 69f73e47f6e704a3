"""The package's SQL models, one file per table it produces, loaded by name."""

from __future__ import annotations

import functools
from pathlib import Path

from psycopg import sql

SQL_DIR = Path(__file__).resolve().parent


@functools.cache
def _text(name: str) -> str:
    return (SQL_DIR / f"{name}.sql").read_text()


def model(name: str, **tables: sql.Composable) -> sql.Composed:
    """The SELECT of ``<name>.sql`` with its ``{table}`` placeholders bound to identifiers."""
    return sql.SQL(_text(name)).format(**tables)
