"""Fixtures of the e2e tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session", autouse=True)
def _test_warehouse(warehouse_url: str) -> str:
    """Every test here runs against the fresh test warehouse (AIRFLOW_CONN_WAREHOUSE)."""
    return warehouse_url
