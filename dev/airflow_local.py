"""Airflow with a real scheduler on this machine, for `make airflow`, the backfill and rerun tests
and the benchmark: metadata in PostgreSQL (database ``<stack>_airflow``), LocalExecutor, and the
four Airflow 3 components as processes (api-server, which also serves the UI and the execution
API the tasks talk to; scheduler; dag-processor; triggerer, which runs Deadline Alert callbacks).
With ``executor="celery"``: CeleryExecutor on the machine's Redis (a database number and a queue
named after the stack: checkouts share the server) and ``workers`` Celery workers, each with its
own AIRFLOW_HOME, temporary folder, log folder and name (the task instances' hostname:
``<worker>@<host>``), as workers on separate machines.
The stack's connections are imported into the metadata database (Admin > Connections), as a
deployment without a secrets backend keeps them, so that on-call can edit them in the UI.

    af = LocalAirflow(stack, home)
    af.start()            # fresh metadata DB, the four components, until the DAG is parsed
    af.unpause()
    af.clear(run_id, task_id)
    af.stop()
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script: `make airflow`
from dev.stack import PG, ROOT, Stack, checkout_name, free_port, pg_dsn, stop_processes, wait_for_port  # noqa: E402

DAG_ID = "customer_performance"
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
REDIS = {"host": "127.0.0.1", "port": 6379}


def worker_hostname() -> str:
    """``[core] hostname_callable`` of the local Celery workers: which worker ran a task, as a
    worker on its own machine would say by its host name."""
    import socket

    return f"{os.environ.get('CP_WORKER_NAME', 'worker')}@{socket.gethostname()}"


class LocalAirflow:
    def __init__(
        self,
        stack: Stack,
        home: Path,
        port: int | None = None,
        parallelism: int = 4,
        executor: str = "local",
        workers: int = 2,
    ):
        self.stack = stack
        self.home = home
        self.port = port or free_port()
        self.db = f"{stack.name}_airflow"
        self.parallelism = parallelism
        self.executor = executor
        self.workers = workers if executor == "celery" else 0
        # a Redis database (1..15, by the stack's name) and a queue of the stack's own: checkouts
        # share the server, and two stacks may draw the same database number
        self.redis_db = 1 + sum(stack.name.encode()) % 15
        self.queue = f"cp_{stack.name}"
        self.procs: dict[str, subprocess.Popen] = {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = {**os.environ, **self.stack.airflow_env(self.home)}
        env.pop("CUSTOMER_PERFORMANCE_DEADLINE_MINUTES")  # a scheduler serialises the Deadline Alert
        # the connections live in the metadata database (imported by start): an AIRFLOW_CONN_* variable
        # would shadow what on-call edits in Admin > Connections
        for key in [k for k in env if k.startswith("AIRFLOW_CONN_")]:
            del env[key]
        env.update(
            {
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": (
                    f"postgresql+psycopg://{PG['user']}@{PG['host']}:{PG['port']}/{self.db}"
                ),
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__PARALLELISM": str(self.parallelism),
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
                "AIRFLOW__API__PORT": str(self.port),
                "AIRFLOW__API__BASE_URL": self.url,
                "AIRFLOW__API_AUTH__JWT_SECRET": f"local-{self.stack.name}",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",  # a local UI without logins
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
                "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.home / "logs"),
            }
        )
        if self.executor == "celery":
            env.update(
                {
                    "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
                    "AIRFLOW__CELERY__BROKER_URL": f"redis://{REDIS['host']}:{REDIS['port']}/{self.redis_db}",
                    "AIRFLOW__CELERY__RESULT_BACKEND": (
                        f"db+postgresql+psycopg://{PG['user']}@{PG['host']}:{PG['port']}/{self.db}"
                    ),
                    # one task at a time per worker: a run's parallel tasks spread over the workers
                    "AIRFLOW__CELERY__WORKER_CONCURRENCY": "1",
                    "AIRFLOW__OPERATORS__DEFAULT_QUEUE": self.queue,
                    "AIRFLOW__CORE__HOSTNAME_CALLABLE": "dev.airflow_local.worker_hostname",
                    # the workers share this machine's export folder, as a mounted volume
                    "CUSTOMER_PERFORMANCE_EXPORT_LOCATION_SHARED": "true",
                }
            )
        return env

    def worker_env(self, i: int) -> dict[str, str]:
        """A worker as on a machine of its own: its own AIRFLOW_HOME, temporary and log folders,
        log server port and name."""
        home = self.home / f"worker{i}"
        (home / "tmp").mkdir(parents=True, exist_ok=True)
        return {
            **self.env(),
            "AIRFLOW_HOME": str(home),
            "TMPDIR": str(home / "tmp"),
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "CP_WORKER_NAME": f"worker{i}",
        }

    # -- lifecycle ------------------------------------------------------------------------------
    def create_db(self) -> None:
        with psycopg.connect(pg_dsn("postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.db}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{self.db}"')

    def drop_db(self) -> None:
        with psycopg.connect(pg_dsn("postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.db}" WITH (FORCE)')

    def start(self, fresh: bool = True) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        if fresh:
            self.create_db()
        self.cli("db", "migrate")
        self.cli("pools", "import", str(ROOT / "pools.json"))
        self.import_connections()
        for name in COMPONENTS:
            log = (self.home / f"{name}.log").open("ab")
            # the api-server (UI, REST and execution API) listens on loopback only: a local stack
            cmd = [self.airflow, name] + (
                ["--port", str(self.port), "--host", "127.0.0.1"] if name == "api-server" else []
            )
            self.procs[name] = subprocess.Popen(cmd, cwd=ROOT, env=self.env(), stdout=log, stderr=subprocess.STDOUT)
        for i in range(1, self.workers + 1):
            log_path = self.home / f"worker{i}.log"
            log = log_path.open("ab")
            cmd = [self.airflow, "celery", "worker", "--celery-hostname", f"worker{i}@%h", "--concurrency", "1"]
            cmd += ["--queues", self.queue]
            self.procs[f"worker{i}"] = subprocess.Popen(
                cmd, cwd=ROOT, env=self.worker_env(i), stdout=log, stderr=subprocess.STDOUT
            )
        wait_for_port(self.port, self.procs["api-server"], "airflow api-server", timeout=120)
        self.wait_for_dag()
        for i in range(1, self.workers + 1):
            self.wait_for_log(self.home / f"worker{i}.log", " ready.", f"worker{i}")

    def wait_for_log(self, path: Path, text: str, what: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            if text in path.read_text(errors="replace"):
                return
            time.sleep(0.5)
        raise TimeoutError(f"{what} did not log {text!r} within {timeout}s; see {path}")

    def stop(self) -> None:
        stop_processes(self.procs, timeout=30)

    def import_connections(self) -> None:
        """The stack's connections into Admin > Connections; ones already there (perhaps edited by
        on-call) are kept."""
        conns = {
            conn_id: {**c, "extra": json.dumps(c["extra"])} if "extra" in c else c
            for conn_id, c in self.stack.connections().items()
        }
        path = self.home / "connections.json"
        path.write_text(json.dumps(conns))
        path.chmod(0o600)
        try:
            self.cli("connections", "import", str(path), check=False)
        finally:
            path.unlink()

    # -- commands -------------------------------------------------------------------------------
    @property
    def airflow(self) -> str:
        return str(Path(sys.executable).parent / "airflow")

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        out = subprocess.run([self.airflow, *args], cwd=ROOT, env=self.env(), capture_output=True, text=True)
        if check and out.returncode != 0:
            raise RuntimeError(f"airflow {' '.join(args)} failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
        return out

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        """Read Airflow's metadata DB (the UI's source): run and task states."""
        with psycopg.connect(pg_dsn(self.db)) as conn:
            return conn.execute(sql, params).fetchall()

    def wait_for_dag(self, timeout: float = 180) -> None:
        """Until the dag-processor has parsed and serialised the DAG."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            if self.query("SELECT 1 FROM serialized_dag WHERE dag_id = %s", (DAG_ID,)):
                return
            time.sleep(1)
        raise TimeoutError(f"{DAG_ID} was not parsed within {timeout}s; see {self.home}/dag-processor.log")

    def api(self, method: str, path: str, **kwargs) -> dict:
        """Airflow's REST API (what the UI calls), as the local all-admins user."""
        import requests

        token = requests.get(f"{self.url}/auth/token", timeout=10).json()["access_token"]
        resp = requests.request(
            method, f"{self.url}/api/v2{path}", headers={"Authorization": f"Bearer {token}"}, timeout=60, **kwargs
        )
        resp.raise_for_status()
        return resp.json()

    def clear(self, run_id: str, task_id: str, downstream: bool = False) -> None:
        """Clear one task of a run, as on-call does in the UI (the CLI's `tasks clear` of 3.3.2
        selects no task instance by run here)."""
        self.api(
            "POST",
            f"/dags/{DAG_ID}/clearTaskInstances",
            json={
                "dry_run": False,
                "dag_run_id": run_id,
                "task_ids": [task_id],
                "only_failed": False,
                "reset_dag_runs": True,
                "include_downstream": downstream,
            },
        )

    def unpause(self, timeout: float = 600) -> None:
        """Unpause the DAG, as in production. The scheduler then starts the run of the latest
        schedule tick (today's, catchup is off) at once; wait for it to end, whatever its state
        (the stand-ins hold no data for today's month), so later runs start on a quiet scheduler."""
        self.cli("dags", "unpause", DAG_ID)
        self.wait_for_runs(lambda runs: any(r["run_type"] == "scheduled" for r in runs), timeout, "the scheduled run")

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise RuntimeError(f"airflow {name} exited with {proc.returncode}; see {self.home}/{name}.log")

    def runs(self) -> list[dict]:
        rows = self.query(
            "SELECT run_id, logical_date, run_type, state FROM dag_run WHERE dag_id = %s ORDER BY logical_date",
            (DAG_ID,),
        )
        return [dict(zip(("run_id", "logical_date", "run_type", "state"), r, strict=True)) for r in rows]

    def task_states(self, run_id: str) -> dict[str, tuple[str, int]]:
        rows = self.query(
            "SELECT task_id, state, try_number FROM task_instance WHERE dag_id = %s AND run_id = %s",
            (DAG_ID, run_id),
        )
        return {t: (s, n) for t, s, n in rows}

    def wait_for_runs(self, predicate, timeout: float = 900, what: str = "runs") -> list[dict]:
        """Poll the runs until ``predicate(runs)`` holds and none is still queued or running."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            runs = self.runs()
            if predicate(runs) and not any(r["state"] in ("queued", "running") for r in runs):
                return runs
            time.sleep(2)
        raise TimeoutError(f"{what} did not finish within {timeout}s: {json.dumps(self.runs(), default=str)}")


# -- `make airflow` / `make backfill` ----------------------------------------------------------
LOCAL = ROOT / ".airflow-local"
STATE = LOCAL / "state.json"


def up(customers: int, port: int) -> int:
    """Sources for July 2025 (with three months of purchase history), the stand-ins, and Airflow
    with its UI on ``port``, the DAG unpaused; runs until Ctrl-C."""
    import signal

    def stop_on(signum, frame):  # SIGTERM (kill, a closed session's job) and SIGHUP stop it all, as Ctrl-C
        raise KeyboardInterrupt(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, stop_on)
    signal.signal(signal.SIGHUP, stop_on)
    stack = Stack(checkout_name("cp_local"), LOCAL / "stack")
    marker = LOCAL / "generated.json"
    if not marker.exists() or json.loads(marker.read_text()).get("customers") != customers:
        print(f"[airflow] generating July 2025 for {customers:,} customers...", flush=True)
        stack.create_databases()
        stack.generate(customers, "2025-07", seed=42, history_months=3)
        marker.write_text(json.dumps({"customers": customers}))
    af = LocalAirflow(stack, LOCAL / "home", port=port)
    try:
        stack.start_services()
        print("[airflow] starting Airflow (api-server, scheduler, dag-processor, triggerer)...", flush=True)
        af.start(fresh=not (LOCAL / "home" / "started").exists())
        (LOCAL / "home" / "started").touch()
        STATE.write_text(
            json.dumps(
                {
                    "env": {
                        k: v
                        for k, v in af.env().items()
                        if k.startswith(("AIRFLOW", "CUSTOMER_PERFORMANCE", "PYTHONPATH"))
                    }
                }
            )
        )
        print(
            f"[airflow] unpausing {DAG_ID} (its run for today starts at once and finds no data: expected)", flush=True
        )
        af.unpause()
        print(
            f"\n  Airflow UI:  {af.url}  (no login; loopback only)   stack: {stack.name}\n"
            f"  backfill:    make backfill FROM=2025-05 TO=2025-07   (in another terminal)\n"
            f"  report:      make report MONTH=2025-07\n"
            f"  logs:        {af.home}/*.log\n\nCtrl-C (or SIGTERM, SIGHUP) stops everything.",
            flush=True,
        )
        while True:
            time.sleep(2)
            af.check_alive()
    except KeyboardInterrupt:
        return 0
    finally:
        af.stop()
        stack.stop_services()


def local_env() -> dict[str, str]:
    if not STATE.exists():
        raise SystemExit("no local Airflow: start it first with `make airflow` (in another terminal)")
    return {**os.environ, **json.loads(STATE.read_text())["env"]}


def main() -> int:
    import argparse

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    u = sub.add_parser("up", help="sources, stand-ins and Airflow with a scheduler; until Ctrl-C")
    u.add_argument("--customers", type=int, default=2000)
    u.add_argument("--port", type=int, default=8080)
    b = sub.add_parser("backfill", help="backfill FROM..TO on the running local Airflow")
    b.add_argument("first")
    b.add_argument("last")
    r = sub.add_parser("report", help="the executive dashboard of a month from the local analytics DB")
    r.add_argument("month", nargs="?")
    a = p.parse_args()
    if a.command == "up":
        return up(a.customers, a.port)
    airflow = str(Path(sys.executable).parent / "airflow")
    args = (
        ["backfill", "--from", a.first, "--to", a.last, "--airflow", airflow]
        if a.command == "backfill"
        else ["report", *(["--month", a.month] if a.month else [])]
    )
    return subprocess.run(
        [sys.executable, "-m", "include.customer_performance", *args], cwd=ROOT, env=local_env()
    ).returncode


if __name__ == "__main__":
    sys.exit(main())
