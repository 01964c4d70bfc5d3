"""Fixtures shared by the integration tests."""

from __future__ import annotations

import psycopg
import pytest

from include.etl.config import ClientConfig
from include.etl.warehouse.migrations import migrate
from tests.conftest import reset_client


@pytest.fixture
def cfg(conn: psycopg.Connection, clients: dict[str, ClientConfig]) -> ClientConfig:
    """client1, forgotten by the warehouse and migrated again: a clean start per test."""
    config = clients["client1"]
    reset_client(conn, config)
    migrate(conn, [config])
    return config


@pytest.fixture(scope="session", autouse=True)
def _test_warehouse(warehouse_url: str) -> str:
    """Every test here runs against the fresh test warehouse (AIRFLOW_CONN_WAREHOUSE)."""
    return warehouse_url
