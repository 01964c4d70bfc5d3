"""The production stack without Docker: the same services as ``docker-compose.yaml``
(Redis, the api-server, scheduler, dag-processor, triggerer and two Celery workers), run
from the project's environment on a metadata database of their own.

client1 and client2 run at the same time, on both workers. While they run, one worker is
killed in the middle of a task: that task fails over (the scheduler finds it without a
heartbeat) and is retried on the other worker. Both batches must still succeed, and gold
must hold what the value oracles compute from the same files (what a ``dag.test`` run of
them gives, as ``tests/e2e/test_pipeline.py`` shows).
"""

from __future__ import annotations

import importlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from include.etl.config import CLIENTS_DIR
from include.etl.ingest.landing import Landing
from include.etl.warehouse.migrations import migrate
from scripts.airflow_stack import AirflowStack, database_beside, free_port, libpq, redis_server
from tests.conftest import deliver_demo, reset_client

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")

RUNS = "SELECT dag_id, run_id, state FROM dag_run WHERE dag_id IN ('client1', 'client2')"


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[str]:
    """A Redis server of the test's own (the Celery broker), stopped afterwards."""
    port = free_port()
    server = redis_server(port, tmp_path)
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.terminate()
        server.wait(timeout=30)


def _clients_dir(folder: Path) -> Path:
    """The real client configs, with quick retries (a failed-over task is retried at once;
    client2's own config waits 300 s) and no schedule: only the test's runs, no scheduled
    run taking their files."""
    folder.mkdir()
    defaults = yaml.safe_load((CLIENTS_DIR / "_defaults.yaml").read_text())
    defaults["sensor"].update(poke_interval_seconds=5)
    (folder / "_defaults.yaml").write_text(yaml.safe_dump(defaults))
    for client in ("client1", "client2"):
        config = yaml.safe_load((CLIENTS_DIR / f"{client}.yaml").read_text())
        quick = {"schedule": None, "retry_delay_seconds": 2}
        (folder / f"{client}.yaml").write_text(yaml.safe_dump({**config, **quick}))
    return folder


@pytest.fixture
def stack(warehouse_url: str, redis: str, tmp_path: Path, landing: Landing) -> Iterator[AirflowStack]:
    metadata = database_beside(warehouse_url, "airflow_celery")
    env = {
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CELERY__BROKER_URL": redis,
        "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + libpq(metadata),
        "AIRFLOW__CELERY__WORKER_PREFETCH_MULTIPLIER": "1",
        # a killed worker's task: found without a heartbeat after 20 s, and its message
        # (acknowledged late) given to the other worker after 30 s
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
        "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT": "30",
        # a message the killed worker had already taken can be lost with it rather than
        # given back by the broker: the scheduler sends the task again once it has been
        # queued for two minutes (Airflow's default, ten, once ran this test to 16 minutes)
        "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "120",
        "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT_CHECK_INTERVAL": "15",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "AIRFLOW_CONN_WAREHOUSE": warehouse_url,
        "ETL_DATA_ROOT": str(landing.root),
        "ETL_CLIENTS_DIR": str(_clients_dir(tmp_path / "clients")),
    }
    with AirflowStack(tmp_path / "airflow", metadata, env) as running:
        running.start("api-server", "scheduler", "dag-processor", "triggerer")
        running.celery_workers("worker1", "worker2")
        yield running


def _finished(stack: AirflowStack, expected: int) -> dict[str, tuple[str, str]] | None:
    runs = {dag: (run_id, state) for dag, run_id, state in stack.metadata(RUNS)}
    done = len(runs) == expected and all(state in ("success", "failed") for _, state in runs.values())
    return runs if done else None


def _gold_as_the_oracle_says(conn, client: str, generated: Path) -> None:
    oracle = importlib.import_module(f"tests.expected_{client}")
    actual, expected = oracle.gold_values(conn), oracle.expected_values(generated)
    wrong = [name for name in expected if actual.get(name) != expected[name]]
    assert not wrong, f"{client}: gold differs from the files' figures: {wrong[:5]}"


def test_two_clients_on_two_celery_workers_and_a_worker_killed(
    clients, conn, landing: Landing, tmp_path: Path, stack: AirflowStack
) -> None:
    generated = {}
    for client in ("client1", "client2"):
        reset_client(conn, clients[client])
        migrate(conn, [clients[client]])
        generated[client] = tmp_path / f"generated-{client}"
        deliver_demo(client, landing, generated[client], rows=3000)
        stack.airflow("dags", "unpause", client)
        stack.airflow("dags", "trigger", client, "--conf", '{"mode": "start"}')

    # Once worker1 has finished a task, it dies in the middle of its next one: that task
    # goes to the other worker.
    running_on_1 = """
        SELECT dag_id, task_id FROM task_instance
        WHERE state = 'running' AND hostname = 'worker1'
          AND EXISTS (SELECT FROM task_instance WHERE hostname = 'worker1' AND state = 'success')"""
    ((dag_id, victim), *_) = stack.wait_for(
        "a task running on worker1 after one it finished", lambda: stack.metadata(running_on_1), 300
    )
    stack.kill("worker1")

    runs = stack.wait_for("both clients' runs", lambda: _finished(stack, 2), 900, every=5)
    assert {dag: state for dag, (_, state) in runs.items()} == {"client1": "success", "client2": "success"}, (
        stack.log_tail("scheduler")
    )
    for client in ("client1", "client2"):
        assert conn.execute(
            "SELECT batch_id, status FROM tools.batch WHERE client_schema = %s", (client,)
        ).fetchall() == [("BATCH000001", "SUCCESS")]
        _gold_as_the_oracle_says(conn, client, generated[client])
    hosts = {
        host for (host,) in stack.metadata("SELECT DISTINCT hostname FROM task_instance WHERE hostname <> ''")
    }
    assert hosts == {"worker1", "worker2"}, hosts
    tries = stack.metadata(
        "SELECT try_number, hostname FROM task_instance WHERE dag_id = %s AND task_id = %s", dag_id, victim
    )
    assert tries == [(tries[0][0], "worker2")] and tries[0][0] >= 2, tries  # retried, on the other worker
