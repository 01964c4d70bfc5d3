"""Parse time of the DAG factory with 500, 1,000 and 2,000 synthetic clients of 8 files
each, spread over the client DAG files as the DAG processor parses them, against
Airflow's own floor: the same graph of EmptyOperators, with no config read; and against
the same floor with the settings every client DAG has (schedule, retries, docs)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from benchmarks.common import ROOT, run_step
from benchmarks.data import synthetic_clients
from benchmarks.report import Results

# Airflow's floor for the parse: the factory's graph for COUNT clients built from
# EmptyOperators, with no config read and no SQL file opened. The same task groups, tasks,
# edges and trigger rules as a synthetic client's DAG (wait_for_files, open_batch, 8 file
# groups of 4 chained steps, 6 silver steps, 2 dimensions and a fact, 2 summaries, 2
# quality gates, close_batch after everything that must end before it);
# tests/unit/test_bench_support.py compares the two graphs.
FLOOR_DAGS = """
import pendulum
from datetime import timedelta
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG, TaskGroup

SQL = "none_failed_min_one_success"
for i in range(COUNT):
    with DAG(f"floor{i:03d}", start_date=pendulum.datetime(2026, 1, 1), SETTINGS) as dag:
        opened = EmptyOperator(task_id="open_batch")
        EmptyOperator(task_id="wait_for_files") >> opened
        loads = []
        for f in range(8):
            with TaskGroup(f"file{f}"):
                steps = [EmptyOperator(task_id=t)
                         for t in ("convert", "validate_mapping", "validate_rows", "load_bronze")]
                opened >> steps[0] >> steps[1] >> steps[2] >> steps[3]
                loads.append(steps[3])
        with TaskGroup("silver") as silver:
            silver_steps = [EmptyOperator(task_id=f"step_{k}", trigger_rule=SQL) for k in range(6)]
        with TaskGroup("gold") as gold:
            dims = [EmptyOperator(task_id=f"dim_{k}", trigger_rule=SQL) for k in range(2)]
            dims >> EmptyOperator(task_id="fact", trigger_rule=SQL)
        with TaskGroup("refresh_views") as views:
            first = EmptyOperator(task_id="view_1", trigger_rule=SQL)
            first >> EmptyOperator(task_id="view_2", trigger_rule=SQL)
        loads >> silver >> gold >> views
        with TaskGroup("quality") as quality:
            gates = [EmptyOperator(task_id=t, trigger_rule=SQL) for t in ("silver", "gold")]
        views >> quality
        EmptyOperator(task_id="close_batch", trigger_rule="all_done") << [
            opened, *loads, *silver_steps, *dims, *gates
        ]
    globals()[dag.dag_id] = dag
"""


# The floor's DAG settings: none (Airflow's defaults), or those every client DAG has, as
# the factory sets them (`include.etl.orchestration.factory.build_dag`): a daily schedule,
# one run at a time, the retry and timeout defaults of `_defaults.yaml`, a description,
# tags and a page of docs. What the floor then leaves out is the factory's own work (the
# config, the SQL files, the run-mode form) and what its operators carry beyond an
# EmptyOperator (templated SQL, the sensor's settings, per-task docs).
BARE = "schedule=None"
WITH_SETTINGS = """schedule="@daily", catchup=False, max_active_runs=1,
             description="Retail sales (CRM + ERP)", tags=["retail", f"client:floor{i:03d}"],
             doc_md="A client's DAG page. " * 90,
             default_args={"owner": "retail-data-team", "retries": 2,
                           "retry_delay": timedelta(seconds=60), "retry_exponential_backoff": 2.0,
                           "max_retry_delay": timedelta(minutes=30),
                           "execution_timeout": timedelta(minutes=120)}"""


def floor_source(count: int, settings: str = BARE) -> str:
    """The floor's DAG file for ``count`` clients, with ``settings`` (BARE or WITH_SETTINGS)."""
    return FLOOR_DAGS.replace("COUNT", str(count)).replace("SETTINGS", settings)


CURVE = (500, 1000, 2000)


def _fastest(runs: list[dict]) -> dict:
    return min(runs, key=lambda run: run["seconds"])


def measure_parse(results: Results, counts: tuple[int, ...] = CURVE, repeat: int = 2) -> None:
    """For each client count: what the DAG processor does with each client DAG file (a
    DagBag of it and the serialization of its DAGs), the slowest file and the sum over
    the files, and Airflow's floor for the same graph in one file, bare and with the
    client DAGs' settings.

    Each file and each floor: the fastest of ``repeat`` processes, the rounds interleaved.
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
            (Path(folder) / "floor").mkdir()
            floor_files = [Path(folder) / "floor" / name for name in ("floor.py", "floor_settings.py")]
            for floor_file, settings in zip(floor_files, (BARE, WITH_SETTINGS), strict=True):
                floor_file.write_text(floor_source(count, settings))
            rounds = []
            for _ in range(max(1, repeat)):
                shards = [run_step("parse_dag_processor", {"file": str(f)}, env=env) for f in shard_files]
                floors = [run_step("parse_dag_processor", {"file": str(f)}) for f in floor_files]
                rounds.append((shards, floors))
            files = [_fastest([parsed[k] for parsed, _ in rounds]) for k in range(len(shard_files))]
            floor, floor_settings = (_fastest([measured[k] for _, measured in rounds]) for k in (0, 1))
        built = sum(f["dags"] for f in files)
        floor_dags = {floor["dags"], floor_settings["dags"]}
        if built != count or any(f["errors"] for f in files) or floor_dags != {count}:
            raise SystemExit(f"parse {count}: {built} DAGs, floors {floor_dags}, errors in a file")
        slowest, total = max(f["seconds"] for f in files), sum(f["seconds"] for f in files)
        key = f"parse_{count}_clients"
        results.values[f"{key}_slowest_file_s"] = round(slowest, 3)
        results.values[f"{key}_total_s"] = round(total, 3)
        results.values[f"{key}_largest_file_dags"] = max(f["dags"] for f in files)
        results.values[f"{key}_airflow_floor_s"] = round(floor["seconds"], 3)
        results.values[f"{key}_vs_airflow_floor"] = round(total / floor["seconds"], 3)
        results.values[f"{key}_airflow_floor_settings_s"] = round(floor_settings["seconds"], 3)
        results.values[f"{key}_vs_airflow_floor_settings"] = round(total / floor_settings["seconds"], 3)
        results.line(f"parse {count} clients, slowest of {DAG_FILE_SHARDS} files", slowest, count)
        results.line(f"parse {count} clients, all {DAG_FILE_SHARDS} files", total, count)
        results.line(f"  the same graph of EmptyOperators (Airflow), {count}", floor["seconds"], count)
        results.line(f"  the same, with the client DAGs' settings, {count}", floor_settings["seconds"], count)
    top = max(counts)
    results.values["parse_vs_airflow_floor"] = results.values[f"parse_{top}_clients_vs_airflow_floor"]
    results.values["parse_vs_airflow_floor_settings"] = results.values[
        f"parse_{top}_clients_vs_airflow_floor_settings"
    ]
