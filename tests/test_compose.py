"""docker-compose.yaml cannot run here (no Docker engine): check what can be checked."""

from __future__ import annotations

import json
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
# Settings every Airflow container must share, each taken from a .env variable.
SHARED_SECRETS = ["AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API__SECRET_KEY"]
# `${VAR:?message}`: compose refuses to start when VAR is unset or empty.
REQUIRED_VAR = r"\$\{(\w+):\?[^}]+\}"


def _service(name: str) -> dict:
    return COMPOSE["services"][name]


def _mounts(service: dict) -> dict[str, str]:
    return {v.split(":")[0]: v.split(":")[1] for v in service["volumes"]}


def test_the_stack_has_every_airflow_3_service() -> None:
    assert set(COMPOSE["services"]) == {
        "postgres",
        "redis",
        "minio",
        "minio-init",
        "statsd-exporter",
        *AIRFLOW_SERVICES,
    }
    commands = {name: _service(name)["command"] for name in AIRFLOW_SERVICES}
    assert commands["airflow-scheduler"] == "scheduler"
    assert commands["airflow-dag-processor"] == "dag-processor"
    assert commands["airflow-triggerer"] == "triggerer"
    assert commands["airflow-apiserver"] == "api-server"
    assert commands["airflow-worker"] == "celery worker"


def test_metrics_go_to_the_statsd_exporter() -> None:
    exporter = COMPOSE["services"]["statsd-exporter"]
    assert "--statsd.listen-udp=:9125" in exporter["command"]
    for name in AIRFLOW_SERVICES:
        env = _service(name)["environment"]
        assert env["AIRFLOW__METRICS__STATSD_ON"] == "true"
        assert (env["AIRFLOW__METRICS__STATSD_HOST"], env["AIRFLOW__METRICS__STATSD_PORT"]) == (
            "statsd-exporter",
            "9125",
        )


def test_services_share_config_code_and_landing_store() -> None:
    for name in AIRFLOW_SERVICES:
        service = _service(name)
        env = service["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
        assert env["AIRFLOW_CONN_WAREHOUSE"].startswith("postgresql://")
        assert env["ETL_DATA_ROOT"] == "s3://landing_store@etl-landing/landing"
        store = json.loads(re.sub(REQUIRED_VAR, r"\1", env["AIRFLOW_CONN_LANDING_STORE"]))
        assert store["extra"]["endpoint_url"] == "http://minio:9000"
        assert (store["login"], store["password"]) == ("MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD")
        mounts = _mounts(service)
        for folder in ("dags", "include", "sql", "plugins"):
            assert (ROOT / folder).is_dir()
            assert mounts[f"./{folder}"] == f"/opt/airflow/{folder}"
        assert mounts["landing"] == "/opt/airflow/landing"


def test_the_landing_bucket_is_made_before_airflow_starts() -> None:
    assert "mc mb --ignore-existing store/etl-landing" in " ".join(_service("minio-init")["entrypoint"])
    for name in AIRFLOW_SERVICES:
        needs = _service(name).get("depends_on", {})
        assert needs["minio-init"] == {"condition": "service_completed_successfully"}, name


def test_every_airflow_service_shares_the_secrets_from_env() -> None:
    for key in SHARED_SECRETS:
        values = {name: _service(name)["environment"].get(key) for name in AIRFLOW_SERVICES}
        for name, value in values.items():
            assert value is not None, f"{name} lacks {key}"
            assert re.fullmatch(REQUIRED_VAR, value), f"{name}: {key} is not a required .env variable"
        assert len(set(values.values())) == 1, f"{key} differs between services: {values}"


def test_init_hands_the_landing_volume_to_the_airflow_user() -> None:
    init = _service("airflow-init")
    assert init["user"] == "0:0"
    script = " ".join(init["command"]) if isinstance(init["command"], list) else init["command"]
    mkdir = script.index("mkdir -p /opt/airflow/landing")
    migrate = script.index("airflow db migrate")
    chown = re.search(r"chown -R 50000:0 [^\n]*/opt/airflow/landing", script)
    assert chown, script
    assert mkdir < migrate < chown.start()
    assert _mounts(init)["landing"] == "/opt/airflow/landing"


def test_admin_password_reaches_the_api_server() -> None:
    init, api = _service("airflow-init"), _service("airflow-apiserver")
    assert re.fullmatch(REQUIRED_VAR, init["environment"]["AIRFLOW_ADMIN_PASSWORD"])
    assert init["environment"]["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] == "admin:admin"
    passwords_file = api["environment"]["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]
    folder = str(Path(passwords_file).parent)
    script = "\n".join(init["command"])
    assert f"> {passwords_file}" in script
    assert re.search(rf"chown -R 50000:0 [^\n]*{folder}", script)
    shared = {v for v, path in _mounts(init).items() if path == folder}
    assert shared and shared == {v for v, path in _mounts(api).items() if path == folder}
    for name in AIRFLOW_SERVICES:  # nobody else gets the admin password
        if name != "airflow-init":
            assert "AIRFLOW_ADMIN_PASSWORD" not in _service(name)["environment"]


def test_the_etl_runs_as_its_own_role() -> None:
    for name in AIRFLOW_SERVICES:
        url = _service(name)["environment"]["AIRFLOW_CONN_WAREHOUSE"]
        match = re.fullmatch(rf"postgresql://etl:{REQUIRED_VAR}@postgres:5432/warehouse", url)
        assert match and match.group(1) == "ETL_DB_PASSWORD", url
    postgres = _service("postgres")
    assert re.fullmatch(REQUIRED_VAR, postgres["environment"]["ETL_DB_PASSWORD"])
    init_scripts = {
        target: source
        for source, target, *_ in (v.split(":") for v in postgres["volumes"])
        if target.startswith("/docker-entrypoint-initdb.d/")
    }
    assert len(init_scripts) == 1
    (target, source), *_ = init_scripts.items()
    assert target.endswith(".sql")
    sql = (ROOT / source).read_text()
    assert "\\getenv etl_password ETL_DB_PASSWORD" in sql
    assert "CREATE ROLE etl LOGIN PASSWORD :'etl_password';" in sql
    assert "CREATE DATABASE warehouse OWNER etl" in sql
    assert "LC_COLLATE 'C' LC_CTYPE 'C.UTF-8';" in sql


def test_image_pins_the_same_airflow_as_requirements() -> None:
    requirements = (ROOT / "requirements.txt").read_text()
    pinned = re.search(r"^apache-airflow==([\d.]+)$", requirements, re.M).group(1)
    assert f"apache/airflow:{pinned}-" in (ROOT / "Dockerfile").read_text()


def test_no_secret_in_the_file() -> None:
    text = (ROOT / "docker-compose.yaml").read_text()
    userinfo = re.findall(r"://(\w+):(\$\{[^}]*\}|[^@\s/]*)@", text)
    assert len(userinfo) >= 3  # metadata, Celery result backend, warehouse
    for user, password in userinfo:
        assert re.fullmatch(REQUIRED_VAR, password), f"{user}: {password}"
    for name, service in COMPOSE["services"].items():
        for key, value in service.get("environment", {}).items():
            if re.search(r"PASSWORD$|SECRET|FERNET_KEY", key):
                assert re.fullmatch(REQUIRED_VAR, value), f"{name}: {key} must come from .env"
