"""Drive a DAG run the way the scheduler does after an operator clears tasks in the UI.

``dag.test()`` always starts a fresh run (it deletes any run with the same logical
date), so it cannot show what clearing a task of an existing run does. This runs
Airflow's own clear (the UI's "Clear" with "Downstream") on the run, then schedules and
executes the cleared task instances with the same loop ``dag.test()`` uses.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from airflow import settings
from airflow.models.dagrun import DagRun
from airflow.sdk.definitions.dag import _run_task
from airflow.serialization.serialized_objects import DagSerialization
from airflow.utils import timezone
from airflow.utils.state import DagRunState, TaskInstanceState
from sqlalchemy import select

from include.etl.config import ClientConfig
from include.etl.ingest.landing import Landing
from include.etl.warehouse.migrations import migrate
from tests.conftest import reset_client


@contextmanager
def fresh_client(cfg: ClientConfig, root: Path) -> Iterator[tuple[Landing, psycopg.Connection]]:
    """``cfg``'s client forgotten by the test warehouse and migrated again, with a landing
    root of its own under ``root`` (``ETL_DATA_ROOT``), for a module-scoped run."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ETL_DATA_ROOT", str(root / "landing"))
        with psycopg.connect(os.environ["WAREHOUSE_DSN"], autocommit=True) as conn:
            reset_client(conn, cfg)
            migrate(conn, [cfg])
            yield Landing.from_env(), conn


def clear_and_resume(dag, run_id: str, task_id: str, timeout_s: float = 600) -> DagRun:
    scheduler_dag = DagSerialization.deserialize_dag(DagSerialization.serialize_dag(dag))
    subset = scheduler_dag.partial_subset(task_ids=[task_id], include_downstream=True, include_upstream=False)
    subset.clear(run_id=run_id, dag_run_state=DagRunState.RUNNING)

    session = settings.Session()
    run = session.scalar(select(DagRun).where(DagRun.dag_id == dag.dag_id, DagRun.run_id == run_id))
    run.dag = scheduler_dag
    deadline = time.monotonic() + timeout_s
    while run.state == DagRunState.RUNNING:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{dag.dag_id} {run_id} still running after clearing {task_id}")
        session.expire_all()
        schedulable, _ = run.update_state(session=session)
        for ti in schedulable:
            if ti.state != TaskInstanceState.UP_FOR_RESCHEDULE:
                ti.try_number += 1
            ti.state = TaskInstanceState.SCHEDULED
            ti.scheduled_dttm = timezone.utcnow()
        session.commit()
        for ti in run.get_task_instances(session=session):
            if ti.state == TaskInstanceState.SCHEDULED:
                _run_task(ti=ti, task=dag.task_dict[ti.task_id], run_triggerer=True)
    return session.scalar(select(DagRun).where(DagRun.dag_id == dag.dag_id, DagRun.run_id == run_id))
