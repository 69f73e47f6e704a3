"""Airflow with a real scheduler on this machine, for `make airflow`, the backfill and rerun tests
and the benchmark: metadata in PostgreSQL (database ``<stack>_airflow``), LocalExecutor, and the
four Airflow 3 components as processes (api-server, which also serves the UI and the execution
API the tasks talk to; scheduler; dag-processor; triggerer, which runs Deadline Alert callbacks).
The stack's connections are passed as ``AIRFLOW_CONN_*``.

    with LocalAirflow(stack, home) as af:
        af.cli("backfill", "create", ...)
        af.wait_for_run(logical_date)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psycopg

from dev.stack import PG, ROOT, Stack, free_port, pg_dsn, wait_for_port

DAG_ID = "customer_performance"
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")


class LocalAirflow:
    def __init__(self, stack: Stack, home: Path, port: int | None = None, parallelism: int = 4):
        self.stack = stack
        self.home = home
        self.port = port or free_port()
        self.db = f"{stack.name}_airflow"
        self.parallelism = parallelism
        self.procs: dict[str, subprocess.Popen] = {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = {**os.environ, **self.stack.airflow_env(self.home)}
        env.pop("CUSTOMER_PERFORMANCE_DEADLINE_MINUTES")  # a scheduler serialises the Deadline Alert
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
        return env

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
        for name in COMPONENTS:
            log = (self.home / f"{name}.log").open("ab")
            cmd = [self.airflow, name] + (["--port", str(self.port)] if name == "api-server" else [])
            self.procs[name] = subprocess.Popen(cmd, cwd=ROOT, env=self.env(), stdout=log, stderr=subprocess.STDOUT)
        wait_for_port(self.port, self.procs["api-server"], "airflow api-server", timeout=120)
        self.wait_for_dag()

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.procs.clear()

    def __enter__(self) -> LocalAirflow:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

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
