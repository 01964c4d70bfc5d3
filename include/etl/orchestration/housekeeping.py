"""The ``housekeeping`` DAG: every day, each client's retention (``include.etl.retention``)
and Airflow's own metadata (``airflow db clean``).

- ``purge.<client>``: one task per client, purging the batches past its
  ``retention_days`` (files, Parquet, manifests, bronze child tables, dead letters and
  log rows), recorded in ``tools.housekeeping_log``.
- ``airflow_metadata``: ``airflow db clean`` of what is older than the longest retention
  of any client, so no client's runs go before its own files do. Airflow 3 keeps task
  processes away from its metadata database (their ``sql_alchemy_conn`` is replaced), so
  on a worker the clean reaches it through the connection ``airflow_metadata_db``; a
  deployment without that connection sees the task skipped, saying so.

The ``dry_run`` Param: empty (the default) means a dry run when triggered by hand and a
real purge when scheduled; ``true`` or ``false`` says it outright. A dry run lists what
would go, in the task logs and in ``tools.housekeeping_log``, and removes nothing.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import DAG, BaseHook, Param, TaskGroup, get_current_context, task
from airflow.sdk.exceptions import AirflowNotFoundException, AirflowSkipException

from include.etl.config import load_clients

DAG_ID = "housekeeping"
METADATA_CONN_ID = "airflow_metadata_db"
BLOCKED = "airflow-db-not-allowed"  # what Airflow 3 puts in a task process's sql_alchemy_conn


def _dry_run(context: Any) -> bool:
    """The run's ``dry_run``: as its Param says, else a dry run unless it was scheduled."""
    chosen = context["params"].get("dry_run")
    if chosen is not None:
        return bool(chosen)
    run_type = getattr(context["dag_run"], "run_type", None)
    return getattr(run_type, "value", run_type) != "scheduled"


@task
def purge(client: str) -> dict:
    """Purge (or list) one client's expired batches; returns the batches and what went."""
    from include.etl.config import config_for
    from include.etl.orchestration.connections import landing as landing_store
    from include.etl.orchestration.connections import warehouse
    from include.etl.retention import purge_client
    from include.etl.warehouse.migrations import migrate

    context = get_current_context()
    dry_run = _dry_run(context)
    cfg = config_for(client)
    with warehouse() as conn:
        conn.autocommit = True
        migrate(conn, [cfg])  # tools.housekeeping_log, on a warehouse not migrated yet
        purged = purge_client(conn, cfg, landing_store(), datetime.now(UTC), dry_run, context["ti"].run_id)
    return {
        "dry_run": dry_run,
        "batches": [p.batch_id for p in purged],
        "items": {p.batch_id: {k: n for k, n, _, _ in p.kinds()} for p in purged},
    }


@task
def airflow_metadata(longest_retention_days: int) -> str:
    """``airflow db clean`` of Airflow's metadata older than the longest retention."""
    context = get_current_context()
    before = (datetime.now(UTC) - timedelta(days=longest_retention_days)).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    command = [sys.executable, "-m", "airflow", "db", "clean", "--clean-before-timestamp", before, "--yes"]
    command += ["--dry-run"] if _dry_run(context) else ["--skip-archive"]
    env = dict(os.environ)
    if env.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", BLOCKED).startswith(BLOCKED):
        url = _metadata_url()
        env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = env["AIRFLOW__CORE__SQL_ALCHEMY_CONN"] = url
    done = subprocess.run(command, capture_output=True, text=True, timeout=3600, env=env)
    if done.returncode:
        raise RuntimeError(f"airflow db clean failed: {' '.join(done.stderr.split())[-500:]}")
    return f"airflow db clean before {before}{' (dry run)' if '--dry-run' in command else ''}"


def _metadata_url() -> str:
    """Airflow's metadata database, from the connection ``airflow_metadata_db`` (a task
    process is not given it); skip the task, saying why, when there is none."""
    from sqlalchemy.engine import URL

    try:
        conn = BaseHook.get_connection(METADATA_CONN_ID)
    except AirflowNotFoundException:
        raise AirflowSkipException(
            f"no connection {METADATA_CONN_ID}: Airflow's metadata is not cleaned by this task "
            "(set it to the metadata database, or run `airflow db clean` where the scheduler runs)"
        ) from None
    url = URL.create(
        "postgresql+psycopg2",
        username=conn.login,
        password=conn.password,
        host=conn.host,
        port=conn.port,
        database=conn.schema,
    )
    return url.render_as_string(hide_password=False)


def build_housekeeping() -> DAG:
    """The housekeeping DAG: one purge task per client config, then Airflow's metadata."""
    configs, _ = load_clients()
    with DAG(
        dag_id=DAG_ID,
        description="Retention: each client's expired batches and Airflow's metadata",
        schedule="@daily",
        start_date=datetime(2026, 1, 1),
        catchup=False,
        max_active_runs=1,
        default_args={"owner": "data-platform", "retries": 1, "retry_delay": timedelta(minutes=5)},
        tags=["etl", "housekeeping"],
        doc_md=__doc__,
        params={
            "dry_run": Param(
                None,
                type=["null", "boolean"],
                title="Dry run",
                description="list what would go, remove nothing; empty: a dry run unless scheduled",
            )
        },
    ) as dag:
        with TaskGroup(group_id="purge"):
            purges = [purge.override(task_id=cfg.client)(cfg.client) for cfg in configs]
        longest = max((cfg.retention_days for cfg in configs), default=90)
        purges >> airflow_metadata(longest)
    return dag
