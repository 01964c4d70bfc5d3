"""Runs started by their delivery (``sensor.start: delivery``), under Airflow itself:
api-server, scheduler, DAG processor, triggerer, LocalExecutor.

No run exists while nothing has come: the client's ``DeliveryWatcher`` looks at its
incoming folders in the triggerer, and

* the schedule's tick still starts a run, which takes a delivery already there and
  otherwise is skipped at once (green, no task waiting);
* a backfill day keeps its meaning (nothing stamped with the day: skipped at once);
* a complete delivery starts a run by itself, which loads it (gold by value);
* no delivery for the sensor's timeout starts a run that fails with the sensor's message;
* no task ever waited: nothing deferred, nothing rescheduled.
"""

from __future__ import annotations

import shutil
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

TIMEOUT_S = 90  # the sensor's timeout: no delivery for this long fails a run


@pytest.fixture
def stack(warehouse_url: str, tmp_path: Path, landing: Landing) -> Iterator[AirflowStack]:
    """client1's real config, daily, its runs started by its delivery, looking every 2 s."""
    sensor = {"poke_interval_seconds": 2, "settle_seconds": 0, "timeout_seconds": TIMEOUT_S}
    sensor["start"] = "delivery"
    clients = client1_only(tmp_path / "clients", schedule="@daily", sensor=sensor)
    metadata = database_beside(warehouse_url, "airflow_delivery_start")
    with AirflowStack(tmp_path / "airflow", metadata, stack_env(warehouse_url, landing, clients)) as running:
        running.start("api-server", "scheduler", "dag-processor", "triggerer")
        yield running


RUNS = """SELECT run_type, state, run_id FROM dag_run WHERE dag_id = 'client1'
          AND end_date IS NOT NULL ORDER BY start_date"""
TASKS = "SELECT task_id, state FROM task_instance WHERE dag_id = 'client1' AND run_id = %s"


def _ended(stack: AirflowStack, count: int, what: str, timeout: float) -> list[tuple]:
    try:
        ended = lambda: (r := stack.metadata(RUNS)) and len(r) >= count and r  # noqa: E731
        return stack.wait_for(what, ended, timeout, every=2)
    except StackError as exc:
        raise AssertionError(f"{exc}\n{stack.log_tail('scheduler')}\n{stack.log_tail('triggerer')}") from None


def test_runs_start_when_the_delivery_is_complete_and_fail_when_none_came(
    clients, conn, landing: Landing, tmp_path: Path, stack: AirflowStack
) -> None:
    cfg = clients["client1"]
    reset_client(conn, cfg)
    migrate(conn, [cfg])
    stack.airflow("dags", "unpause", "client1")
    # The watcher is the only trigger: it runs for the unpaused DAG (from its next parse),
    # with no run waiting.
    stack.wait_for(
        "the delivery watcher", lambda: stack.metadata("SELECT classpath FROM trigger"), 180, every=2
    )
    assert stack.metadata("SELECT classpath FROM trigger") == [
        ("include.etl.orchestration.triggers.DeliveryWatcher",)
    ]

    # The schedule's tick: nothing delivered, so nothing to take: skipped at once.
    ((run_type, state, tick),) = _ended(stack, 1, "the tick's run", 180)
    assert (run_type, state) == ("scheduled", "success")
    assert dict(stack.metadata(TASKS, tick))["wait_for_files"] == "skipped"
    (log,) = stack.logs.glob(f"dag_id=client1/run_id={tick}/task_id=wait_for_files/attempt=1.log")
    assert "client1: no delivery to take (still waiting for: crm/cust_info, crm/prd_info" in log.read_text()

    # A backfill day with nothing stamped with it: skipped at once, as with start: schedule.
    day = ("--from-date", "2026-01-07", "--to-date", "2026-01-07")
    stack.airflow("backfill", "create", "--dag-id", "client1", *day)
    runs = _ended(stack, 2, "the backfill's run", 180)
    assert [(t, s) for t, s, _ in runs] == [("scheduled", "success"), ("backfill", "success")]
    assert dict(stack.metadata(TASKS, runs[1][2]))["wait_for_files"] == "skipped"

    # A complete delivery starts a run by itself, which loads it.
    generated = tmp_path / "generated"
    for path in generate("client1", generated, rows=300, seed=23):
        incoming = landing.raw("client1", path.parent.name, "incoming")
        incoming.mkdir(parents=True, exist_ok=True)
        complete(shutil.copy2(path, incoming / path.name))
    runs = _ended(stack, 3, "the run the delivery started", 300)
    run_type, state, delivered = runs[2]
    assert (run_type, state) == ("asset_triggered", "success")
    assert dict(stack.metadata(TASKS, delivered))["wait_for_files"] == "success"
    assert conn.execute(
        "SELECT r.dag_run_id, b.status FROM tools.batch AS b JOIN tools.batch_run AS r"
        " USING (client_schema, batch_id) WHERE b.client_schema = 'client1'"
    ).fetchall() == [(delivered, "SUCCESS")]
    actual, expected = expected_client1.gold_values(conn), expected_client1.expected_values(generated)
    assert [name for name in expected if actual.get(name) != expected[name]] == []

    # Nothing more comes: after the timeout the watcher starts a run that fails, saying so.
    # The triggerer restarts meanwhile: the watcher remembers when it last saw a delivery
    # (the asset's state store), so the timeout still counts from then.
    ((taken,),) = stack.metadata("SELECT start_date FROM dag_run WHERE run_id = %s", delivered)
    stack.kill("triggerer")
    stack.start("triggerer")
    runs = _ended(stack, 4, "the run of the overdue delivery", TIMEOUT_S + 180)
    run_type, state, overdue = runs[3]
    assert (run_type, state) == ("asset_triggered", "failed")
    ((queued,),) = stack.metadata("SELECT queued_at FROM dag_run WHERE run_id = %s", overdue)
    assert (queued - taken).total_seconds() < TIMEOUT_S + 30  # not counted from the restart
    assert dict(stack.metadata(TASKS, overdue))["wait_for_files"] == "failed"
    (log,) = stack.logs.glob(f"dag_id=client1/run_id={overdue}/task_id=wait_for_files/attempt=1.log")
    assert (
        f"client1: no delivery within the sensor's timeout ({TIMEOUT_S} s): "
        "still waiting for: crm/cust_info, crm/prd_info, crm/sales_details, erp/CUST_AZ12"
    ) in log.read_text()

    # No task ever waited: no deferral, no reschedule.
    assert stack.metadata("SELECT count(*) FROM task_reschedule") == [(0,)]
    assert stack.metadata("SELECT count(*) FROM task_instance WHERE next_method IS NOT NULL") == [(0,)]
