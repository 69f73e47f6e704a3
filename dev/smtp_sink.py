"""SMTP sink: a real SMTP server on loopback that stores every message it receives as a file.

    python dev/smtp_sink.py --dir .demo/mail --port 8025

Each message is written as ``<n>-<timestamp>.eml`` (RFC 5322, attachments included).
"""

from __future__ import annotations

import argparse
import signal
import threading
import time
from pathlib import Path

from aiosmtpd.controller import Controller


class Store:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's hook name)
        with self._lock:
            n = len(list(self.folder.glob("*.eml"))) + 1
            path = self.folder / f"{n:05d}-{time.strftime('%Y%m%dT%H%M%S')}.eml"
            tmp = path.with_suffix(".part")
            tmp.write_bytes(envelope.original_content or envelope.content)
            tmp.replace(path)
        return "250 Message accepted for delivery"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--dir", type=Path, required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8025)
    a = p.parse_args()
    controller = Controller(Store(a.dir), hostname=a.host, port=a.port)
    controller.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    main()
