"""Extract the period's CRM interactions from the REST API, page by page, into staging."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from itertools import chain
from operator import itemgetter

import msgspec
from psycopg import sql

from include.customer_performance.config import Settings
from include.customer_performance.db import pg
from include.customer_performance.http_client import ApiClient, ApiError
from include.customer_performance.schemas import INTERACTIONS
from include.customer_performance.staging import Run, analyze, ensure_schema, recreate_table

log = logging.getLogger(__name__)


class MalformedPageError(ApiError):
    """A page of the CRM API did not have the documented shape."""


def _row(record: object, cursor: str | None, index: int) -> tuple:
    where = f"page at cursor {cursor or '<first>'}, record {index}"
    if not isinstance(record, dict):
        raise MalformedPageError(f"crm_api: {where} is not an object")
    missing = [c for c in INTERACTIONS.column_names if c not in record]
    if missing:
        raise MalformedPageError(f"crm_api: {where} lacks field(s) {', '.join(missing)}")
    if record["customer_id"] is None or record["interaction_id"] is None:
        field = "customer_id" if record["customer_id"] is None else "interaction_id"
        raise MalformedPageError(f"crm_api: {where} has a null {field}")
    return tuple(record[c] for c in INTERACTIONS.column_names)


_FIELDS = itemgetter(*INTERACTIONS.column_names)
_IDS = itemgetter(INTERACTIONS.column_names.index("interaction_id"), INTERACTIONS.column_names.index("customer_id"))


def page_rows(records: list, cursor: str | None) -> list[tuple]:
    """The page's records as rows in column order. The fields are taken in C (itemgetter) and
    the ids checked in one pass; on any doubt the records are checked one by one (``_row``) for
    an error naming the cursor, the record and the field."""
    try:
        rows = list(map(_FIELDS, records))
    except (KeyError, TypeError):
        rows = None
    if rows is None or None in chain.from_iterable(map(_IDS, rows)):
        return [_row(record, cursor, i) for i, record in enumerate(records)]
    return rows


def fetch_page(client: ApiClient, start: datetime, end: datetime, page_size: int, cursor: str | None):
    """One page: ``(cursor, records, next_cursor)``, its shape checked."""
    params = {"start": start.isoformat(), "end": end.isoformat(), "limit": page_size}
    if cursor:
        params["cursor"] = cursor
    resp = client.request("GET", "/v1/interactions", params=params)
    try:
        body = msgspec.json.decode(resp.content)
    except msgspec.DecodeError as exc:
        raise MalformedPageError(f"crm_api: page at cursor {cursor or '<first>'} is not JSON") from exc
    if not isinstance(body, dict) or not isinstance(body.get("data"), list) or "next_cursor" not in body:
        raise MalformedPageError(
            f"crm_api: page at cursor {cursor or '<first>'} lacks field 'data' (a list) or 'next_cursor'"
        )
    return cursor, body["data"], body["next_cursor"]


def iter_pages(client: ApiClient, start: datetime, end: datetime, page_size: int):
    """Yield ``(cursor, records)`` per page until the API says there is no next page.

    The next page is fetched in the background while the caller handles the current one, so
    the API's time and ours overlap; at most two pages are in memory.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="crm_api") as pool:
        pending = pool.submit(fetch_page, client, start, end, page_size, None)
        while True:
            cursor, records, next_cursor = pending.result()
            if next_cursor:
                pending = pool.submit(fetch_page, client, start, end, page_size, next_cursor)
            yield cursor, records
            if not next_cursor:
                return


def extract_crm_api(run: Run, settings: Settings) -> dict[str, dict]:
    """Stream the period's interactions into staging, each page written with COPY as it arrives."""
    client = ApiClient.from_connection(
        settings.crm_api_conn_id, connect_timeout=settings.crm_connect_timeout, read_timeout=settings.crm_read_timeout
    )
    target = run.table(INTERACTIONS.name)
    start = datetime.combine(run.period.start, datetime.min.time())
    end = datetime.combine(run.period.end, datetime.min.time())
    rows = pages = 0
    with pg(settings.analytics_db_conn_id) as dst, dst.cursor() as cur:
        ensure_schema(cur, run.schema)
        dst.commit()  # releases the schema lock at once (see ensure_schema)
        recreate_table(cur, target, INTERACTIONS)
        copy_in = sql.SQL("COPY {} ({}) FROM STDIN").format(
            target, sql.SQL(", ").join(map(sql.Identifier, INTERACTIONS.column_names))
        )
        with cur.copy(copy_in) as copy:
            for cursor, records in iter_pages(client, start, end, settings.crm_page_size):
                for row in page_rows(records, cursor):
                    copy.write_row(row)
                rows += len(records)
                pages += 1
        analyze(cur, target)
        dst.commit()
    log.info("staged %s interactions from %s pages into %s", rows, pages, run.table_name(INTERACTIONS.name))
    return {INTERACTIONS.name: {"table": run.table_name(INTERACTIONS.name), "rows": rows, "pages": pages}}
