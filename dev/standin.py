"""What the HTTP stand-ins share: bearer-token auth and fault injection for tests.

A test queues faults with ``POST /_control/faults`` (a list of ``{"status": 503, "times": 2,
"retry_after": 1}``, ``{"kind": "malformed"}``, ``{"kind": "not_json"}``, ``{"kind":
"missing_field", "field": "customer_id"}``, ``{"kind": "delay", "seconds": 3}``; the CRM's hostile
modes ``loop``, ``oversized``, ``gzip_bomb`` with ``mb``, ``drip`` with ``seconds``), each applied to
the next matching API requests (``path``: a part of the request path, ``method``: e.g. ``POST``;
both optional); ``GET /_control/requests`` returns the log of requests served (method, path,
status), tokens omitted.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque

from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse


class Faults:
    def __init__(self) -> None:
        self._queue: deque[dict] = deque()
        self._lock = threading.Lock()
        self.log: list[dict] = []

    def add(self, faults: list[dict]) -> None:
        with self._lock:
            for f in faults:
                self._queue.append({"times": 1, **f})

    def take(self, method: str, path: str) -> dict | None:
        with self._lock:
            for f in self._queue:
                if f.get("path", "") in path and f.get("method", method).upper() == method:
                    f["times"] -= 1
                    if f["times"] <= 0:
                        self._queue.remove(f)
                    return dict(f)
        return None

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()
            self.log.clear()


def install(app: FastAPI, token: str | None, api_prefix: str) -> Faults:
    """Add auth (none when ``token`` is None), fault injection and the control endpoints to an app."""
    faults = Faults()
    control = APIRouter(prefix="/_control", include_in_schema=False)

    @control.post("/faults")
    def add_faults(body: list[dict]) -> dict:
        faults.add(body)
        return {"queued": len(body)}

    @control.delete("/faults")
    def clear_faults() -> dict:
        faults.clear()
        return {"cleared": True}

    @control.get("/requests")
    def requests_log() -> list[dict]:
        return faults.log

    app.include_router(control)

    @app.middleware("http")
    async def guard(request: Request, call_next):
        path = request.url.path
        if not path.startswith(api_prefix):
            return await call_next(request)
        entry = {"method": request.method, "path": path, "query": str(request.url.query)}
        fault = faults.take(request.method, path)
        if fault and fault.get("kind") == "delay":
            await asyncio.sleep(float(fault["seconds"]))
            fault = None
        if fault and "status" in fault:
            headers = {"Retry-After": str(fault["retry_after"])} if "retry_after" in fault else {}
            entry["status"] = fault["status"]
            faults.log.append(entry)
            return JSONResponse({"error": f"injected {fault['status']}"}, status_code=fault["status"], headers=headers)
        if token is not None and request.headers.get("authorization") != f"Bearer {token}":
            entry["status"] = 401
            faults.log.append(entry)
            return JSONResponse({"error": "missing or invalid bearer token"}, status_code=401)
        request.state.fault = fault
        response = await call_next(request)
        entry["status"] = response.status_code
        faults.log.append(entry)
        return response

    return faults


def bad_request(msg: str) -> HTTPException:
    return HTTPException(status_code=400, detail=msg)
