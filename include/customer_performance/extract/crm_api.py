"""Extract the period's CRM interactions from the REST API, page by page, into staging.

The API is untrusted: each page is bounded (records asked for, bytes after decompression, a total
deadline per request), pagination is bounded (pages per run, a cursor served twice), and every
field of every record is checked for its type while the page is decoded (msgspec, in C)."""

from __future__ import annotations

import logging
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from operator import attrgetter

import msgspec
from psycopg import sql

from include.customer_performance.config import Settings
from include.customer_performance.db import pg
from include.customer_performance.http_client import ApiClient, ApiError, read_bounded
from include.customer_performance.schemas import INTERACTIONS
from include.customer_performance.staging import Run, analyze, ensure_schema, recreate_table

log = logging.getLogger(__name__)


class MalformedPageError(ApiError):
    """A page of the CRM API did not have the documented shape."""


_TYPES = {"text": str | None, "integer": int | None, "numeric": float | None, "timestamp": str | None}
_REQUIRED = {"interaction_id": str, "customer_id": int}  # no row without its keys
# One record as the API documents it: every field present (an optional one may be left out: NULL),
# each of its type (a number is never a string, a flag or a list; a JSON number out of range, such
# as 1e999, is refused too).
Record = msgspec.defstruct(
    "Record",
    [
        (c.name, _REQUIRED.get(c.name, _TYPES[c.family]), None)
        if c.optional
        else (c.name, _REQUIRED.get(c.name, _TYPES[c.family]))
        for c in INTERACTIONS.columns
    ],
    gc=False,
)


class Page(msgspec.Struct, gc=False):
    data: list[Record]
    next_cursor: str | None


_PAGE = msgspec.json.Decoder(Page)
_FIELDS = attrgetter(*INTERACTIONS.column_names)
_PATH = re.compile(r"\$\.data\[(\d+)\](?:\.(\w+))?")


def decode_page(raw: bytes, cursor: str | None) -> Page:
    """A page, every record typed; an error names the cursor, the record (index and id) and the field."""
    where = f"crm_api: page at cursor {cursor or '<first>'}"
    try:
        return _PAGE.decode(raw)
    except msgspec.ValidationError as exc:
        m = _PATH.search(str(exc))
        if m is None:
            raise MalformedPageError(f"{where} does not have the documented shape: {exc}") from None
        index, field = int(m.group(1)), m.group(2)
        key = _record_id(raw, index)
        what = f"field {field}" if field else "the record"
        raise MalformedPageError(f"{where}, record {index} (interaction_id {key}): {what}: {exc}") from None
    except msgspec.DecodeError as exc:
        raise MalformedPageError(f"{where} is not JSON ({exc})") from None


def _record_id(raw: bytes, index: int) -> str:
    try:
        record = msgspec.json.decode(raw)["data"][index]
        return repr(str(record.get("interaction_id"))[:64]) if isinstance(record, dict) else "?"
    except Exception:  # noqa: BLE001 - only for the message
        return "?"


def page_rows(records: list, cursor: str | None) -> list[tuple]:
    """The page's records (typed by decode_page) as rows in column order, taken in C."""
    return list(map(_FIELDS, records))


def fetch_page(client: ApiClient, start: datetime, end: datetime, page_size: int, cursor: str | None, limits=None):
    """One page: ``(cursor, records, next_cursor)``, bounded (size, time, records) and typed."""
    limits = limits or Limits()
    params = {"start": start.isoformat(), "end": end.isoformat(), "limit": page_size}
    if cursor:
        params["cursor"] = cursor
    where = f"crm_api: page at cursor {cursor or '<first>'}"
    deadline = time.monotonic() + limits.request_seconds
    resp = client.request("GET", "/v1/interactions", params=params, stream=True)
    page = decode_page(read_bounded(resp, limits.max_bytes, deadline, where), cursor)
    if len(page.data) > page_size:
        raise MalformedPageError(f"{where} holds {len(page.data)} records, more than the {page_size} asked for")
    return cursor, page.data, page.next_cursor


@dataclass(frozen=True)
class Limits:
    """What one run may take from the CRM API (settings crm_max_pages, crm_max_page_mb,
    crm_request_seconds)."""

    max_pages: int = 100_000
    max_bytes: int = 64 * 1024 * 1024
    request_seconds: float = 120.0


def iter_pages(client: ApiClient, start: datetime, end: datetime, page_size: int, limits: Limits | None = None):
    """Yield ``(cursor, records)`` per page until the API says there is no next page; a cursor
    served twice (a loop) or more pages than ``limits.max_pages`` is an error.

    The next page is fetched in the background while the caller handles the current one, so
    the API's time and ours overlap; at most two pages are in memory.
    """
    limits = limits or Limits()
    seen: set[str] = set()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="crm_api") as pool:
        pending = pool.submit(fetch_page, client, start, end, page_size, None, limits)
        pages = 0
        while True:
            cursor, records, next_cursor = pending.result()
            pages += 1
            if next_cursor:
                if next_cursor in seen or next_cursor == cursor:
                    raise MalformedPageError(
                        f"crm_api: the page at cursor {cursor or '<first>'} points to cursor {next_cursor[:64]!r}"
                        " again: the API's pagination loops"
                    )
                if pages >= limits.max_pages:
                    raise MalformedPageError(
                        f"crm_api: more than {limits.max_pages} pages for one period (setting crm_max_pages)"
                    )
                seen.add(next_cursor)
                pending = pool.submit(fetch_page, client, start, end, page_size, next_cursor, limits)
            yield cursor, records
            if not next_cursor:
                return


def extract_crm_api(run: Run, settings: Settings) -> dict[str, dict]:
    """Stream the period's interactions into staging, each page written with COPY as it arrives."""
    from include.customer_performance.retry import plan

    client = ApiClient.from_connection(
        settings.crm_api_conn_id,
        connect_timeout=settings.crm_connect_timeout,
        read_timeout=settings.crm_read_timeout,
        **plan("extract_crm_api", settings).client_kwargs(),  # the request layer of the task's retries
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
            limits = Limits(
                settings.crm_max_pages, settings.crm_max_page_mb * 1024 * 1024, settings.crm_request_seconds
            )
            for cursor, records in iter_pages(client, start, end, settings.crm_page_size, limits):
                for row in page_rows(records, cursor):
                    copy.write_row(row)
                rows += len(records)
                pages += 1
        analyze(cur, target)
        dst.commit()
    log.info("staged %s interactions from %s pages into %s", rows, pages, run.table_name(INTERACTIONS.name))
    return {INTERACTIONS.name: {"table": run.table_name(INTERACTIONS.name), "rows": rows, "pages": pages}}
