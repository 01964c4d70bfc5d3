"""A backfill over a date range, run by Airflow itself: `airflow backfill create`, the
scheduler, the api-server and LocalExecutor workers, started here as they run in
production (on a metadata database of their own, so no other test's runs are seen).

client1 has deliveries stamped 2026-01-05 and 2026-01-06 in incoming, an undated
delivery (today's), and nothing for 2026-01-07. Unpausing the DAG starts today's
scheduled run; a backfill of 2026-01-05..07 with three runs allowed at once starts
beside it. Together they must:

* load each day's stamped delivery as that day's batch (``tools.batch.delivery_date``)
  and the undated delivery in the live run's batch, one run after the other (runs
  queue for the client instead of failing);
* skip the day with nothing delivered, at once, and end that run green;
* end with gold holding exactly the union of the three deliveries' rows.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import yaml

from demo import generate
from include.etl.config import CLIENTS_DIR
from include.etl.ingest.landing import Landing
from include.etl.warehouse.migrations import migrate
from scripts.airflow_stack import AirflowStack, StackError, database_beside
from tests import expected_client1
from tests.conftest import complete, reset_client
from tests.e2e.test_pipeline import count

DAYS = {"20260105": 11, "20260106": 12}  # stamp -> generator seed
ROWS = 400
TIMEOUT_S = 540


def _clients_dir(folder: Path) -> Path:
    """client1's real config, with a sensor that pokes every 10 s and quick retries."""
    folder.mkdir()
    defaults = yaml.safe_load((CLIENTS_DIR / "_defaults.yaml").read_text())
    defaults.update(sensor={"poke_interval_seconds": 10, "timeout_seconds": 900}, retry_delay_seconds=2)
    (folder / "_defaults.yaml").write_text(yaml.safe_dump(defaults))
    shutil.copy(CLIENTS_DIR / "client1.yaml", folder / "client1.yaml")
    return folder


@pytest.fixture
def stack(warehouse_url: str, tmp_path: Path, landing: Landing) -> Iterator[AirflowStack]:
    """An Airflow installation of its own (home, metadata database) with its api-server
    (the task execution API) and scheduler running; stopped afterwards."""
    metadata = database_beside(warehouse_url, "airflow_backfill")
    env = {
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "AIRFLOW_CONN_WAREHOUSE": warehouse_url,
        "ETL_DATA_ROOT": str(landing.root),
        "ETL_CLIENTS_DIR": str(_clients_dir(tmp_path / "clients")),
    }
    with AirflowStack(tmp_path / "airflow", metadata, env) as running:
        running.start("api-server", "scheduler", "triggerer")  # a run waiting for the client defers
        yield running


def _runs(stack: AirflowStack) -> dict[str, dict]:
    """client1's DAG runs: the backfill's by logical day, the scheduled one as ``live``."""
    rows = stack.metadata(
        """SELECT CASE run_type WHEN 'backfill'
                       THEN to_char(logical_date AT TIME ZONE 'UTC', 'YYYY-MM-DD') ELSE 'live' END,
                  run_id, state
           FROM dag_run WHERE dag_id = 'client1'""",
    )
    return {day: {"run_id": run_id, "state": state} for day, run_id, state in rows}


def test_a_backfill_loads_each_days_delivery_as_its_batch(
    clients, conn: psycopg.Connection, landing: Landing, tmp_path: Path, stack: AirflowStack
) -> None:
    cfg = clients["client1"]
    reset_client(conn, cfg)
    migrate(conn, [cfg])
    keys = {}
    for stamp, seed in DAYS.items():
        generated = tmp_path / "generated" / stamp
        for path in generate("client1", generated, rows=ROWS, seed=seed, stamp=stamp):
            target = landing.raw("client1", path.parent.name, "incoming")
            target.mkdir(parents=True, exist_ok=True)
            complete(shutil.copy2(path, target / path.name))
        keys[stamp] = expected_client1.expected_keys(generated)
    for path in generate("client1", tmp_path / "generated" / "live", rows=ROWS, seed=13):
        complete(shutil.copy2(path, landing.raw("client1", path.parent.name, "incoming") / path.name))
    keys["live"] = expected_client1.expected_keys(tmp_path / "generated" / "live")

    stack.airflow("dags", "unpause", "client1")
    stack.airflow(
        *(
            "backfill",
            "create",
            "--dag-id",
            "client1",
            "--from-date",
            "2026-01-05",
            "--to-date",
            "2026-01-07",
        ),
        *("--max-active-runs", "3"),
    )

    def finished() -> dict[str, dict] | None:
        runs = _runs(stack)
        done = len(runs) == 4 and all(r["state"] in ("success", "failed") for r in runs.values())
        return runs if done else None

    try:
        runs = stack.wait_for("the live run and the backfill's three to finish", finished, TIMEOUT_S, every=5)
    except StackError as exc:
        raise AssertionError(f"backfill did not finish: {exc}\n{stack.log_tail('scheduler')}") from None

    assert {day: r["state"] for day, r in runs.items()} == {
        "live": "success",
        "2026-01-05": "success",
        "2026-01-06": "success",
        "2026-01-07": "success",  # nothing delivered: skipped, green
    }
    batches = conn.execute(
        """SELECT r.dag_run_id, b.batch_id, b.delivery_date, b.status FROM tools.batch AS b
           JOIN tools.batch_run AS r USING (client_schema, batch_id) WHERE b.client_schema = 'client1'"""
    ).fetchall()
    by_delivery = {
        (str(day) if day else "live"): (batch_id, status, run_id) for run_id, batch_id, day, status in batches
    }
    assert sorted(by_delivery) == ["2026-01-05", "2026-01-06", "live"] and len(batches) == 3
    for delivery, (batch_id, status, run_id) in by_delivery.items():
        assert (status, run_id) == ("SUCCESS", runs[delivery]["run_id"]), delivery
        stamp = delivery.replace("-", "") if delivery != "live" else "live"
        for _, spec in cfg.files:
            loaded = count(conn, cfg.bronze_schema, spec.bronze_table, batch_id)
            assert loaded == keys[stamp][f"bronze.{spec.bronze_table}"], (delivery, spec.name)
        # the batch claimed exactly that delivery's files; they are archived under its id
        archived = {p.name for p in (landing.root / "raw" / "client1").glob(f"*/archive/*_{batch_id}.csv")}
        assert archived == {
            f"{p.stem}_{batch_id}{p.suffix}" for p in (tmp_path / "generated" / stamp).rglob("*.csv")
        }, delivery
    for table in ("dim_customers", "dim_products", "fact_sales"):
        union = set().union(*(k[f"gold.{table}"] for k in keys.values()))
        assert count(conn, cfg.gold_schema, table) == len(union), table
    assert not list((landing.root / "raw" / "client1").glob("*/incoming/*"))

    # The empty day was skipped by its sensor at once, with the reason in its log.
    empty = runs["2026-01-07"]["run_id"]
    states = dict(
        stack.metadata(
            "SELECT task_id, state FROM task_instance WHERE dag_id = 'client1' AND run_id = %s", empty
        )
    )
    assert states["wait_for_files"] == "skipped" and states["open_batch"] == "skipped"
    assert states["close_batch"] == "skipped"
    logs = stack.home / "logs"
    sensor_log = "".join(
        p.read_text()
        for p in logs.rglob("*.log")
        if "task_id=wait_for_files" in str(p) and f"run_id={empty}" in str(p)
    )
    assert "client1: nothing delivered for 2026-01-07 (no file stamped 20260107 in incoming)" in sensor_log
