"""The whole batch as a deployment runs it: client1's run on a real scheduler, api-server
and LocalExecutor (``scripts/airflow_stack.py``), each task in a process of its own."""

from __future__ import annotations

import shutil
from pathlib import Path

from benchmarks.common import LANDING, ROOT, WORK
from scripts.airflow_stack import AirflowStack, StackError, fresh_database


def e2e_on_scheduler(env: dict, metadata_url: str) -> dict:
    """client1's run, the DAG unpaused with its files in incoming, on a metadata database
    of its own. Its seconds are the DAG run's own (start to end, as the UI shows them);
    starting the services, and the first request each of the api-server's two APIs
    answers (which generates its versioned routes), are not timed. Independent tasks
    (the file groups, the silver steps) run side by side on the machine's cores."""
    home = WORK / "airflow-scheduler"
    shutil.rmtree(home, ignore_errors=True)
    settings = {
        **env,
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        "ETL_DATA_ROOT": str(LANDING),
        "PYTHONPATH": str(ROOT),
    }
    with AirflowStack(Path(home), fresh_database(metadata_url), settings) as stack:
        stack.start("api-server", "scheduler")
        stack.airflow("dags", "unpause", "client1")  # its latest daily run starts
        try:
            ((run_id,),) = stack.wait_for(
                "client1's run",
                lambda: stack.metadata("SELECT run_id FROM dag_run WHERE dag_id = 'client1'"),
                120,
            )
            ended = (
                "SELECT state FROM dag_run WHERE dag_id = 'client1' AND run_id = %s AND end_date IS NOT NULL"
            )
            ((state,),) = stack.wait_for(
                "client1's run to finish", lambda: stack.metadata(ended, run_id), 1800
            )
        except StackError as exc:
            raise SystemExit(str(exc)) from None
        if state != "success":
            raise SystemExit(f"the client1 DAG run (scheduler) ended {state}: see the logs in {home}")
        ((seconds, tasks),) = stack.metadata(
            """SELECT extract(epoch FROM r.end_date - r.start_date)::float,
                      coalesce((SELECT sum(extract(epoch FROM t.end_date - t.start_date))::float
                                FROM task_instance AS t
                                WHERE t.dag_id = r.dag_id AND t.run_id = r.run_id), 0)
               FROM dag_run AS r WHERE r.dag_id = 'client1' AND r.run_id = %s""",
            run_id,
        )
    return {"seconds": seconds, "tasks_seconds": round(tasks, 3)}
