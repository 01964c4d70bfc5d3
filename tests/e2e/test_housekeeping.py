"""The housekeeping DAG run by Airflow: triggered by hand it is a dry run; with
``dry_run: false`` it purges the expired batches and cleans Airflow's metadata."""

from __future__ import annotations

from pathlib import Path

from include.etl.orchestration.housekeeping import build_housekeeping
from include.etl.warehouse.migrations import migrate
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
