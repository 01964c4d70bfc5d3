"""Retries: an I/O failure is retried with backoff; a bad file fails at once, for good."""

from __future__ import annotations

from pathlib import Path

import pytest

import include.etl.orchestration.tasks
from include.etl.orchestration.factory import build_dag
from include.etl.warehouse.migrations import migrate
from tests.conftest import deliver_demo, reset_client
from tests.e2e.test_pipeline import count


def test_a_transient_io_error_is_retried_and_the_batch_completes(
    clients, conn, landing, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = clients["client1"].model_copy(update={"retry_delay_seconds": 1})
    reset_client(conn, cfg)
    migrate(conn, [cfg])
    deliver_demo("client1", landing, tmp_path / "generated", rows=300)

    real_copy, calls = include.etl.orchestration.tasks.copy_into_bronze, []

    def flaky_copy(conn, cfg, spec, *args, **kwargs):
        calls.append(spec.name)
        if spec.name == "sales_details" and calls.count("sales_details") == 1:
            raise ConnectionResetError("connection to the warehouse was reset")
        return real_copy(conn, cfg, spec, *args, **kwargs)

    monkeypatch.setattr(include.etl.orchestration.tasks, "copy_into_bronze", flaky_copy)

    run = build_dag(cfg).test(run_conf={"mode": "start"})

    assert run.state == "success"
    ti = run.get_task_instance("sales_details.load_bronze")
    assert (ti.state, ti.try_number) == ("success", 2)
    attempts = conn.execute(
        """SELECT try_number, status, message FROM tools.job_execution_log
           WHERE client_schema = 'client1' AND task_id = 'sales_details.load_bronze' ORDER BY id"""
    ).fetchall()
    assert attempts == [
        (1, "FAILED", "connection to the warehouse was reset"),
        (2, "SUCCESS", None),
    ]
    assert count(conn, cfg.bronze_schema, "crm_sales_details", "BATCH000001") > 0
    errors = conn.execute(
        "SELECT stage, error_message FROM tools.load_error_log WHERE client_schema = 'client1'"
    ).fetchall()
    assert errors == [("load_bronze", "connection to the warehouse was reset")]


def test_a_deterministic_failure_is_not_retried(clients, conn, landing, tmp_path: Path) -> None:
    cfg = clients["client1"]
    assert cfg.retries > 0
    reset_client(conn, cfg)

    def rename_a_header(path: Path) -> None:  # a header the mapping does not know
        if path.name == "prd_info.csv":
            path.write_text(path.read_text().replace("prd_cost", "prd_costs", 1))

    deliver_demo("client1", landing, tmp_path / "generated", rows=300, edit=rename_a_header)

    run = build_dag(cfg).test(run_conf={"mode": "start"})

    assert run.state == "failed"
    ti = run.get_task_instance("prd_info.validate_mapping")
    assert (ti.state, ti.try_number) == ("failed", 1)
    (message,) = conn.execute(
        """SELECT message FROM tools.job_execution_log
           WHERE client_schema = 'client1' AND task_id = 'prd_info.validate_mapping'"""
    ).fetchone()
    assert message == (
        "prd_info_BATCH000001.parquet: column(s) missing from the file: prd_cost "
        "(file has unmapped: prd_costs)"
    )
