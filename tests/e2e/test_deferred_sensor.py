"""Waiting costs (almost) nothing: with no delivery, ``wait_for_files`` defers to its
trigger, which looks at the incoming folders in the triggerer. Run by Airflow itself
(api-server, scheduler, triggerer, LocalExecutor), as in production:

* while the files are missing the task is ``deferred``: no reschedule, no second try,
  no task process; the trigger is registered and the task's log says what is missing;
* once the delivery is there the sensor resumes, the batch opens and the run ends with
  the files' rows in gold.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from demo import generate
from include.etl.ingest.landing import Landing
from include.etl.warehouse.migrations import migrate
from scripts.airflow_stack import AirflowStack, StackError, database_beside
from tests import expected_client1
from tests.conftest import complete, reset_client
from tests.e2e.conftest import client1_only, stack_env


@pytest.fixture
def stack(warehouse_url: str, tmp_path: Path, landing: Landing) -> Iterator[AirflowStack]:
    """client1's real config, unscheduled, looking every 2 s; the real defaults otherwise."""
    sensor = {"poke_interval_seconds": 2, "settle_seconds": 0}
    clients = client1_only(tmp_path / "clients", schedule=None, sensor=sensor)
    metadata = database_beside(warehouse_url, "airflow_deferred")
    with AirflowStack(tmp_path / "airflow", metadata, stack_env(warehouse_url, landing, clients)) as running:
        running.start("api-server", "scheduler", "triggerer")
        yield running


SENSOR = "SELECT state, try_number FROM task_instance WHERE dag_id = 'client1' AND task_id = 'wait_for_files'"


def test_the_sensor_waits_in_the_triggerer_then_the_run_loads_the_delivery(
    clients, conn, landing: Landing, tmp_path: Path, stack: AirflowStack
) -> None:
    cfg = clients["client1"]
    reset_client(conn, cfg)
    migrate(conn, [cfg])
    stack.airflow("dags", "unpause", "client1")
    stack.airflow("dags", "trigger", "client1", "--conf", '{"mode": "start"}')

    try:
        stack.wait_for("the sensor to defer", lambda: stack.metadata(SENSOR) == [("deferred", 1)], 180)
        time.sleep(10)  # five looks of the trigger
    except StackError as exc:
        raise AssertionError(f"{exc}\n{stack.log_tail('scheduler')}") from None
    assert stack.metadata(SENSOR) == [("deferred", 1)]  # still the first try: no task ran again
    assert stack.metadata("SELECT count(*) FROM task_reschedule") == [(0,)]
    (classpath,) = stack.metadata("SELECT classpath FROM trigger")[0]
    assert classpath == "include.etl.orchestration.triggers.IncomingFilesTrigger"
    # What the operator reads in the task's log (the trigger's part of it).
    (trigger_log,) = stack.logs.glob("dag_id=client1/*/task_id=wait_for_files/attempt=1.log.trigger.*.log")
    assert "client1: still waiting for: crm/cust_info, crm/prd_info" in trigger_log.read_text()

    generated = tmp_path / "generated"
    for path in generate("client1", generated, rows=300, seed=21):
        incoming = landing.raw("client1", path.parent.name, "incoming")
        incoming.mkdir(parents=True, exist_ok=True)
        complete(shutil.copy2(path, incoming / path.name))

    ended = "SELECT state FROM dag_run WHERE dag_id = 'client1' AND end_date IS NOT NULL"
    try:
        ((state,),) = stack.wait_for("the run to end", lambda: stack.metadata(ended), 300, every=2)
    except StackError as exc:
        raise AssertionError(f"{exc}\n{stack.log_tail('scheduler')}") from None
    assert state == "success"
    assert stack.metadata(SENSOR) == [("success", 1)]
    assert conn.execute(
        "SELECT batch_id, status FROM tools.batch WHERE client_schema = 'client1'"
    ).fetchall() == [("BATCH000001", "SUCCESS")]
    actual, expected = expected_client1.gold_values(conn), expected_client1.expected_values(generated)
    assert [name for name in expected if actual.get(name) != expected[name]] == []
