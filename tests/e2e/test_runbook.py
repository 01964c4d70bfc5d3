"""The README runbook, procedure by procedure, as an operator at 3 a.m. would do it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import include.etl.config
import include.etl.warehouse.migrations
from demo import generate
from include.etl.orchestration.factory import build_dag
from include.etl.warehouse.migrations import migrate
from tests.conftest import complete, deliver_demo, reset_client
from tests.e2e.airflow_runs import clear_and_resume
from tests.e2e.test_pipeline import count


def put_back_fixed(landing, tmp_path: Path, system: str, logical: str, batch_id: str) -> None:
    """The operator's fix: a corrected file into incoming under the name the batch claimed."""
    generate("client1", tmp_path / "clean", rows=300)
    shutil.copy2(
        tmp_path / "clean" / system / f"{logical}.csv",
        landing.raw("client1", system, "incoming") / f"{logical}_{batch_id}.csv",
    )


@pytest.mark.parametrize("deferrable", [True, False], ids=["deferred", "reschedule"])
def test_missing_file_the_sensor_times_out_then_deliver_and_clear_the_sensor(
    clients, conn, landing, tmp_path, deferrable
) -> None:
    sensor = include.etl.config.Sensor(
        poke_interval_seconds=1, timeout_seconds=3, settle_seconds=30, deferrable=deferrable
    )
    cfg = clients["client1"].model_copy(update={"sensor": sensor})
    reset_client(conn, cfg)
    migrate(conn, [cfg])
    generated = deliver_demo("client1", landing, tmp_path / "generated", rows=300, skip=("cust_info",))
    dag = build_dag(cfg)

    run = dag.test(run_conf={"mode": "start"})

    # What the operator sees: the sensor failed, nothing else ran, no batch was opened.
    assert run.state == "failed"
    assert run.get_task_instance("wait_for_files").state == "failed"
    assert run.get_task_instance("close_batch").state == "failed"
    assert conn.execute("SELECT count(*) FROM tools.batch WHERE client_schema = 'client1'").fetchone()[0] == 0
    # The fix: deliver the missing file, clear wait_for_files (with downstream).
    complete(
        shutil.copy2(generated["cust_info.csv"], landing.raw("client1", "crm", "incoming") / "cust_info.csv")
    )
    rerun = clear_and_resume(dag, run.run_id, "wait_for_files")
    assert rerun.state == "success"
    assert count(conn, cfg.bronze_schema, "crm_cust_info", "BATCH000001") > 0


def test_a_file_that_cannot_be_read_put_back_fixed_and_restart(clients, conn, landing, tmp_path) -> None:
    cfg = clients["client1"]
    reset_client(conn, cfg)

    def break_quotes(path: Path) -> None:
        if path.name == "LOC_A101.csv":
            path.write_bytes(path.read_bytes() + b'"AW-1,never closed\n' * 3)

    deliver_demo("client1", landing, tmp_path / "generated", rows=300, edit=break_quotes)
    dag = build_dag(cfg)
    run = dag.test(run_conf={"mode": "start"})

    assert run.get_task_instance("LOC_A101.convert").state == "failed"
    failed_copy = landing.raw("client1", "erp", "failed") / "LOC_A101_BATCH000001.csv"
    assert failed_copy.exists()
    (error,) = conn.execute(
        """SELECT error_message FROM tools.file_audit_log
           WHERE client_schema = 'client1' AND logical_source_file = 'LOC_A101'"""
    ).fetchone()
    # The quotes pair up across lines, so the row they make has one field where two belong.
    assert error.startswith("LOC_A101_BATCH000001.csv: line ")
    assert error.endswith("has 1 fields, the header has 2: '\"AW-1,never closed'")
    # The fix: the corrected file goes back into incoming under its claimed name; restart.
    put_back_fixed(landing, tmp_path, "erp", "LOC_A101", "BATCH000001")
    assert dag.test(run_conf={"mode": "restart"}).state == "success"
    assert conn.execute("SELECT status FROM tools.batch WHERE client_schema = 'client1'").fetchone() == (
        "SUCCESS",
    )


