"""BI push-dataset API stand-in: the versioned push contract a real BI adapter must meet.

A month is published as a *version*: its rows arrive in numbered batches, then one call makes the
version current for its tables. Readers only ever see current rows, so a table's month is either
the previous complete one or the new complete one, never half of either.

    POST /datasets/{dataset}/versions/{version}   {"report_month": "YYYY-MM"}
         Opens the version for the month and supersedes every other *open* version of the month
         (a killed try's: its late batches and publish are refused from now on); the published
         version stays current. Opening an open version again is a no-op (a lost reply repeated).
    PUT  /datasets/{dataset}/versions/{version}/tables/{table}/batches/{n}
         {"report_month": "YYYY-MM", "rows": [...]}          at most 10,000 rows
         Stores (or replaces: the same batch sent twice is kept once) batch ``n`` of ``table``.
         409 unless the version is open and for that month.
    POST /datasets/{dataset}/versions/{version}/publish
         {"report_month": "YYYY-MM", "tables": {"kpis": {"rows": 1, "batches": 1}, ...}}
         Checks that the version holds exactly these tables, rows and batches (else 409, nothing
         changes), then, in one transaction, makes it current for each of these tables of the month
         (a table listed with no rows becomes empty; tables not listed keep what they had), deletes
         the rows other versions held for them, and marks every other version of the month
         superseded: any later batch or publish for one is refused. Publishing a published version
         again is a no-op answering the same, so a publish whose reply was lost can be repeated.
    GET  /datasets/{dataset}/tables/{table}/rows?report_month=YYYY-MM   the current rows
    GET  /datasets/{dataset}/tables                                    table -> current row count
    GET  /datasets/{dataset}/versions?report_month=YYYY-MM             versions: open, published, superseded

Bearer token auth and the test faults of ``dev/standin.py``.

    python dev/bi_api.py --store .demo/bi.sqlite --port 8082 --token demo-bi-token
"""

from __future__ import annotations

import argparse
import json
import re
import sqlite3
import threading
from typing import Annotated

import uvicorn
from fastapi import Body, FastAPI, HTTPException

try:
    from dev.standin import install
except ImportError:  # run as a script
    from standin import install

MAX_ROWS = 10_000
MONTH = re.compile(r"\d{4}-(0[1-9]|1[0-2])")

SCHEMA = """
CREATE TABLE IF NOT EXISTS versions (
    dataset text, version text, report_month text, state text CHECK (state IN ('open', 'published', 'superseded')),
    PRIMARY KEY (dataset, version));
CREATE TABLE IF NOT EXISTS current (
    dataset text, report_month text, tbl text, version text, PRIMARY KEY (dataset, report_month, tbl));
CREATE TABLE IF NOT EXISTS batches (
    dataset text, version text, tbl text, batch integer, n integer, payload text,
    PRIMARY KEY (dataset, version, tbl, batch));
"""


