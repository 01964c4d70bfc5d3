"""Clearing any task of a successful run, with its downstream, changes nothing.

One successful client1 run; then, for every task of the DAG, Airflow's own clear of
that task and everything downstream, and the run driven to its end again. Silver and
gold must be identical (row counts and a content checksum per table), bronze and the
dead letters unchanged, one batch, no typed rows of validation left in the data folders,
and the audit tables must show exactly one more attempt of each re-run task and nothing
duplicated.
"""

from __future__ import annotations

import os

import psycopg
import pytest

from include.etl.config import config_for
from include.etl.ingest.landing import Landing
from include.etl.orchestration.factory import build_dag
from tests.conftest import deliver_demo
from tests.e2e.airflow_runs import clear_and_resume, fresh_client
from tests.e2e.test_pipeline import count, table_checksums

CFG = config_for("client1")
TASK_IDS = sorted(build_dag(CFG).task_ids)


def snapshot(conn) -> dict:
    cfg = CFG
    state = {"tables": table_checksums(conn, cfg)}
    state["bronze"] = {f.bronze_table: count(conn, cfg.bronze_schema, f.bronze_table) for _, f in cfg.files}
    for table in ("batch", "batch_run", "file_audit_log", "rejected_rows"):
        state[table] = conn.execute(
            f"SELECT count(*) FROM tools.{table} WHERE client_schema = 'client1'"
        ).fetchone()
    files = list(Landing.from_env().root.rglob("*"))
    state["archived"] = sorted(p.name for p in files if "archive" in p.parts)
    state["typed_rows_left"] = sorted(p.name for p in files if ".bronze.arrow" in p.name)
    return state


def attempts(conn) -> dict[str, int]:
    rows = conn.execute(
        """SELECT task_id, count(*) FROM tools.job_execution_log WHERE client_schema = 'client1'
           GROUP BY task_id
           UNION ALL
           SELECT layer_task, count(*) FROM (
               SELECT CASE layer WHEN 'views' THEN 'refresh_views.' ELSE layer || '.' END || step_name
                      AS layer_task
               FROM tools.sql_step_log WHERE client_schema = 'client1') s
           GROUP BY layer_task"""
    ).fetchall()
    return dict(rows)


@pytest.fixture(scope="module")
def first_run(warehouse_url, tmp_path_factory):
    """A successful client1 run on small data, in a landing root of its own."""
    root = tmp_path_factory.mktemp("clear-any-task")
    with fresh_client(CFG, root) as (landing, conn):
        deliver_demo("client1", landing, root / "generated", rows=400)
        dag = build_dag(CFG)
        run = dag.test(run_conf={"mode": "start"})
        assert run.state == "success"
        state = snapshot(conn)
        assert state["typed_rows_left"] == []  # each load removed the typed rows it streamed
        yield dag, run.run_id, state


@pytest.mark.parametrize("task_id", TASK_IDS)
def test_clearing_a_task_and_its_downstream_changes_nothing(first_run, task_id: str) -> None:
    dag, run_id, before = first_run
    with psycopg.connect(os.environ["WAREHOUSE_DSN"], autocommit=True) as conn:
        attempts_before = attempts(conn)

    rerun = clear_and_resume(dag, run_id, task_id)

    assert rerun.state == "success"
    with psycopg.connect(os.environ["WAREHOUSE_DSN"], autocommit=True) as conn:
        assert snapshot(conn) == before
        after = attempts(conn)
    rerun_tasks = {task_id} | dag.get_task(task_id).get_flat_relative_ids(upstream=False)
    for logged in set(after) | set(attempts_before):
        expected = attempts_before.get(logged, 0) + (1 if logged in rerun_tasks else 0)
        assert after.get(logged, 0) == expected, logged
