"""Parse time of the DAG factory with 500 synthetic clients of 8 files each, against
Airflow's own floor: the same graph of EmptyOperators, with no config read."""

from __future__ import annotations

import tempfile
from pathlib import Path

from benchmarks.common import run_step
from benchmarks.data import synthetic_clients
from benchmarks.report import Results

# Airflow's floor for the parse: the factory's graph for 500 clients (8 file groups of 4
# chained tasks, and a client's 16 other tasks wired as the factory wires them) built
# from EmptyOperators, with no config read and no SQL file opened.
FLOOR_DAGS = """
import pendulum
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG, TaskGroup

for i in range(500):
    with DAG(f"floor{i:03d}", schedule=None, start_date=pendulum.datetime(2026, 1, 1)) as dag:
        opened = EmptyOperator(task_id="open_batch")
        EmptyOperator(task_id="wait_for_files") >> opened
        loads = []
        for f in range(8):
            with TaskGroup(f"file{f}"):
                steps = [EmptyOperator(task_id=t)
                         for t in ("convert", "validate_mapping", "validate_rows", "load_bronze")]
                opened >> steps[0] >> steps[1] >> steps[2] >> steps[3]
                loads.append(steps[3])
        silver = [EmptyOperator(task_id=f"silver_{k}") for k in range(6)]
        for step in silver:
            loads >> step
        checked = EmptyOperator(task_id="quality_silver")
        silver >> checked
        dims = [EmptyOperator(task_id="gold_dim_1"), EmptyOperator(task_id="gold_dim_2")]
        fact = EmptyOperator(task_id="gold_fact")
        checked >> dims
        dims >> fact
        views = [EmptyOperator(task_id="view_1"), EmptyOperator(task_id="view_2")]
        fact >> views
        gold_checked = EmptyOperator(task_id="quality_gold")
        views >> gold_checked
        gold_checked >> EmptyOperator(task_id="close_batch", trigger_rule="all_done")
    globals()[dag.dag_id] = dag
"""


def measure_parse(results: Results) -> None:
    """The factory's parse time with 500 synthetic clients: the DAG file's import, and what
    the DAG processor does with it (DagBag and serialization)."""
    print("DAG parse, 500 clients x 8 files", flush=True)
    with tempfile.TemporaryDirectory() as folder:
        synthetic_clients(Path(folder))
        env = {"ETL_CLIENTS_DIR": f"{folder}/clients", "ETL_SQL_DIR": f"{folder}/sql"}
        res = run_step("parse", {}, env=env)
        processor = run_step("parse_dag_processor", {}, env=env)
        floor_file = Path(folder) / "floor" / "floor.py"
        floor_file.parent.mkdir()
        floor_file.write_text(FLOOR_DAGS)
        floor = run_step("parse_dag_processor", {"file": str(floor_file)})
    for name, got in (("parse", res), ("parse_dag_processor", processor), ("floor", floor)):
        if got["dags"] != 500 or got["errors"]:
            raise SystemExit(f"{name}: {got['dags']} DAGs, {got['errors']} errors")
    results.values["parse_500_clients_import_s"] = round(res["seconds"], 3)
    results.values["parse_500_clients_s"] = round(res["process_seconds"], 3)
    results.values["parse_500_clients_dag_processor_s"] = round(processor["seconds"], 3)
    results.values["parse_500_clients_dag_processor_serialize_s"] = round(processor["serialize_seconds"], 3)
    results.values["parse_500_clients_airflow_floor_s"] = round(floor["seconds"], 3)
    results.values["parse_500_clients_dag_processor_vs_airflow_floor"] = round(
        processor["seconds"] / floor["seconds"], 3
    )
    results.line(
        "parse 500 clients (process, imports included)", res["process_seconds"], 500, res["peak_rss_mb"]
    )
    results.line(
        "parse 500 clients, DAG processor (+ serialize)", processor["seconds"], 500, processor["peak_rss_mb"]
    )
    results.line("  the same graph of EmptyOperators (Airflow)", floor["seconds"], 500, floor["peak_rss_mb"])