def create_app(store: str, token: str) -> FastAPI:
    app = FastAPI(title="BI push-dataset API (stand-in)", version="2.0")
    install(app, token, "/datasets/")
    lock = threading.Lock()
    conn = sqlite3.connect(store, check_same_thread=False, isolation_level=None)
    conn.executescript(SCHEMA)

    def month_of(body: dict) -> str:
        month = body.get("report_month")
        if not isinstance(month, str) or not MONTH.fullmatch(month):
            raise HTTPException(400, "report_month must be YYYY-MM")
        return month

    def state(dataset: str, version: str) -> tuple[str, str] | None:
        row = conn.execute(
            "SELECT report_month, state FROM versions WHERE dataset = ? AND version = ?", (dataset, version)
        ).fetchone()
        return tuple(row) if row else None

    def supersede(dataset: str, month: str, keep: str, states: tuple[str, ...]) -> list[str]:
        """Mark the month's other versions in ``states`` superseded (inside the caller's
        transaction); returns them."""
        marks = ", ".join("?" * len(states))
        found = [
            v
            for (v,) in conn.execute(
                f"SELECT version FROM versions WHERE dataset = ? AND report_month = ? AND version <> ?"
                f" AND state IN ({marks})",
                (dataset, month, keep, *states),
            )
        ]
        conn.executemany(
            "UPDATE versions SET state = 'superseded' WHERE dataset = ? AND version = ?", [(dataset, v) for v in found]
        )
        return found

    @app.post("/datasets/{dataset}/versions/{version}")
    def open_version(dataset: str, version: str, body: Annotated[dict, Body()]) -> dict:
        month = month_of(body)
        with lock:
            known = state(dataset, version)
            if known and known != (month, "open"):
                raise HTTPException(409, f"version {version} is {known[1]} (for {known[0]}): it cannot be opened")
            conn.execute("BEGIN IMMEDIATE")
            superseded = supersede(dataset, month, version, ("open",))
            for v in superseded:  # an open version's rows were never current
                conn.execute("DELETE FROM batches WHERE dataset = ? AND version = ?", (dataset, v))
            if not known:
                conn.execute("INSERT INTO versions VALUES (?, ?, ?, 'open')", (dataset, version, month))
            conn.execute("COMMIT")
        return {"version": version, "state": "open", "superseded": superseded}

    @app.put("/datasets/{dataset}/versions/{version}/tables/{table}/batches/{n}")
    def put_batch(dataset: str, version: str, table: str, n: int, body: Annotated[dict, Body()]) -> dict:
        month, rows = month_of(body), body.get("rows")
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise HTTPException(400, "body must be {'report_month': 'YYYY-MM', 'rows': [{...}, ...]}")
        if len(rows) > MAX_ROWS:
            raise HTTPException(413, f"at most {MAX_ROWS} rows per request, got {len(rows)}")
        with lock:
            known = state(dataset, version)
            if not known:
                raise HTTPException(409, f"version {version} was never opened")
            if known[0] != month:
                raise HTTPException(409, f"version {version} is for {known[0]}, not {month}")
            if known[1] != "open":
                raise HTTPException(409, f"version {version} is {known[1]}: it takes no more batches")
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(
                "INSERT OR REPLACE INTO batches VALUES (?, ?, ?, ?, ?, ?)",
                (dataset, version, table, n, len(rows), json.dumps(rows)),
            )
            conn.execute("COMMIT")
        return {"version": version, "table": table, "batch": n, "rows": len(rows)}

    @app.post("/datasets/{dataset}/versions/{version}/publish")
    def publish(dataset: str, version: str, body: Annotated[dict, Body()]) -> dict:
        month, expected = month_of(body), body.get("tables")
        if not isinstance(expected, dict):
            raise HTTPException(400, "body must be {'report_month': 'YYYY-MM', 'tables': {table: {rows, batches}}}")
        with lock:
            known = state(dataset, version)
            if not known or known[0] != month:
                raise HTTPException(409, f"version {version} was never opened for {month}")
            if known[1] == "superseded":
                raise HTTPException(409, f"version {version} was superseded by a later version")
            held = {
                t: {"rows": r, "batches": b}
                for t, r, b in conn.execute(
                    "SELECT tbl, sum(n), count(*) FROM batches WHERE dataset = ? AND version = ? GROUP BY tbl",
                    (dataset, version),
                )
            }
            want = {t: v for t, v in expected.items() if isinstance(v, dict) and v.get("batches")}
            if held != want:
                raise HTTPException(409, f"version {version} holds {held}, the publish expects {want}")
            if known[1] == "published":
                return {"version": version, "state": "published", "already": True}
            conn.execute("BEGIN IMMEDIATE")
            others = supersede(dataset, month, version, ("open", "published"))
            for table in expected:
                conn.execute(
                    "DELETE FROM batches WHERE dataset = ? AND tbl = ? AND version IN"
                    " (SELECT version FROM versions WHERE dataset = ? AND report_month = ? AND version <> ?)",
                    (dataset, table, dataset, month, version),
                )
                conn.execute("INSERT OR REPLACE INTO current VALUES (?, ?, ?, ?)", (dataset, month, table, version))
            conn.execute(
                "UPDATE versions SET state = 'published' WHERE dataset = ? AND version = ?", (dataset, version)
            )
            conn.execute("COMMIT")
        return {"version": version, "state": "published", "already": False, "superseded": others}

    def current_rows(dataset: str, table: str, month: str | None) -> list[dict]:
        q = (
            "SELECT b.payload FROM batches AS b JOIN current AS c USING (dataset, version, tbl)"
            " WHERE b.dataset = ? AND b.tbl = ?"
        )
        args = [dataset, table]
        if month:
            q, args = q + " AND c.report_month = ?", [*args, month]
        return [r for (p,) in conn.execute(q + " ORDER BY c.report_month, b.batch", args) for r in json.loads(p)]

    @app.get("/datasets/{dataset}/tables/{table}/rows")
    def get_rows(dataset: str, table: str, report_month: str | None = None) -> dict:
        with lock:
            return {"rows": current_rows(dataset, table, report_month)}

    @app.get("/datasets/{dataset}/tables")
    def tables(dataset: str) -> dict:
        with lock:
            return dict(
                conn.execute(
                    "SELECT b.tbl, sum(b.n) FROM batches AS b JOIN current AS c USING (dataset, version, tbl)"
                    " WHERE b.dataset = ? GROUP BY b.tbl",
                    (dataset,),
                ).fetchall()
            )

    @app.get("/datasets/{dataset}/versions")
    def versions(dataset: str, report_month: str | None = None) -> dict:
        q, args = "SELECT version, report_month, state FROM versions WHERE dataset = ?", [dataset]
        if report_month:
            q, args = q + " AND report_month = ?", [*args, report_month]
        with lock:
            return {
                "versions": [
                    dict(zip(("version", "report_month", "state"), r, strict=True)) for r in conn.execute(q, args)
                ]
            }

    return app


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--store", required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8082)
    p.add_argument("--token", required=True)
    a = p.parse_args()
    uvicorn.run(create_app(a.store, a.token), host=a.host, port=a.port, log_level="warning")


if __name__ == "__main__":
    main()
