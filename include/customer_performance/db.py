"""Connections to the databases, opened through the Airflow connections named in the settings."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import psycopg
from psycopg import sql


@contextlib.contextmanager
def pg(conn_id: str) -> Iterator[psycopg.Connection]:
    """A psycopg 3 connection (UTC session, UTF-8 text, one transaction until commit) from a
    postgres connection."""
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    _check_password(conn_id)
    conn = PostgresHook(postgres_conn_id=conn_id).get_conn()
    try:
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


@contextlib.contextmanager
def analytics(cfg) -> Iterator[psycopg.Connection]:
    """The analytics database, with the memory the in-database transforms are allowed per sort or
    hash (``transform_work_mem``): at a million customers the default 4MB spills to disk."""
    with pg(cfg.analytics_db_conn_id) as conn:
        conn.execute(sql.SQL("SET work_mem = {}").format(sql.Literal(cfg.transform_work_mem)))
        yield conn
