"""Fixtures of the rule tests: a client freshly migrated on the test warehouse, its DAG."""

from __future__ import annotations

import psycopg
import pytest

from include.etl.config import ClientConfig
from include.etl.orchestration.factory import build_dag
from include.etl.warehouse.migrations import migrate
from tests.conftest import reset_client


@pytest.fixture(scope="session")
def client_dags(clients: dict[str, ClientConfig]) -> dict:
    return {name: build_dag(cfg) for name, cfg in clients.items()}


def _fresh(conn: psycopg.Connection, cfg: ClientConfig) -> ClientConfig:
    reset_client(conn, cfg)
    migrate(conn, [cfg])
    return cfg


@pytest.fixture
def client1(conn: psycopg.Connection, clients: dict[str, ClientConfig]) -> ClientConfig:
    """client1 forgotten by the warehouse and migrated again: empty bronze, silver, gold."""
    return _fresh(conn, clients["client1"])


@pytest.fixture
def client2(conn: psycopg.Connection, clients: dict[str, ClientConfig]) -> ClientConfig:
    """client2 forgotten by the warehouse and migrated again: empty bronze, silver, gold."""
    return _fresh(conn, clients["client2"])


@pytest.fixture(scope="session", autouse=True)
def _test_warehouse(warehouse_url: str) -> str:
    """Every test here runs against the fresh test warehouse (AIRFLOW_CONN_WAREHOUSE)."""
    return warehouse_url
