"""The dashboard alone, without Airflow, over the analytics database of `make demo` (or any stack):
for working on the page and for its screenshots. No sign-in: bind it to loopback only.

    .venv/bin/python dev/dashboard.py [--port 8793] [--stack cp_demo_<hash>]

Open http://127.0.0.1:8793/customer-performance/ . Airflow's run states are shown as unavailable
(there is no metadata DB to ask); everything else is what the plugin serves.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dev.stack import Stack, checkout_name  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, default=8793)
    p.add_argument("--stack", default=checkout_name("cp_demo"), help="the stack whose analytics DB to read")
    a = p.parse_args()
    stack = Stack(a.stack, ROOT / ".demo")
    os.environ["AIRFLOW_CONN_ANALYTICS_DB"] = json.dumps(stack.connections()["analytics_db"])
    import uvicorn
    from fastapi import FastAPI

    from include.customer_performance.dashboard.app import create_app

    root = FastAPI()
    root.mount("/customer-performance", create_app(auth=False))
    print(f"http://127.0.0.1:{a.port}/customer-performance/", flush=True)
    uvicorn.run(root, host="127.0.0.1", port=a.port, log_level="warning")


if __name__ == "__main__":
    main()
