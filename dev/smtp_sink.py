"""SMTP sink: a real SMTP server on loopback that stores every message it receives as a file.

    python dev/smtp_sink.py --dir .demo/mail --port 8025 [--faults faults.json]

Each message is written as ``<n>-<timestamp>.eml`` (RFC 5322, attachments included). For tests,
``--faults`` names a JSON file read at each message: ``{"lose_reply": 1}`` stores the next message
and then drops the connection instead of answering 250 (the relay accepted it, the sender never
learns it: a lost reply); ``{"refuse": 1}`` answers the next message with 554 and stores nothing.
"""

from __future__ import annotations

import argparse
import json
import signal
import threading
import time
from pathlib import Path

from aiosmtpd.controller import Controller


class Store:
    def __init__(self, folder: Path, faults: Path | None = None) -> None:
        self.folder = folder
        self.faults = faults
        folder.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def _take(self, kind: str) -> bool:
        """Whether the fault file queues ``kind`` for this message (and count it down)."""
        if self.faults is None or not self.faults.exists():
            return False
        queued = json.loads(self.faults.read_text() or "{}")
        if queued.get(kind, 0) <= 0:
            return False
        queued[kind] -= 1
        self.faults.write_text(json.dumps(queued))
        return True

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's hook name)
        with self._lock:
            if self._take("refuse"):
                return "554 Transaction failed (injected)"
            lose = self._take("lose_reply")
            n = len(list(self.folder.glob("*.eml"))) + 1
            path = self.folder / f"{n:05d}-{time.strftime('%Y%m%dT%H%M%S')}.eml"
            tmp = path.with_suffix(".part")
            tmp.write_bytes(envelope.original_content or envelope.content)
            tmp.replace(path)
        if lose:
            server.transport.abort()  # accepted and stored; the 250 never reaches the sender
        return "250 Message accepted for delivery"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--dir", type=Path, required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8025)
    p.add_argument("--faults", type=Path)
    a = p.parse_args()
    controller = Controller(Store(a.dir, a.faults), hostname=a.host, port=a.port)
    controller.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    main()
