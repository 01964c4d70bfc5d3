"""docker-compose.yaml cannot run here (no Docker engine): check what can be checked."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yaml").read_text())
AIRFLOW_SERVICES = [
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
]


def test_the_stack_has_every_airflow_3_service() -> None:
    assert set(COMPOSE["services"]) == {"postgres", "redis", *AIRFLOW_SERVICES}
    commands = {name: COMPOSE["services"][name]["command"] for name in AIRFLOW_SERVICES}
    assert commands["airflow-scheduler"] == "scheduler"
    assert commands["airflow-dag-processor"] == "dag-processor"
    assert commands["airflow-triggerer"] == "triggerer"
    assert commands["airflow-apiserver"] == "api-server"
    assert commands["airflow-worker"] == "celery worker"


def test_services_share_config_code_and_landing_store() -> None:
    for name in AIRFLOW_SERVICES:
        service = COMPOSE["services"][name]
        env = service["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
        assert env["AIRFLOW_CONN_WAREHOUSE"].startswith("postgresql://")
        assert env["ETL_DATA_ROOT"] == "/opt/airflow/landing"
        mounts = {v.split(":")[0]: v.split(":")[1] for v in service["volumes"]}
        for folder in ("dags", "include", "sql", "plugins"):
            assert (ROOT / folder).is_dir()
            assert mounts[f"./{folder}"] == f"/opt/airflow/{folder}"
        assert mounts["landing"] == "/opt/airflow/landing"


def test_image_pins_the_same_airflow_as_requirements() -> None:
    requirements = (ROOT / "requirements.txt").read_text()
    pinned = re.search(r"^apache-airflow==([\d.]+)$", requirements, re.M).group(1)
    assert f"apache/airflow:{pinned}-" in (ROOT / "Dockerfile").read_text()


def test_no_secret_in_the_file() -> None:
    text = (ROOT / "docker-compose.yaml").read_text()
    for url in re.findall(r"\w+://[^\s\"']+", text):
        if "@" in url:
            assert ":${POSTGRES_PASSWORD" in url, url
