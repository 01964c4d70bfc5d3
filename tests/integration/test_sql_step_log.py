"""Every attempt of a SQL step ends its ``tools.sql_step_log`` row, whatever fails."""

from __future__ import annotations

from types import SimpleNamespace

import psycopg
import pytest

from include.etl.orchestration.operators import WarehouseSQLOperator


def attempts(conn: psycopg.Connection, step: str) -> list[tuple]:
    return conn.execute(
        "SELECT status, error_message, ended_at IS NOT NULL FROM tools.sql_step_log WHERE step_name = %s",
        (step,),
    ).fetchall()


def step(name: str, target: str, sql: str) -> WarehouseSQLOperator:
    op = WarehouseSQLOperator(
        task_id=name, client="client1", layer="silver", step=name, target=target, sql=sql
    )
    op.parameters = {"batch_id": "BATCH000001"}  # what the XCom template renders to in a run
    return op


def test_a_step_that_fails_after_its_sql_is_logged_failed_not_left_running(conn, cfg) -> None:
    # Its statements succeed; counting the target's rows for the batch then fails.
    ghost = step("ghost", "silver_client1.no_such_table", "SELECT 1 WHERE false")  # no row: no ANALYZE
    with pytest.raises(psycopg.errors.UndefinedTable):
        ghost.execute({"ti": SimpleNamespace(try_number=1)})
    ((status, error, ended),) = attempts(conn, "ghost")
    assert (status, ended) == ("FAILED", True)
    assert error.startswith('relation "silver_client1.no_such_table" does not exist')


def test_a_step_whose_sql_fails_is_logged_failed(conn, cfg) -> None:
    broken = step(
        "broken", "silver_client1.crm_cust_info", "SELECT no_such_column FROM silver_client1.crm_cust_info"
    )
    with pytest.raises(psycopg.errors.UndefinedColumn):
        broken.execute({"ti": SimpleNamespace(try_number=1)})
    ((status, error, ended),) = attempts(conn, "broken")
    assert (status, ended) == ("FAILED", True)
    assert error.startswith('column "no_such_column" does not exist')


def test_a_step_that_succeeds_is_logged_with_the_batchs_rows(conn, cfg) -> None:
    ok = step("ok", "silver_client1.crm_cust_info", "SELECT 1")
    ok.execute({"ti": SimpleNamespace(try_number=1)})
    assert attempts(conn, "ok") == [("SUCCESS", None, True)]
