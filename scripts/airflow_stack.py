"""Airflow's services started as a deployment runs them, on a metadata database of their own.

Used by the tests that need a real scheduler (``tests/e2e/test_backfill.py``) and by the
benchmark's whole run on a scheduler (``benchmarks/scheduler.py``), so both start, wait
for and stop the services one way:

    with AirflowStack(home, metadata_url, env={...}) as stack:   # db migrate, reserialize
        stack.start("api-server", "scheduler")                    # waits until they answer
        stack.airflow("dags", "unpause", "client1")
        stack.wait_for("client1's run", lambda: ..., timeout=300)
        stack.metadata("SELECT state FROM dag_run WHERE ...")

Every service runs in a process group of its own (stopped whole on exit) and logs to
``<home>/logs/<service>.log``; a service that dies while something is awaited ends the
wait at once with the tail of its log. A service is a name and its command line
(``SERVICES``), so another (dag-processor, triggerer, a Celery worker) is one entry.
Development tooling: the product never imports it.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parents[1]
T = TypeVar("T")

# A service's command line, after ``python -m airflow``.
SERVICES: dict[str, list[str]] = {
    "api-server": ["api-server"],
    "scheduler": ["scheduler"],
    "dag-processor": ["dag-processor"],
    "triggerer": ["triggerer"],
}


class StackError(RuntimeError):
    """A service died or something awaited did not happen; the message says which."""


def worker_hostname() -> str:
    """The stack's ``[core] hostname_callable``: a service's own name when it was given
    one (``AIRFLOW_STACK_HOSTNAME``, e.g. each Celery worker), else the machine's. Airflow
    records it on every task instance it runs, so a test can tell two workers of one
    machine apart."""
    return os.environ.get("AIRFLOW_STACK_HOSTNAME") or socket.getfqdn()


def free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fresh_database(url: str) -> str:
    """Drop and create the database of ``url`` (a PostgreSQL URL); returns the URL as
    SQLAlchemy needs it for Airflow's metadata (``postgresql+psycopg2://``)."""
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(scheme="postgresql", path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return urlunsplit(parts._replace(scheme="postgresql+psycopg2"))


def database_beside(url: str, suffix: str) -> str:
    """A fresh database ``<url's database>_<suffix>`` on the same server (for Airflow's
    metadata of a stack); its URL as SQLAlchemy needs it."""
    parts = urlsplit(url)
    return fresh_database(urlunsplit(parts._replace(path=f"{parts.path}_{suffix}")))


def libpq(url: str) -> str:
    """A SQLAlchemy or Airflow PostgreSQL URL as libpq reads it."""
    scheme, rest = url.split("://", 1)
    return f"postgresql://{rest}" if scheme.startswith("postgres") else url


class AirflowStack:
    """An Airflow installation of its own (home, metadata database, port), its services
    started on demand and stopped on exit. ``env`` adds to (and wins over) the base
    settings; ``metadata_url`` must name an empty or migrated database."""

    def __init__(self, home: Path, metadata_url: str, env: dict[str, str] | None = None) -> None:
        self.home = Path(home)
        self.port = free_port()
        self.env: dict[str, str] = {
            **os.environ,
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_url,
            # housekeeping's `airflow db clean` (a task process is not given the URL above)
            "AIRFLOW_CONN_AIRFLOW_METADATA_DB": libpq(metadata_url),
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{self.port}/execution/",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "scripts.airflow_stack.worker_hostname",
            "PYTHONPATH": str(ROOT),
            **(env or {}),
        }
        self.logs = self.home / "logs"
        self.services: dict[str, subprocess.Popen] = {}

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> AirflowStack:
        self.logs.mkdir(parents=True, exist_ok=True)
        self.airflow("db", "migrate")
        self.airflow("dags", "reserialize")
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def airflow(self, *args: str, timeout: int = 600) -> str:
        """Run an ``airflow`` command of this installation; its stdout, or StackError."""
        done = subprocess.run(
            [sys.executable, "-m", "airflow", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if done.returncode:
            raise StackError(f"airflow {' '.join(args)} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
        return done.stdout

    def start(
        self,
        *names: str,
        commands: dict[str, list[str]] | None = None,
        env: dict[str, dict[str, str]] | None = None,
    ) -> None:
        """Start services (names of ``SERVICES`` or of ``commands``, each with its own
        extra ``env``, if any); returns once the api-server, if started, answers on both
        its APIs (their routes are generated on the first request each serves)."""
        known = {**SERVICES, **(commands or {})}
        for name in names:
            with (self.logs / f"{name}.log").open("w") as log:
                self.services[name] = subprocess.Popen(
                    [sys.executable, "-m", "airflow", *known[name]],
                    env={**self.env, **(env or {}).get(name, {})},
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # its own process group: stopped whole
                )
        if "api-server" in names:
            self.wait_for("the api-server", lambda: self._answers("/api/v2/monitor/health"), 180)
            self.wait_for("the execution API", lambda: self._answers("/execution/health"), 60)

    def celery_workers(self, *names: str, concurrency: int = 2) -> None:
        """Start Celery workers, each with its own name (``<name>@<machine>``, and the
        hostname Airflow records on the task instances it runs)."""
        commands = {
            name: ["celery", "worker", "--celery-hostname", f"{name}@%h", "--concurrency", str(concurrency)]
            for name in names
        }
        self.start(*names, commands=commands, env={n: {"AIRFLOW_STACK_HOSTNAME": n} for n in names})

    def kill(self, name: str) -> None:
        """Kill one service at once (SIGKILL to its process group), as a crash would."""
        service = self.services.pop(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(service.pid, signal.SIGKILL)
        service.wait()

    def stop(self, names: Iterable[str] | None = None) -> None:
        """Stop services (all by default): SIGTERM, then SIGKILL after 60 s."""
        chosen = {n: self.services.pop(n) for n in list(names or self.services) if n in self.services}
        for service in chosen.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(service.pid, signal.SIGTERM)
        for service in chosen.values():
            try:
                service.wait(timeout=60)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(service.pid, signal.SIGKILL)
                service.wait()

    # ------------------------------------------------------------------ waiting and reading
    def wait_for(self, what: str, check: Callable[[], T], timeout: float, every: float = 0.5) -> T:
        """``check()``'s first truthy result; StackError when ``timeout`` passes or a
        service stops first (with the tail of its log)."""
        deadline = time.monotonic() + timeout
        while True:
            result = check()
            if result:
                return result
            stopped = [n for n, s in self.services.items() if s.poll() is not None]
            if stopped:
                raise StackError(f"{what}: {', '.join(stopped)} stopped\n{self.log_tail(stopped[0])}")
            if time.monotonic() > deadline:
                raise StackError(f"{what}: not after {timeout:.0f} s; logs in {self.logs}")
            time.sleep(every)

    def log_tail(self, name: str, chars: int = 4000) -> str:
        """The end of a service's log."""
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    def metadata(self, query: str, *params: Any) -> list[tuple]:
        """Rows of a query on this installation's metadata database."""
        with psycopg.connect(libpq(self.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])) as conn:
            return conn.execute(query, params).fetchall()

    def token(self, username: str, password: str) -> str:
        """A JWT for a user of the simple auth manager (``POST /auth/token``)."""
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/auth/token",
            data=json.dumps({"username": username, "password": password}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return str(json.loads(response.read())["access_token"])

    def _answers(self, path: str) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=30) as response:
                return bool(response.status == 200)
        except OSError:
            return False


def redis_server(port: int, logs: Path) -> subprocess.Popen:
    """A Redis server on ``port`` (Debian's ``redis-server``), nothing kept on disk."""
    with (logs / "redis.log").open("w") as log:
        server = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 20
    while subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True).stdout != b"PONG\n":
        if time.monotonic() > deadline:
            raise StackError(f"redis-server did not start; see {logs / 'redis.log'}")
        time.sleep(0.2)
    return server


def s3_server(port: int, logs: Path) -> subprocess.Popen:
    """An S3 API server on ``port`` (moto's server mode, from the dev requirements; MinIO
    in the compose file), objects kept in memory. Clients reach it over HTTP with the
    same libraries as real S3 (boto3, s3fs), at ``endpoint_url`` ``http://127.0.0.1:<port>``."""
    server_bin = Path(sys.executable).with_name("moto_server")
    with (logs / "s3.log").open("w") as log:
        server = subprocess.Popen(
            [str(server_bin), "-H", "127.0.0.1", "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2):
                return server
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                raise StackError(f"the S3 server did not start; see {logs / 's3.log'}") from None
            time.sleep(0.2)


def main() -> None:
    """``make stack``: the compose file's services without Docker, until Ctrl-C: Redis,
    the api-server, scheduler, dag-processor, triggerer and Celery workers, on a metadata
    database of their own (``<database>_stack``) and the project's warehouse."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--workers", type=int, default=2, help="Celery workers (default 2)")
    args = parser.parse_args()
    base = os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    metadata = database_beside(base, "stack")
    home = ROOT / ".local" / "stack"
    home.mkdir(parents=True, exist_ok=True)
    redis_port = free_port()
    redis = redis_server(redis_port, home)
    env = {
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CELERY__BROKER_URL": f"redis://127.0.0.1:{redis_port}/0",
        "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + libpq(metadata),
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
    }
    try:
        with AirflowStack(home, metadata, env) as stack:
            stack.start("api-server", "scheduler", "dag-processor", "triggerer")
            stack.celery_workers(*(f"worker{n}" for n in range(1, args.workers + 1)))
            print(
                f"Airflow on http://127.0.0.1:{stack.port} (user admin, password in {home}/"
                f"simple_auth_manager_passwords.json.generated); logs in {stack.logs}; Ctrl-C stops it"
            )
            while all(s.poll() is None for s in stack.services.values()):
                time.sleep(2)
            stopped = [n for n, s in stack.services.items() if s.poll() is not None]
            print(f"{', '.join(stopped)} stopped:\n{stack.log_tail(stopped[0])}")
    except KeyboardInterrupt:
        pass
    finally:
        os.killpg(redis.pid, signal.SIGTERM)


if __name__ == "__main__":
    main()
