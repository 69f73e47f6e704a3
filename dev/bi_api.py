"""BI push-dataset API stand-in: keeps every row it receives in a SQLite file.

    POST   /datasets/{dataset}/tables/{table}/rows   {"rows": [...]}   at most 10,000 rows
    DELETE /datasets/{dataset}/tables/{table}/rows?report_month=YYYY-MM
    GET    /datasets/{dataset}/tables/{table}/rows?report_month=YYYY-MM   (read back, for tests)
    GET    /datasets/{dataset}/tables                                    (table -> row count)

Bearer token auth and the test faults of ``dev/standin.py``.

    python dev/bi_api.py --store .demo/bi.sqlite --port 8082 --token demo-bi-token
"""

from __future__ import annotations

import argparse
import json
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


def create_app(store: str, token: str) -> FastAPI:
    app = FastAPI(title="BI push-dataset API (stand-in)", version="1.0")
    install(app, token, "/datasets/")
    lock = threading.Lock()
    conn = sqlite3.connect(store, check_same_thread=False)
    conn.execute(
        "CREATE TABLE IF NOT EXISTS rows"
        " (dataset text, tbl text, report_month text, seq integer PRIMARY KEY, payload text)"
    )
    conn.commit()

    @app.post("/datasets/{dataset}/tables/{table}/rows")
    def add_rows(dataset: str, table: str, body: Annotated[dict, Body()]) -> dict:
        rows = body.get("rows")
        if not isinstance(rows, list):
            raise HTTPException(400, "body must be {'rows': [...]}")
        if len(rows) > MAX_ROWS:
            raise HTTPException(413, f"at most {MAX_ROWS} rows per request, got {len(rows)}")
        with lock:
            conn.executemany(
                "INSERT INTO rows (dataset, tbl, report_month, payload) VALUES (?, ?, ?, ?)",
                [(dataset, table, r.get("report_month"), json.dumps(r)) for r in rows],
            )
            conn.commit()
        return {"rows_added": len(rows)}

    @app.delete("/datasets/{dataset}/tables/{table}/rows")
    def delete_rows(dataset: str, table: str, report_month: str | None = None) -> dict:
        with lock:
            if report_month:
                cur = conn.execute(
                    "DELETE FROM rows WHERE dataset = ? AND tbl = ? AND report_month = ?",
                    (dataset, table, report_month),
                )
            else:
                cur = conn.execute("DELETE FROM rows WHERE dataset = ? AND tbl = ?", (dataset, table))
            conn.commit()
        return {"rows_deleted": cur.rowcount}

    @app.get("/datasets/{dataset}/tables/{table}/rows")
    def get_rows(dataset: str, table: str, report_month: str | None = None) -> dict:
        q, args = "SELECT payload FROM rows WHERE dataset = ? AND tbl = ?", [dataset, table]
        if report_month:
            q, args = q + " AND report_month = ?", [*args, report_month]
        with lock:
            rows = [json.loads(p) for (p,) in conn.execute(q + " ORDER BY seq", args)]
        return {"rows": rows}

    @app.get("/datasets/{dataset}/tables")
    def tables(dataset: str) -> dict:
        with lock:
            return dict(
                conn.execute("SELECT tbl, count(*) FROM rows WHERE dataset = ? GROUP BY tbl", (dataset,)).fetchall()
            )

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