def test_broken_silver_sql_fix_it_and_clear_the_red_task(
    clients, conn, landing, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sql_root = tmp_path / "sql"
    shutil.copytree(include.etl.config.SQL_DIR, sql_root)
    monkeypatch.setattr(include.etl.config, "SQL_DIR", sql_root)
    monkeypatch.setattr(include.etl.warehouse.migrations, "SQL_DIR", sql_root)
    cfg = clients["client1"].model_copy(update={"retries": 0})
    reset_client(conn, cfg)
    step = sql_root / "templates" / "retail_crm_erp" / "silver" / "erp_loc_a101.sql"
    good = step.read_text()
    step.write_text(good.replace("{{ silver }}.erp_loc_a101", "{{ silver }}.erp_loc_a101_typo", 1))
    deliver_demo("client1", landing, tmp_path / "generated", rows=300)
    dag = build_dag(cfg)

    run = dag.test(run_conf={"mode": "start"})

    assert run.get_task_instance("silver.erp_loc_a101").state == "failed"
    (error,) = conn.execute(
        """SELECT error_message FROM tools.transformation_log
           WHERE client_schema = 'client1' AND step_name = 'erp_loc_a101' AND status = 'FAILED'"""
    ).fetchone()
    assert 'relation "silver_client1.erp_loc_a101_typo" does not exist' in error
    assert conn.execute("SELECT status FROM tools.batch WHERE client_schema = 'client1'").fetchone() == (
        "FAILED",
    )
    # The fix: correct the SQL, clear the red task with its downstream.
    step.write_text(good)
    dag = build_dag(cfg)
    rerun = clear_and_resume(dag, run.run_id, "silver.erp_loc_a101")
    assert rerun.state == "success"
    assert conn.execute("SELECT status FROM tools.batch WHERE client_schema = 'client1'").fetchone() == (
        "SUCCESS",
    )
    assert count(conn, cfg.silver_schema, "erp_loc_a101", "BATCH000001") > 0


def test_too_many_rejected_rows_fix_the_file_and_restart(clients, conn, landing, tmp_path) -> None:
    cfg = clients["client1"]
    reset_client(conn, cfg)

    def spoil_quantities(path: Path) -> None:  # one sales line in five: text in an integer column
        if path.name == "sales_details.csv":
            lines = path.read_text().splitlines()
            for i in range(1, len(lines), 5):
                fields = lines[i].split(",")
                fields[7] = "many"
                lines[i] = ",".join(fields)
            path.write_text("\n".join(lines) + "\n")

    deliver_demo("client1", landing, tmp_path / "generated", rows=300, edit=spoil_quantities)
    dag = build_dag(cfg)
    run = dag.test(run_conf={"mode": "start"})

    assert run.get_task_instance("sales_details.validate_rows").state == "failed"
    (message,) = conn.execute(
        """SELECT message FROM tools.row_validation_log
           WHERE client_schema = 'client1' AND logical_source_file = 'sales_details'"""
    ).fetchone()
    assert "exceeds the limit of 5.0%; first: row 1 sls_quantity: not an integer: 'many'" in message
    assert (landing.data("client1", "crm", "failed") / "sales_details_BATCH000001.parquet").exists()
    # The fix: the corrected file goes back under its claimed name; restart.
    put_back_fixed(landing, tmp_path, "crm", "sales_details", "BATCH000001")
    assert dag.test(run_conf={"mode": "restart"}).state == "success"
    rejected = conn.execute(
        """SELECT count(*) FROM tools.rejected_rows
           WHERE client_schema = 'client1' AND logical_source_file = 'sales_details'"""
    ).fetchone()[0]
    assert rejected < 10  # the dead letters are the clean file's few, not the spoiled file's


def test_a_view_refresh_that_fails_fix_it_and_clear_the_task(clients, conn, landing, tmp_path) -> None:
    cfg = clients["client1"].model_copy(update={"retries": 0})
    reset_client(conn, cfg)
    migrate(conn, [cfg])
    conn.execute("ALTER TABLE gold_client1.mv_customer_lifetime_value RENAME TO mv_clv_moved")
    deliver_demo("client1", landing, tmp_path / "generated", rows=300)
    dag = build_dag(cfg)

    run = dag.test(run_conf={"mode": "start"})

    assert run.get_task_instance("refresh_views.mv_customer_lifetime_value").state == "failed"
    (error,) = conn.execute(
        """SELECT error_message FROM tools.mv_refresh_log
           WHERE client_schema = 'client1' AND step_name = 'mv_customer_lifetime_value'"""
    ).fetchone()
    assert 'relation "gold_client1.mv_customer_lifetime_value" does not exist' in error
    # The fix: put the view back, clear the red task.
    conn.execute("ALTER TABLE gold_client1.mv_clv_moved RENAME TO mv_customer_lifetime_value")
    assert clear_and_resume(dag, run.run_id, "refresh_views.mv_customer_lifetime_value").state == "success"
    assert count(conn, cfg.gold_schema, "mv_customer_lifetime_value") > 0
