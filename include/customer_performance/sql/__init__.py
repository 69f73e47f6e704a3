"""The package's SQL models, one file per table it produces, loaded by name.

A model reads its inputs through ``{placeholders}`` named after what they stand for, as dbt's
``ref()``: a declared staged table (stages.py) is bound to the run's table of that name
(``{int_transactions}`` is ``cp_staging.int_transactions_<run key>``); any other placeholder (a
relation computed by the caller, e.g. ``{previous}``) must be given by name. ``%(name)s`` are
bound parameters.
"""

from __future__ import annotations

import functools
import string
from pathlib import Path

from psycopg import sql

SQL_DIR = Path(__file__).resolve().parent


@functools.cache
def _text(name: str) -> str:
    return (SQL_DIR / f"{name}.sql").read_text()


def placeholders(name: str) -> set[str]:
    """The ``{placeholders}`` of the model ``name``."""
    return {field for _, field, _, _ in string.Formatter().parse(_text(name)) if field}


def model(name: str, run=None, **tables: sql.Composable) -> sql.Composed:
    """The SELECT of ``<name>.sql``: each placeholder a staged table is bound to ``run``'s table of
    that name unless ``tables`` binds it (e.g. a subquery over it); the others come from
    ``tables``. A placeholder left unbound, or a name bound that the model does not read, is an
    error naming it."""
    from include.customer_performance.stages import UndeclaredStageError

    wanted = placeholders(name)
    extra = set(tables) - wanted
    if extra:
        raise ValueError(f"model {name} has no placeholder {', '.join(sorted(extra))}")
    bound = dict(tables)
    for field in wanted - set(tables):
        unbound = ValueError(f"model {name}: nothing binds its placeholder {{{field}}}")
        if run is None:
            raise unbound
        try:
            bound[field] = run.table(field)  # a declared stage of the run
        except UndeclaredStageError:
            raise unbound from None
    return sql.SQL(_text(name)).format(**bound)
