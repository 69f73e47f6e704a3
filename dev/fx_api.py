"""Exchange-rate source stand-in: serves a rates file the way the ECB publishes its history.

``GET /stats/eurofxref/eurofxref-hist.zip`` answers with the file given by ``--file`` (read on
every request, so a test can rewrite it; written when missing from the bundled ECB history, its
last rates carried forward to today): the ECB's CSV layout (``Date`` then one column per
currency, units per EUR), zipped when the file is not a zip already. The faults of
``dev/standin.py`` apply (e.g. ``{"status": 503, "times": 10}``: the source is down); no token is
needed, as at the ECB.

    python dev/fx_api.py --file .demo/fx/eurofxref-hist.csv --port 8084
"""

from __future__ import annotations

import argparse
import io
import zipfile
from datetime import date, timedelta
from pathlib import Path

import uvicorn
from fastapi import FastAPI, HTTPException
from fastapi.responses import Response

try:
    from dev.standin import install
except ImportError:  # run as a script
    from standin import install

PATH = "/stats/eurofxref/eurofxref-hist.zip"


def create_app(file: Path) -> FastAPI:
    app = FastAPI(title="FX rates stand-in")
    install(app, None, "/stats")

    @app.get(PATH)
    def history() -> Response:
        if not file.exists():
            raise HTTPException(status_code=404, detail="no rates file")
        raw = file.read_bytes()
        if raw[:2] != b"PK":
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
                zf.writestr("eurofxref-hist.csv", raw)
            raw = buf.getvalue()
        return Response(raw, media_type="application/zip")

    return app


def write_rates_file(path: Path, extra: dict | None = None, carry_forward_to: date | None = None) -> Path:
    """The bundled ECB history as a CSV at ``path``, plus ``extra`` rows ``{day: {currency: rate}}``
    (newer days the bundle lacks, e.g. for a month after it ends). ``carry_forward_to``: also the
    bundle's last rates repeated on every weekday after it up to that day, synthetic rates that
    let a local stack run today's month as the ECB's daily publication would."""
    from include.customer_performance.fx import bundled_rates

    by_day: dict = {}
    for currency, day, rate in bundled_rates():
        by_day.setdefault(day.isoformat(), {})[currency] = str(rate)
    if carry_forward_to is not None:
        last = max(by_day)
        day = date.fromisoformat(last) + timedelta(days=1)
        while day <= carry_forward_to:
            if day.weekday() < 5:
                by_day[day.isoformat()] = dict(by_day[last])
            day += timedelta(days=1)
    for day, rates in (extra or {}).items():
        by_day.setdefault(str(day), {}).update({c: str(r) for c, r in rates.items()})
    currencies = sorted({c for rates in by_day.values() for c in rates})
    lines = ["Date," + ",".join(currencies) + ","]
    for day in sorted(by_day, reverse=True):  # newest first, as the ECB does
        lines.append(day + "," + ",".join(by_day[day].get(c, "N/A") for c in currencies) + ",")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--file", type=Path, required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8084)
    a = p.parse_args()
    if not a.file.exists():  # the bundled ECB history carried forward to today, until a real file is put there
        write_rates_file(a.file, carry_forward_to=date.today())
    uvicorn.run(create_app(a.file), host=a.host, port=a.port, log_level="warning")


if __name__ == "__main__":
    main()
