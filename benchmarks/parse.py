"""Parse time of the DAG factory with 500, 1,000 and 2,000 synthetic clients of 8 files
each, spread over the 8 client DAG files as the DAG processor parses them, against
Airflow's own floor: the same graph of EmptyOperators, with no config read."""

from __future__ import annotations

import tempfile
from pathlib import Path

from benchmarks.common import ROOT, run_step
from benchmarks.data import synthetic_clients
from benchmarks.report import Results

# Airflow's floor for the parse: the factory's graph for COUNT clients (8 file groups of 4
# chained tasks, and a client's 16 other tasks wired as the factory wires them) built
# from EmptyOperators, with no config read and no SQL file opened.
FLOOR_DAGS = """
import pendulum
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG, TaskGroup

for i in range(COUNT):
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


CURVE = (500, 1000, 2000)


def _fastest(runs: list[dict]) -> dict:
    return min(runs, key=lambda run: run["seconds"])


def measure_parse(results: Results, counts: tuple[int, ...] = CURVE, repeat: int = 2) -> None:
    """For each client count: what the DAG processor does with each client DAG file (a
    DagBag of it and the serialization of its DAGs), the slowest file and the sum over
    the files, and Airflow's floor for the same graph in one file.

    Each file and the floor: the fastest of ``repeat`` processes, the rounds interleaved.
    The same parse in two processes here differs by up to 1.6x (measured: the floor's 250
    DAGs in 3.6 to 6.1 s, whichever core, whatever hash seed), so one run of each says
    more about the processes than about the parse."""
    from include.etl.config import DAG_FILE_SHARDS

    shard_files = [ROOT / "dags" / f"client_pipelines_{k}.py" for k in range(DAG_FILE_SHARDS)]
    for count in counts:
        print(f"DAG parse, {count} clients x 8 files over {DAG_FILE_SHARDS} DAG files", flush=True)
        with tempfile.TemporaryDirectory() as folder:
            synthetic_clients(Path(folder), count)
            env = {"ETL_CLIENTS_DIR": f"{folder}/clients", "ETL_SQL_DIR": f"{folder}/sql"}
            floor_file = Path(folder) / "floor" / "floor.py"
            floor_file.parent.mkdir()
            floor_file.write_text(FLOOR_DAGS.replace("COUNT", str(count)))
            rounds = []
            for _ in range(max(1, repeat)):
                shards = [run_step("parse_dag_processor", {"file": str(f)}, env=env) for f in shard_files]
                rounds.append((shards, run_step("parse_dag_processor", {"file": str(floor_file)})))
            files = [_fastest([parsed[k] for parsed, _ in rounds]) for k in range(len(shard_files))]
            floor = _fastest([floor_run for _, floor_run in rounds])
        built = sum(f["dags"] for f in files)
        if built != count or any(f["errors"] for f in files) or floor["dags"] != count:
            raise SystemExit(f"parse {count}: {built} DAGs, floor {floor['dags']}, errors in a file")
        slowest, total = max(f["seconds"] for f in files), sum(f["seconds"] for f in files)
        key = f"parse_{count}_clients"
        results.values[f"{key}_slowest_file_s"] = round(slowest, 3)
        results.values[f"{key}_total_s"] = round(total, 3)
        results.values[f"{key}_largest_file_dags"] = max(f["dags"] for f in files)
        results.values[f"{key}_airflow_floor_s"] = round(floor["seconds"], 3)
        results.values[f"{key}_vs_airflow_floor"] = round(total / floor["seconds"], 3)
        results.line(f"parse {count} clients, slowest of {DAG_FILE_SHARDS} files", slowest, count)
        results.line(f"parse {count} clients, all {DAG_FILE_SHARDS} files", total, count)
        results.line(f"  the same graph of EmptyOperators (Airflow), {count}", floor["seconds"], count)
    top = max(counts)
    results.values["parse_vs_airflow_floor"] = results.values[f"parse_{top}_clients_vs_airflow_floor"]
