"""A fault-injecting HTTP/1.1 proxy for tests: in front of a stand-in, it loses replies for real.

Each request is forwarded to the upstream whole (one request per connection); a queued fault
decides what the client gets back:

    {"mode": "reset"}                 the upstream applied the request; the client's connection is
                                      reset before any byte of the reply (a lost reply)
    {"mode": "status", "status": 502} the upstream applied it; the client gets a bare 502
    {"mode": "stall", "seconds": 30}  the upstream applied it; the reply is held back (the client's
                                      read timeout fires), then the connection is reset
    {"mode": "hold"}                  the request is forwarded only when the test says so
                                      (``POST /_proxy/release``), whatever the client did meanwhile:
                                      an in-flight request landing late

Faults are matched like the stand-ins' (``method``, ``path``: a part of the request path) and
apply to the next ``times`` (1) matching requests after skipping ``skip`` (0) of them. Control, on
the proxy itself: ``POST /_proxy/faults`` (a list), ``DELETE /_proxy/faults``, ``GET /_proxy/log``
(method, path, mode per request, and ``status``: the upstream's answer once it came),
``POST /_proxy/release`` (forward the held requests).

    python dev/fault_proxy.py --port 9000 --upstream 127.0.0.1:8082
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import struct
import threading

MAX_HEAD = 64 * 1024


class Faults:
    def __init__(self) -> None:
        self.queue: list[dict] = []
        self.log: list[dict] = []
        self.lock = threading.Lock()
        self.released = asyncio.Event()

    def take(self, method: str, path: str) -> dict | None:
        with self.lock:
            for f in self.queue:
                if f.get("path", "") in path and f.get("method", method).upper() == method:
                    if f["skip"] > 0:
                        f["skip"] -= 1
                        return None
                    f["times"] -= 1
                    if f["times"] <= 0:
                        self.queue.remove(f)
                    return dict(f)
        return None


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes] | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        return None
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    body = await reader.readexactly(length) if length else b""
    return head, body


def with_close(head: bytes) -> bytes:
    """The request head with ``Connection: close``: one request per upstream connection."""
    lines = [ln for ln in head.rstrip(b"\r\n").split(b"\r\n") if not ln.lower().startswith(b"connection:")]
    return b"\r\n".join([*lines, b"Connection: close"]) + b"\r\n\r\n"


def reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST rather than FIN: what a client sees when a middlebox drops the connection."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


def respond(writer: asyncio.StreamWriter, status: int, payload: object) -> None:
    body = json.dumps(payload).encode()
    writer.write(
        f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n".encode()
        + body
    )


async def handle(reader, writer, upstream: tuple[str, int], faults: Faults) -> None:
    try:
        request = await read_request(reader)
        if request is None:
            writer.close()
            return
        head, body = request
        method, path = head.split(b" ", 2)[:2]
        method, path = method.decode(), path.decode().split("?")[0]
        if path.startswith("/_proxy/"):
            if path == "/_proxy/release":
                faults.released.set()
                respond(writer, 200, {"released": True})
            elif method == "POST":
                faults.released.clear()
                with faults.lock:
                    faults.queue += [{"times": 1, "skip": 0, **f} for f in json.loads(body)]
                respond(writer, 200, {"queued": len(faults.queue)})
            elif method == "DELETE":
                faults.released.set()  # nothing stays held past a test
                with faults.lock:
                    faults.queue.clear()
                    faults.log.clear()
                respond(writer, 200, {"cleared": True})
            else:
                with faults.lock:
                    respond(writer, 200, list(faults.log))
            await writer.drain()
            writer.close()
            return
        fault = faults.take(method, path) or {}
        mode = fault.get("mode", "pass")
        entry = {"method": method, "path": path, "mode": mode}
        with faults.lock:
            faults.log.append(entry)
        if mode == "hold":
            await faults.released.wait()
        up_reader, up_writer = await asyncio.open_connection(*upstream)
        up_writer.write(with_close(head) + body)
        await up_writer.drain()
        reply = await up_reader.read()  # the upstream closes after its reply
        up_writer.close()
        entry["status"] = int(reply.split(b" ", 2)[1]) if reply.startswith(b"HTTP/") else None
        if mode == "reset":
            reset(writer)
            return
        if mode == "status":
            respond(writer, int(fault.get("status", 502)), {"error": "injected by the proxy after forwarding"})
        elif mode == "stall":
            await asyncio.sleep(float(fault.get("seconds", 30)))
            reset(writer)
            return
        else:
            writer.write(reply)
        await writer.drain()
        writer.close()
    except (ConnectionError, asyncio.IncompleteReadError):
        writer.transport.abort()


async def serve(host: str, port: int, upstream: tuple[str, int]) -> None:
    faults = Faults()
    server = await asyncio.start_server(lambda r, w: handle(r, w, upstream, faults), host, port, limit=MAX_HEAD)
    async with server:
        await server.serve_forever()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--upstream", required=True, help="host:port")
    a = p.parse_args()
    host, _, port = a.upstream.rpartition(":")
    asyncio.run(serve(a.host, a.port, (host, int(port))))


if __name__ == "__main__":
    main()
