"""CRM API stand-in: ``GET /v1/interactions`` over the generator's SQLite store.

Same contract as production: bearer token, the period as ``start``/``end`` (ISO timestamps,
half-open), keyset cursor pagination (``limit``, ``cursor`` -> ``next_cursor``), OpenAPI at
``/openapi.json``, and the test faults of ``dev/standin.py``.

    python dev/crm_api.py --store .demo/crm.sqlite --port 8081 --token demo-crm-token
"""

from __future__ import annotations

import argparse
import base64
import sqlite3
from datetime import datetime

import msgspec
import uvicorn
from fastapi import FastAPI, Query, Request, Response

try:
    from dev.standin import bad_request, install
except ImportError:  # run as a script
    from standin import bad_request, install

FIELDS = (
    "interaction_id",
    "customer_id",
    "interaction_type",
    "interaction_date",
    "duration_minutes",
    "satisfaction_score",
    "resolution_status",
    "resolution_hours",
    "agent_id",
    "department",
    "priority",  # optional: only a security incident has one (NULL otherwise)
)


def _parse_ts(raw: str, name: str) -> str:
    try:
        ts = datetime.fromisoformat(raw)
    except ValueError:
        raise bad_request(f"{name} must be an ISO timestamp") from None
    return ts.replace(tzinfo=None).isoformat()


def create_app(store: str, token: str) -> FastAPI:
    app = FastAPI(title="CRM API (stand-in)", version="1.0")
    install(app, token, "/v1/")

    @app.get("/v1/interactions")
    def interactions(
        request: Request,
        start: str = Query(..., description="inclusive ISO timestamp"),
        end: str = Query(..., description="exclusive ISO timestamp"),
        limit: int = Query(500, ge=1, le=5000),
        cursor: str | None = Query(None, description="next_cursor of the previous page"),
    ) -> dict:
        lo, hi = _parse_ts(start, "start"), _parse_ts(end, "end")
        after = base64.urlsafe_b64decode(cursor.encode()).decode() if cursor else ""
        conn = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
        try:
            rows = conn.execute(
                f"SELECT {', '.join(FIELDS)} FROM interactions"
                " WHERE substr(interaction_date, 1, 19) >= ? AND substr(interaction_date, 1, 19) < ?"
                " AND interaction_id > ? ORDER BY interaction_id LIMIT ?",
                (lo[:19], hi[:19], after, limit + 1),
            ).fetchall()
        finally:
            conn.close()
        more = len(rows) > limit
        # an optional field is left out of a record that has no value for it, as the API documents
        data = [
            {k: v for k, v in zip(FIELDS, r, strict=True) if v is not None or k != "priority"} for r in rows[:limit]
        ]
        nxt = base64.urlsafe_b64encode(data[-1]["interaction_id"].encode()).decode() if more else None
        fault = getattr(request.state, "fault", None)
        if fault and fault.get("kind") == "malformed":
            return {"items": data}
        if fault and fault.get("kind") == "not_json":  # e.g. a proxy's HTML error page with a 200
            return Response("<html>upstream busy</html>", media_type="application/json")
        if fault and fault.get("kind") == "missing_field" and data:
            data[0].pop(fault.get("field", "customer_id"), None)
        # hostile answers (tests/test_security.py): a loop, too much, a bomb, a drip
        if fault and fault.get("kind") == "loop" and cursor:  # the next page is this page, forever
            nxt = cursor
        if fault and fault.get("kind") == "oversized" and data:  # more records than the limit asked for
            data = data * (limit // len(data) + 2)
        if fault and fault.get("kind") == "gzip_bomb":  # a small body that inflates to mb megabytes
            import gzip

            bomb = gzip.compress(b" " * (int(fault.get("mb", 100)) << 20), compresslevel=9)
            return Response(bomb, media_type="application/json", headers={"Content-Encoding": "gzip"})
        if fault and fault.get("kind") == "drip":  # one byte a second: never a read timeout, never done
            from fastapi.responses import StreamingResponse

            async def drip():
                import asyncio

                for _ in range(int(fault.get("seconds", 60))):
                    yield b" "
                    await asyncio.sleep(1)

            return StreamingResponse(drip(), media_type="application/json")
        # Serialised directly, and by msgspec: FastAPI's generic encoder, or json.dumps (12 ms of a
        # 5,000-record page's 25), would make the stand-in the bottleneck of the benchmark.
        return Response(msgspec.json.encode({"data": data, "next_cursor": nxt}), media_type="application/json")

    return app


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--store", required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8081)
    p.add_argument("--token", required=True)
    a = p.parse_args()
    uvicorn.run(create_app(a.store, a.token), host=a.host, port=a.port, log_level="warning")


if __name__ == "__main__":
    main()
