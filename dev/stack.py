"""The local stack the demo and the tests run against: databases, stand-ins, Airflow environment.

One ``Stack`` owns a name prefix for its databases (``<name>_customer``, ``<name>_sales``,
``<name>_analytics``), a work folder for the stand-ins' stores, mail and exports, and the ports of
its three stand-in processes. ``airflow_env()`` gives the environment (connections as
``AIRFLOW_CONN_*``, a SQLite metadata DB under a local ``AIRFLOW_HOME``) in which the DAG runs.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
MYSQL = {"host": "127.0.0.1", "port": 3306, "user": "root", "passwd": ""}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_ports(n: int) -> list[int]:
    """``n`` distinct free ports: the sockets are held open together while the system picks them
    (one at a time, a port just released may be picked again)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def wait_for_port(port: int, proc: subprocess.Popen, name: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{name} did not listen on 127.0.0.1:{port} within {timeout}s")


def stop_processes(procs: dict[str, subprocess.Popen], timeout: float = 10) -> None:
    """Terminate the processes, kill those still running after ``timeout``, forget them all."""
    for proc in procs.values():
        proc.terminate()
    for proc in procs.values():
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
    procs.clear()


def checkout_name(prefix: str) -> str:
    """The name of this checkout's stack for a tool (``make demo``, ``make airflow``, ``make bench``):
    ``STACK`` when set, else the prefix and a hash of the checkout's path, so that two checkouts on
    one database server never share (or drop) each other's databases."""
    import hashlib
    import re

    if os.environ.get("STACK"):
        name = os.environ["STACK"].lower()
        if not re.fullmatch(r"[a-z][a-z0-9_]{0,30}", name):
            raise SystemExit(f"STACK={name!r}: use letters, digits and _ (at most 31), starting with a letter")
        return f"{prefix}_{name}"
    return f"{prefix}_{hashlib.sha1(str(ROOT).encode()).hexdigest()[:6]}"


def pg_dsn(dbname: str) -> str:
    return f"host={PG['host']} port={PG['port']} user={PG['user']} dbname={dbname}"


@dataclass
class Stack:
    name: str
    workdir: Path
    crm_port: int = field(default_factory=free_port)
    bi_port: int = field(default_factory=free_port)
    smtp_port: int = field(default_factory=free_port)
    fx_port: int = field(default_factory=free_port)
    crm_token: str = "local-crm-token"
    bi_token: str = "local-bi-token"
    procs: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        # two stand-ins on one port: the second cannot listen, and its clients reach the first
        ports = [self.crm_port, self.bi_port, self.smtp_port, self.fx_port]
        if len(set(ports)) < len(ports):
            self.crm_port, self.bi_port, self.smtp_port, self.fx_port = free_ports(4)

    # -- databases -----------------------------------------------------------------------------
    @property
    def customer_db(self) -> str:
        return f"{self.name}_customer"

    @property
    def sales_db(self) -> str:
        return f"{self.name}_sales"

    @property
    def analytics_db(self) -> str:
        return f"{self.name}_analytics"

    @property
    def crm_store(self) -> Path:
        return self.workdir / "crm.sqlite"

    @property
    def bi_store(self) -> Path:
        return self.workdir / "bi.sqlite"

    @property
    def fx_file(self) -> Path:
        """The rates file the FX stand-in serves: when missing, the bundled ECB history with its last
        rates carried forward to today (synthetic, so that today's month has rates locally)."""
        return self.workdir / "fx" / "eurofxref-hist.csv"

    @property
    def mail_dir(self) -> Path:
        return self.workdir / "mail"

    @property
    def smtp_faults_file(self) -> Path:
        return self.workdir / "smtp_faults.json"

    def smtp_faults(self, **faults: int) -> None:
        """Queue SMTP sink faults (``lose_reply=1``, ``refuse=1``; see dev/smtp_sink.py)."""
        self.smtp_faults_file.write_text(json.dumps(faults))

    @property
    def export_dir(self) -> Path:
        return self.workdir / "exports"

    def _mysql_admin(self, statement: str) -> None:
        import MySQLdb

        conn = MySQLdb.connect(**MYSQL)
        try:
            conn.cursor().execute(statement)
        finally:
            conn.close()

    def create_databases(self, keep_analytics: bool = False, keep_sources: bool = False) -> None:
        """(Re)create the databases; a kept one is only created when missing."""
        import psycopg

        with psycopg.connect(pg_dsn("postgres"), autocommit=True) as conn:
            for db, keep in ((self.customer_db, keep_sources), (self.analytics_db, keep_analytics)):
                exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db,)).fetchone()
                if exists and keep:
                    continue
                conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
                conn.execute(f'CREATE DATABASE "{db}"')
        if not keep_sources:
            self._mysql_admin(f"DROP DATABASE IF EXISTS `{self.sales_db}`")
        self._mysql_admin(f"CREATE DATABASE IF NOT EXISTS `{self.sales_db}`")

    def reset_unversioned_analytics(self) -> bool:
        """Drop a kept analytics schema that an earlier development build created before versioned
        migrations (the load refuses it); the demo and the benchmark start from a known schema."""
        import psycopg

        with psycopg.connect(pg_dsn(self.analytics_db), autocommit=True) as conn:
            old = conn.execute(
                "SELECT to_regclass('analytics.pipeline_runs') IS NOT NULL"
                " AND to_regclass('analytics.schema_migrations') IS NULL"
            ).fetchone()[0]
            if old:
                conn.execute("DROP SCHEMA analytics CASCADE")
        return old

    def drop_databases(self) -> None:
        import psycopg

        with psycopg.connect(pg_dsn("postgres"), autocommit=True) as conn:
            for db in (self.customer_db, self.analytics_db):
                conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        self._mysql_admin(f"DROP DATABASE IF EXISTS `{self.sales_db}`")
        self._mysql_admin(f"DROP DATABASE IF EXISTS `{self.sales_db}_h1`")  # the bench's 1-month copy

    def generate(self, customers: int, month: str, seed: int = 42, **kwargs) -> dict:
        sys.path.insert(0, str(ROOT))
        from dev.generate import generate

        return generate(
            customers,
            month,
            pg_dsn(self.customer_db),
            {**MYSQL, "db": self.sales_db},
            self.crm_store,
            seed=seed,
            **kwargs,
        )

    # -- stand-in processes --------------------------------------------------------------------
    def start_services(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.export_dir.mkdir(parents=True, exist_ok=True)  # a missing export location is an error
        if not self.fx_file.exists():
            sys.path.insert(0, str(ROOT))
            from dev.fx_api import write_rates_file

            write_rates_file(self.fx_file, carry_forward_to=date.today())
        for name in self._specs():
            self.start_service(name)

    def _specs(self) -> dict[str, tuple[list[str], int]]:
        py = sys.executable
        return {
            "crm_api": (
                [py, "dev/crm_api.py", "--store", str(self.crm_store), "--port", str(self.crm_port)]
                + ["--token", self.crm_token],
                self.crm_port,
            ),
            "bi_api": (
                [py, "dev/bi_api.py", "--store", str(self.bi_store), "--port", str(self.bi_port)]
                + ["--token", self.bi_token],
                self.bi_port,
            ),
            "smtp_sink": (
                [py, "dev/smtp_sink.py", "--dir", str(self.mail_dir), "--port", str(self.smtp_port)]
                + ["--faults", str(self.smtp_faults_file)],
                self.smtp_port,
            ),
            "fx_api": ([py, "dev/fx_api.py", "--file", str(self.fx_file), "--port", str(self.fx_port)], self.fx_port),
        }

    def start_service(self, name: str) -> None:
        cmd, port = self._specs()[name]
        log = (self.workdir / f"{name}.log").open("ab")
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        self.procs[name] = proc
        wait_for_port(port, proc, name)

    def rotate_crm_token(self, token: str) -> None:
        """The CRM issues a new token: its stand-in restarts accepting only ``token`` (the Airflow
        connection still holds the old one until someone renews it)."""
        stop_processes({"crm_api": self.procs.pop("crm_api")})
        self.crm_token = token
        self.start_service("crm_api")

    def stop_services(self) -> None:
        stop_processes(self.procs)

    # -- the Airflow environment ---------------------------------------------------------------
    def connections(self) -> dict[str, dict]:
        pg_conn = {"conn_type": "postgres", "host": PG["host"], "port": PG["port"], "login": PG["user"]}
        return {
            "customer_db": {**pg_conn, "schema": self.customer_db},
            "analytics_db": {**pg_conn, "schema": self.analytics_db},
            "sales_db": {
                "conn_type": "mysql",
                "host": MYSQL["host"],
                "port": MYSQL["port"],
                "login": MYSQL["user"],
                "password": MYSQL["passwd"],
                "schema": self.sales_db,
            },
            "crm_api": {
                "conn_type": "http",
                "host": "127.0.0.1",
                "port": self.crm_port,
                "schema": "http",
                "password": self.crm_token,
            },
            "bi_api": {
                "conn_type": "http",
                "host": "127.0.0.1",
                "port": self.bi_port,
                "schema": "http",
                "password": self.bi_token,
            },
            "fx_rates": {
                "conn_type": "http",
                "host": "127.0.0.1",
                "port": self.fx_port,
                "schema": "http",
                "extra": {"path": "/stats/eurofxref/eurofxref-hist.zip"},
            },
            "smtp_default": {
                "conn_type": "smtp",
                "host": "127.0.0.1",
                "port": self.smtp_port,
                "extra": {"disable_ssl": True, "disable_tls": True, "timeout": 10},
            },
        }

    def airflow_env(self, airflow_home: Path) -> dict[str, str]:
        env = {
            "AIRFLOW_HOME": str(airflow_home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{airflow_home / 'airflow.db'}",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
            "CUSTOMER_PERFORMANCE_EXPORT_LOCATION": str(self.export_dir),
            # `airflow dags test` (3.3.2) fails the end of a run whose DAG has a Deadline Alert: it
            # looks the alerts up by id, but its DAG holds them as objects. Runs under dags test go
            # without; a scheduler (dev/airflow_local.py) keeps it.
            "CUSTOMER_PERFORMANCE_DEADLINE_MINUTES": "0",
        }
        for conn_id, conn in self.connections().items():
            env[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps(conn)
        return env

    def prepare_airflow(self, airflow_home: Path) -> dict[str, str]:
        """The environment of ``airflow_env`` over this process's, with its SQLite metadata DB
        migrated (once) and the pools imported: ready for ``airflow dags test`` (the benchmarks)."""
        env = {**os.environ, **self.airflow_env(airflow_home)}
        airflow = str(Path(sys.executable).parent / "airflow")
        if not (airflow_home / "airflow.db").exists():
            subprocess.run([airflow, "db", "migrate"], env=env, check=True, capture_output=True)
        subprocess.run([airflow, "pools", "import", str(ROOT / "pools.json")], env=env, check=True, capture_output=True)
        return env

    def fx_faults(self, faults: list[dict] | None) -> None:
        """Queue faults on the FX stand-in (e.g. ``[{"status": 503, "times": 100}]``: the source is
        down), or clear them with None."""
        import requests

        url = f"http://127.0.0.1:{self.fx_port}/_control/faults"
        resp = requests.post(url, json=faults, timeout=10) if faults else requests.delete(url, timeout=10)
        resp.raise_for_status()

    def bi_rows(self, dataset: str = "customer_performance") -> dict[str, int]:
        import requests

        resp = requests.get(
            f"http://127.0.0.1:{self.bi_port}/datasets/{dataset}/tables",
            headers={"Authorization": f"Bearer {self.bi_token}"},
            timeout=10,
        )
        resp.raise_for_status()
        return resp.json()

    def mails(self) -> list[Path]:
        return sorted(self.mail_dir.glob("*.eml"))
