"""Fixtures of the e2e tests."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from include.etl.config import CLIENTS_DIR
from include.etl.ingest.landing import Landing


@pytest.fixture(scope="session", autouse=True)
def _test_warehouse(warehouse_url: str) -> str:
    """Every test here runs against the fresh test warehouse (AIRFLOW_CONN_WAREHOUSE)."""
    return warehouse_url


def client1_only(folder: Path, **settings: Any) -> Path:
    """A clients folder (``ETL_CLIENTS_DIR``) holding the real defaults and client1's real
    config with ``settings`` replacing its top-level keys."""
    folder.mkdir()
    shutil.copy(CLIENTS_DIR / "_defaults.yaml", folder / "_defaults.yaml")
    config = yaml.safe_load((CLIENTS_DIR / "client1.yaml").read_text())
    config.update(settings)
    (folder / "client1.yaml").write_text(yaml.safe_dump(config))
    return folder


def stack_env(warehouse_url: str, landing: Landing, clients: Path) -> dict[str, str]:
    """What an Airflow stack of a test needs: INFO logs, the test warehouse, the test's
    landing root and clients folder."""
    return {
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "AIRFLOW_CONN_WAREHOUSE": warehouse_url,
        "ETL_DATA_ROOT": str(landing.root),
        "ETL_CLIENTS_DIR": str(clients),
    }
