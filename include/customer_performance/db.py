"""Connections to the databases, opened through the Airflow connections named in the settings.

The analytics database may sit behind a transaction-pooling PgBouncer, where consecutive
transactions of one client run on different server sessions. So nothing here relies on session
state beyond what PgBouncer carries over itself (TimeZone and client_encoding, which it re-applies
per client): server-side prepared statements are off, the transforms' ``work_mem`` is set in each
transaction (``SET LOCAL``, by the cursors of ``analytics``), and a lock held across transactions
is an advisory lock held by a transaction of its own (``held_lock``). docs/deployment.md, "Connection pooling".
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import psycopg
from psycopg import pq

log = logging.getLogger(__name__)


@contextlib.contextmanager
def pg(conn_id: str) -> Iterator[psycopg.Connection]:
    """A psycopg 3 connection (UTC session, UTF-8 text, one transaction until commit) from a
    postgres connection."""
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    _check_password(conn_id)
    conn = PostgresHook(postgres_conn_id=conn_id).get_conn()
    # no server-side prepared statements: behind a transaction-pooling PgBouncer the next
    # transaction may run on a server session that never prepared them
    conn.prepare_threshold = None
    try:
        # TimeZone and client_encoding: session settings PgBouncer tracks and re-applies per client
        conn.execute("SET TIME ZONE 'UTC'")
        # text in UTF-8 whatever the database's own encoding (a LATIN1 source is converted by the
        # server, not copied as bytes into a UTF-8 table); a value with no UTF-8 form fails loudly
        conn.execute("SET client_encoding TO 'UTF8'")
        yield conn
    except BaseException:
        conn.rollback()
        raise
    finally:
        conn.close()


def _check_password(conn_id: str) -> None:
    from airflow.sdk import BaseHook

    from include.customer_performance.http_client import check_secret

    check_secret(conn_id, "password", BaseHook.get_connection(conn_id).password, spaces=True)


# Opens a second connection to a database (e.g. ``lambda: analytics(cfg)``), for work side by side.
Connect = Callable[[], AbstractContextManager]


def on_own_connection(connect: Connect, work: Callable[..., Any], *args: Any) -> Any:
    """``work(conn, *args)`` on a connection of its own (for a worker thread: a psycopg
    connection is not shared between threads), closed afterwards; ``work`` commits."""
    with connect() as conn:
        return work(conn, *args)


@contextlib.contextmanager
def mysql(conn_id: str) -> Iterator[object]:
    """A mysqlclient connection from a mysql connection, its session in UTC."""
    from airflow.providers.mysql.hooks.mysql import MySqlHook

    _check_password(conn_id)
    conn = MySqlHook(mysql_conn_id=conn_id).get_conn()
    try:
        conn.query("SET time_zone = '+00:00'")
        yield conn
    finally:
        conn.close()


class LocalSettingsCursor(psycopg.Cursor):
    """A cursor that starts each transaction of its connection with ``SET LOCAL`` of ``SETTINGS``
    (a subclass per connection sets them): settings that last exactly one transaction, as a
    transaction-pooling PgBouncer needs, however many transactions a task commits. It looks at the
    connection before each statement: one that finds no transaction open begins one, so it sets
    them first. (psycopg's ``conn.transaction()`` blocks begin without a statement: this package
    uses none on these connections.)"""

    SETTINGS: dict[str, str] = {}

    def _begin(self) -> None:
        conn = self.connection
        if self.SETTINGS and not conn.autocommit and conn.info.transaction_status == pq.TransactionStatus.IDLE:
            calls = ", ".join("set_config(%s, %s, true)" for _ in self.SETTINGS)
            psycopg.Cursor.execute(self, f"SELECT {calls}", [v for kv in self.SETTINGS.items() for v in kv])

    def execute(self, query, params=None, **kwargs):
        self._begin()
        return super().execute(query, params, **kwargs)

    def executemany(self, query, params_seq, **kwargs):
        self._begin()
        return super().executemany(query, params_seq, **kwargs)

    def copy(self, statement, params=None, **kwargs):
        self._begin()
        return super().copy(statement, params, **kwargs)

    def stream(self, query, params=None, **kwargs):
        self._begin()
        return super().stream(query, params, **kwargs)


def local_settings(conn: psycopg.Connection, settings: dict[str, str]) -> None:
    """From now on, every transaction of ``conn`` runs with ``settings`` (``SET LOCAL``)."""
    conn.cursor_factory = type("LocalSettings", (LocalSettingsCursor,), {"SETTINGS": dict(settings)})
    if conn.info.transaction_status == pq.TransactionStatus.INTRANS:  # the transaction already begun
        conn.execute(
            "SELECT " + ", ".join("set_config(%s, %s, true)" for _ in settings),
            [v for kv in settings.items() for v in kv],
        )


def relay(rows: Iterable[bytes], *writes: Callable[[bytes], Any], chunk_bytes: int = 1 << 20) -> None:
    """Pass COPY data on to each of ``writes`` in chunks of about ``chunk_bytes``: reading a COPY
    yields one row per block, and a write per row (a call into libpq, or a file's) costs about
    as much as the row's copy itself (the sessions' relay: 0.7 s instead of 1.1 s for 449k rows)."""
    buf = bytearray()
    for block in rows:
        buf += block
        if len(buf) >= chunk_bytes:
            data = bytes(buf)
            for write in writes:
                write(data)
            buf.clear()
    if buf:
        data = bytes(buf)
        for write in writes:
            write(data)


@contextlib.contextmanager
def analytics(cfg) -> Iterator[psycopg.Connection]:
    """The analytics database, with the memory the in-database transforms are allowed per sort or
    hash (``transform_work_mem``, in every transaction): at a million customers the default 4MB
    spills to disk."""
    with pg(cfg.analytics_db_conn_id) as conn:
        local_settings(conn, {"work_mem": cfg.transform_work_mem})
        yield conn


@contextlib.contextmanager
def held_lock(conn: psycopg.Connection, key: str, what: str) -> Iterator[None]:
    """Hold the advisory lock ``key`` for the block, from a connection of its own (``conn``'s
    parameters) whose transaction stays open for the block (``pg_advisory_xact_lock``): the lock
    ends with that transaction, at the block's end or when the process dies, and holds behind a
    transaction-pooling PgBouncer too (an open transaction keeps its server session; a session
    lock would stay on a session other clients get). ``what`` names the lock in the log when it
    waits. A server whose ``idle_in_transaction_session_timeout`` is shorter than the block
    would end the lock early: leave it off for this role."""
    params = conn.info.get_parameters()
    with psycopg.connect(**params, password=conn.info.password, prepare_threshold=None) as lock:
        if not lock.execute("SELECT pg_try_advisory_xact_lock(hashtext(%s))", (key,)).fetchone()[0]:
            log.info("%s: another run holds it; waiting for it to finish", what)
            lock.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (key,))
        try:
            yield
        finally:
            lock.rollback()
