"""Shared fixtures: a fresh warehouse database on the real PostgreSQL, a landing root.

Tests are marked by folder: ``unit`` (tests/unit, tests/dags, test_compose.py: no
database, no service), ``db`` (tests/integration, tests/rules: PostgreSQL) and ``e2e``
(tests/e2e: Airflow against PostgreSQL). ``make test-unit`` runs the unit tests alone,
with no PostgreSQL at all; ``make test`` runs everything through ``scripts/with-env``,
which starts the embedded PostgreSQL and sets ``AIRFLOW_CONN_WAREHOUSE``. The database
tests use a database of their own next to it, ``<warehouse database>_test``, created
fresh for each session, so a test run never touches the demo warehouse.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

from include.etl.config import ClientConfig, load_clients
from include.etl.ingest.landing import Landing


def _test_database_url() -> str:
    base = os.environ.get("AIRFLOW_CONN_WAREHOUSE")
    if not base:
        pytest.exit("AIRFLOW_CONN_WAREHOUSE is not set: run the tests with `make test`", returncode=2)
    parts = urlsplit(base)
    database = parts.path.lstrip("/") or "warehouse"
    test_database = os.environ.get("WAREHOUSE_TEST_DB", f"{database}_test")
    worker = os.environ.get("PYTEST_XDIST_WORKER")  # under pytest -n: one warehouse a process
    if worker:
        test_database = f"{test_database}_{worker}"
    return urlunsplit(parts._replace(path=f"/{test_database}"))


def _libpq(url: str) -> str:
    return url.replace("postgres://", "postgresql://", 1)


MARKS = {"unit": "unit", "dags": "unit", "integration": "db", "rules": "db", "e2e": "e2e"}


def pytest_configure(config: pytest.Config) -> None:
    """Under ``pytest -n`` (``make test`` runs two workers), each worker gets databases
    and an Airflow home of its own, so workers never see each other's clients, runs or
    logs: the test warehouse named with the worker (``_test_database_url``; its source
    database and the stacks' metadata databases are named after it), a fresh Airflow
    metadata database ``<airflow>_<worker>``, migrated before anything imports Airflow,
    and an Airflow home."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    metadata = os.environ.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN")
    if not worker or not metadata or not os.environ.get("AIRFLOW_CONN_WAREHOUSE"):
        return
    import subprocess
    import sys

    from scripts.airflow_stack import fresh_database, libpq

    parts = urlsplit(metadata)
    own = fresh_database(libpq(urlunsplit(parts._replace(path=f"{parts.path}_{worker}"))))
    home = Path(os.environ.get("AIRFLOW_HOME", Path.home() / "airflow")) / "test-workers" / worker
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    os.environ.update(
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=own,
        AIRFLOW_CONN_AIRFLOW_METADATA_DB=libpq(own),
        AIRFLOW_HOME=str(home),
    )
    migrated = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"], capture_output=True, text=True, check=False
    )
    if migrated.returncode:
        pytest.exit(f"airflow db migrate for test worker {worker} failed:\n{migrated.stderr[-3000:]}", 2)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test by its folder (``MARKS``); a test outside them is a unit test."""
    for item in items:
        folder = Path(item.path).relative_to(Path(__file__).parent).parts[0]
        item.add_marker(MARKS.get(folder, "unit"))


@pytest.fixture(scope="session")
def warehouse_url() -> Iterator[str]:
    """A fresh test warehouse; Airflow's ``warehouse`` connection points at it."""
    url = _test_database_url()
    name = urlsplit(url).path.lstrip("/")
    admin = urlunsplit(urlsplit(url)._replace(path="/postgres"))
    with psycopg.connect(_libpq(admin), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    previous = os.environ.get("AIRFLOW_CONN_WAREHOUSE")
    os.environ["AIRFLOW_CONN_WAREHOUSE"] = url
    os.environ["WAREHOUSE_DSN"] = _libpq(url)
    yield url
    if previous is not None:
        os.environ["AIRFLOW_CONN_WAREHOUSE"] = previous
    os.environ.pop("WAREHOUSE_DSN", None)


@pytest.fixture(scope="session")
def source_url(warehouse_url: str) -> Iterator[str]:
    """A fresh source database beside the test warehouse (``<warehouse>_source``); Airflow's
    ``app_source`` connection (client4's database source) points at it."""
    parts = urlsplit(warehouse_url)
    name = parts.path.lstrip("/") + "_source"
    url = urlunsplit(parts._replace(path=f"/{name}"))
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(_libpq(admin), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    previous = os.environ.get("AIRFLOW_CONN_APP_SOURCE")
    os.environ["AIRFLOW_CONN_APP_SOURCE"] = url
    yield _libpq(url)
    if previous is not None:
        os.environ["AIRFLOW_CONN_APP_SOURCE"] = previous


@pytest.fixture
def conn(warehouse_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(_libpq(warehouse_url), autocommit=True) as connection:
        yield connection


@pytest.fixture(scope="session")
def clients() -> dict[str, ClientConfig]:
    configs, errors = load_clients()
    assert not errors, errors
    return {cfg.client: cfg for cfg in configs}


@pytest.fixture
def landing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Landing:
    """An empty landing root for this test; tasks find it through ETL_DATA_ROOT."""
    root = tmp_path / "landing"
    root.mkdir()
    monkeypatch.setenv("ETL_DATA_ROOT", str(root))
    return Landing(root)


def complete(path: Path | str) -> Path:
    """Mark a delivered file as written a while ago: its sender has finished, the settle
    time (``sensor.settle_seconds``) has passed, and a batch may claim it."""
    written = time.time() - 3600
    os.utime(path, (written, written))
    return Path(path)


def deliver_demo(
    client: str, landing: Landing, out_dir: Path, rows: int = 500, skip=(), edit=None
) -> dict[str, Path]:
    """Generate a demo client's files into ``out_dir`` and copy them into its incoming
    folders, as a delivery arrives. ``skip``: logical files left out; ``edit``: called on
    each generated file before it is delivered. Returns the generated files by name."""
    from demo import generate

    generated = {}
    for path in generate(client, out_dir, rows=rows):
        generated[path.name] = path
        if path.stem in skip:
            continue
        if edit is not None:
            edit(path)
        target = landing.raw(client, path.parent.name, "incoming")
        target.mkdir(parents=True, exist_ok=True)
        complete(Path(shutil.copy2(path, target / path.name)))
    return generated


def reset_client(conn: psycopg.Connection, cfg: ClientConfig) -> None:
    """Forget everything the warehouse knows about a client (schemas, tools rows)."""
    for schema in (cfg.bronze_schema, cfg.silver_schema, cfg.gold_schema):
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
    exists = conn.execute("SELECT to_regclass('tools.batch') IS NOT NULL").fetchone()[0]
    if not exists:
        return
    for table in (
        "snapshot_delivery",
        "snapshot_vanished",
        "watermarks",
        "extract_window",
        "batch_health",
        "alert_log",
        "housekeeping_log",
        "schema_drift_log",
        "schema_registry",
        "rejected_rows",
        "sql_step_log",
        "sql_step_state",
        "load_error_log",
        "row_validation_log",
        "mapping_validation_log",
        "job_execution_log",
        "file_audit_log",
        "batch_run",
        "client_lease",
        "batch",
        "column_mapping",
        "client_config",
        "sql_step_config",
        "client_reference",
    ):
        conn.execute(
            sql.SQL("DELETE FROM {} WHERE client_schema = %s").format(sql.Identifier("tools", table)),
            (cfg.client,),
        )
    conn.execute(
        "DELETE FROM tools.schema_migrations WHERE scope IN (%s, %s)", (cfg.client, f"{cfg.client}:own")
    )
