"""The housekeeping DAG run by Airflow: triggered by hand it is a dry run; with
``dry_run: false`` it purges the expired batches and cleans Airflow's metadata."""

from __future__ import annotations

from pathlib import Path

from include.etl.orchestration.housekeeping import DAG_ID, build_housekeeping
from include.etl.warehouse.migrations import migrate
from scripts.airflow_stack import AirflowStack, StackError, database_beside
from tests.conftest import deliver_demo, reset_client
from tests.integration.test_retention import age, run_batch, what_is_left


def test_housekeeping_dry_run_by_hand_then_a_real_purge(clients, conn, landing, tmp_path: Path) -> None:
    cfg = clients["client1"]
    reset_client(conn, cfg)
    migrate(conn, [cfg])
    batches = []
    for n in range(2):
        deliver_demo("client1", landing, tmp_path / f"d{n}", rows=300)
        batches.append(run_batch("client1"))
    age(conn, batches[0])
    dag = build_housekeeping()

    dry = dag.test(run_conf={})
    assert dry.state == "success"
    assert what_is_left(conn, landing, batches[0])["raw"] == 6  # nothing removed
    assert conn.execute(
        "SELECT DISTINCT dry_run FROM tools.housekeeping_log WHERE dag_run_id = %s", (dry.run_id,)
    ).fetchall() == [(True,)]

    real = dag.test(run_conf={"dry_run": False})
    assert real.state == "success"
    assert {t.task_id: t.state for t in real.get_task_instances()}["airflow_metadata"] == "success"
    assert what_is_left(conn, landing, batches[0])["raw"] == 0
    assert what_is_left(conn, landing, batches[1])["raw"] == 6
    kinds = conn.execute(
        "SELECT kind FROM tools.housekeeping_log WHERE dag_run_id = %s AND NOT dry_run ORDER BY kind",
        (real.run_id,),
    ).fetchall()
    assert [k for (k,) in kinds] == ["bronze_tables", "manifests", "parquet", "raw_files", "tools_rows"]


def test_a_worker_cleans_airflow_metadata_through_its_connection(
    clients, warehouse_url: str, landing, tmp_path: Path
) -> None:
    """Run by a real scheduler and LocalExecutor worker, where Airflow 3 gives a task
    process no metadata database: ``airflow db clean`` reaches it through the connection
    ``airflow_metadata_db`` (the stack sets it as a deployment does)."""
    metadata = database_beside(warehouse_url, "airflow_housekeeping")
    env = {
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "AIRFLOW_CONN_WAREHOUSE": warehouse_url,
        "ETL_DATA_ROOT": str(landing.root),
    }
    with AirflowStack(tmp_path / "airflow", metadata, env) as stack:
        stack.start("api-server", "scheduler")
        stack.airflow("dags", "unpause", DAG_ID)  # its scheduled run: a real purge and clean
        ended = f"SELECT state, run_id FROM dag_run WHERE dag_id = '{DAG_ID}' AND end_date IS NOT NULL"
        try:
            ((state, run_id),) = stack.wait_for("the run", lambda: stack.metadata(ended), 300, every=2)
        except StackError as exc:
            raise AssertionError(f"{exc}\n{stack.log_tail('scheduler')}") from None
        tasks = dict(stack.metadata(f"SELECT task_id, state FROM task_instance WHERE dag_id = '{DAG_ID}'"))
        assert (state, tasks["airflow_metadata"]) == ("success", "success")
        (log,) = stack.logs.glob(f"dag_id={DAG_ID}/run_id={run_id}/task_id=airflow_metadata/attempt=1.log")
        assert "Returned value was: airflow db clean before 20" in log.read_text()
