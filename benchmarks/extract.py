"""A database source into bronze: client4's group (extract -> convert -> validate_mapping
-> validate_rows -> load_bronze, the task functions as the DAG runs them, in a process of
their own) against the floor: ``psql \\copy (SELECT ...) TO STDOUT`` piped into ``psql
\\copy ... FROM STDIN`` of the same rows into a bare table, in the same run.

* ``extract_vs_psql_floor``: the full load of ``rows`` source rows (2M by default), the
  group's seconds over the floor's (the fastest of ``repeat`` each, interleaved);
* ``extract_step_vs_psql_copy_out``, ``load_step_vs_psql_copy_in``: the extract task
  against psql writing the same rows, in the same order, to a CSV file; the load task
  against psql copying that file into the bare table (each half of the floor alone: the
  floor's two psql processes run at once, one on each core);
* ``extract_peak_rss_ratio_10x_rows``: the group's peak memory at ``rows`` over at a
  tenth of them (flat: ~1);
* ``incremental_vs_full``: the next run after 1% of the rows changed, over the full load
  (the fastest of ``repeat``, each after another 1% changed).

    scripts/with-env python -m benchmarks --only extract --rows 2000000
"""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from datetime import timedelta

import psycopg

from benchmarks.common import WORK, best, db_url, libpq, report, reset_database
from benchmarks.report import Results

CLIENT = "client4"
GROUP = ("extract", "convert", "validate_mapping", "validate_rows", "load_bronze")


# ---------------------------------------------------------------------------- child side
def step_extract_group(p: dict) -> None:
    """One batch of client4 up to bronze: open_batch (untimed), then the group's tasks."""
    from include.etl.orchestration import tasks

    def context(task: str) -> tasks.RunContext:
        return tasks.RunContext(dag_run_id=p["run_id"], task_id=task, run_is_active=lambda _: False)

    from airflow.sdk import BaseHook  # a worker has Airflow imported before its task starts

    BaseHook.get_connection("app_source")
    batch = tasks.open_batch(CLIENT, "start", None, context("open_batch"), full_load=p["full_load"])
    started = time.perf_counter()
    previous, steps = None, {}
    for step in GROUP:
        run = getattr(tasks, step)
        args = [CLIENT, "customers", batch] + ([previous] if step not in ("extract", "convert") else [])
        t0 = time.perf_counter()
        previous = run(*args, context(f"customers.{step}"))
        steps[step] = round(time.perf_counter() - t0, 3)
    seconds = time.perf_counter() - started
    report(seconds=seconds, rows=previous, batch_id=batch["batch_id"], steps=steps)


# ---------------------------------------------------------------------------- parent side
def _fill(source_dsn: str, rows: int) -> None:
    from demo import app_source

    with psycopg.connect(source_dsn, autocommit=True) as conn:
        app_source.create(conn, rows)


def _change_one_percent(source_dsn: str) -> int:
    """1% of the customers change (a new plan, a newer updated_at)."""
    with psycopg.connect(source_dsn, autocommit=True) as conn:
        row = conn.execute("SELECT max(updated_at) FROM shop.customers").fetchone()
        assert row is not None
        return conn.execute(
            "UPDATE shop.customers SET plan = 'team', "
            "updated_at = %s + make_interval(secs => customer_id %% 3600) WHERE customer_id %% 100 = 7",
            (row[0] + timedelta(seconds=1),),
        ).rowcount


def _bare_table(warehouse_dsn: str) -> None:
    with psycopg.connect(warehouse_dsn, autocommit=True) as conn:
        conn.execute(
            """DROP TABLE IF EXISTS public.bench_floor;
               CREATE TABLE public.bench_floor (customer_id bigint, full_name text, email text,
                   country text, plan text, deleted boolean, updated_at timestamptz)"""
        )


def _timed(command: str) -> float:
    started = time.perf_counter()
    subprocess.run(command, shell=True, check=True)
    return time.perf_counter() - started


def _floor(source_dsn: str, warehouse_dsn: str) -> dict:
    """psql \\copy out of the source piped into psql \\copy into a bare table: the floor.
    And each half alone, as the group's extract and load do theirs: the rows in the
    extract's order out to a CSV file (``copy_out``), that file into the bare table
    (``copy_in``)."""
    psql = shutil.which("psql") or "psql"
    out = f'{psql} "{source_dsn}" -qc "\\copy (SELECT * FROM shop.customers) TO STDOUT"'
    into = f'{psql} "{warehouse_dsn}" -qc "\\copy public.bench_floor FROM STDIN"'
    _bare_table(warehouse_dsn)
    seconds = _timed(f"{out} | {into}")
    csv = WORK / "extract-floor.csv"
    ordered = "SELECT * FROM shop.customers ORDER BY updated_at, customer_id"
    to_file = f"\\copy ({ordered}) TO '{csv}' (FORMAT csv, HEADER true)"
    copy_out = _timed(f'{psql} "{source_dsn}" -qc "{to_file}"')
    _bare_table(warehouse_dsn)
    from_file = f"\\copy public.bench_floor FROM '{csv}' (FORMAT csv, HEADER true)"
    copy_in = _timed(f'{psql} "{warehouse_dsn}" -qc "{from_file}"')
    csv.unlink()
    return {"seconds": seconds, "copy_out": copy_out, "copy_in": copy_in}


def measure_extract(results: Results, warehouse_base: str, rows: int, repeat: int) -> None:
    print("database source", flush=True)
    admin = libpq(db_url(warehouse_base, "postgres"))
    reset_database(admin, "bench_extract")
    reset_database(admin, "bench_source")
    warehouse_url, source_url = (
        db_url(warehouse_base, "bench_extract"),
        db_url(warehouse_base, "bench_source"),
    )
    landing = WORK / "extract-landing"
    shutil.rmtree(landing, ignore_errors=True)
    env = {
        "AIRFLOW_CONN_WAREHOUSE": warehouse_url,
        "WAREHOUSE_DSN": libpq(warehouse_url),
        "AIRFLOW_CONN_APP_SOURCE": source_url,
        "ETL_DATA_ROOT": str(landing),
    }

    def full_load(n: int) -> dict:
        _fill(libpq(source_url), n)
        return best(
            "extract_group", {"run_id": f"bench-{uuid.uuid4().hex[:8]}", "full_load": True}, repeat, env
        )

    small = full_load(rows // 10)
    results.record("extract_group_small", f"database source into bronze, {rows // 10:,} rows", small)
    group_runs, floor_runs = [], []
    _fill(libpq(source_url), rows)
    for _ in range(repeat):  # interleaved, so both see the same machine
        group_runs.append(
            best("extract_group", {"run_id": f"bench-{uuid.uuid4().hex[:8]}", "full_load": True}, 1, env)
        )
        floor_runs.append(_floor(libpq(source_url), libpq(warehouse_url)))
    group = min(group_runs, key=lambda r: r["seconds"])
    floor = min(floor_runs, key=lambda r: r["seconds"])
    results.record("extract_group", f"database source into bronze, {rows:,} rows (full load)", group)
    results.values["extract_group_steps_s"] = group.get("steps")  # where the seconds go
    results.record("extract_psql_floor", "psql \\copy out | psql \\copy in, same rows", floor)
    results.values["extract_vs_psql_floor"] = round(group["seconds"] / floor["seconds"], 3)
    copy_out = round(min(r["copy_out"] for r in floor_runs), 3)
    copy_in = round(min(r["copy_in"] for r in floor_runs), 3)
    results.values["extract_psql_copy_out_s"], results.values["extract_psql_copy_in_s"] = copy_out, copy_in
    results.values["extract_step_vs_psql_copy_out"] = round(group["steps"]["extract"] / copy_out, 3)
    results.values["load_step_vs_psql_copy_in"] = round(group["steps"]["load_bronze"] / copy_in, 3)
    results.values["extract_peak_rss_ratio_10x_rows"] = round(group["peak_rss_mb"] / small["peak_rss_mb"], 3)

    incremental_runs = []
    for _ in range(repeat):  # each run after 1% more changed: the fastest of repeat, as the full load
        changed = _change_one_percent(libpq(source_url))
        incremental_runs.append(
            best("extract_group", {"run_id": f"bench-{uuid.uuid4().hex[:8]}", "full_load": False}, 1, env)
        )
    incremental = min(incremental_runs, key=lambda r: r["seconds"])
    results.record("extract_group_incremental", f"the next run, {changed:,} rows changed (1%)", incremental)
    results.values["extract_group_incremental_steps_s"] = incremental.get("steps")
    results.values["incremental_vs_full"] = round(incremental["seconds"] / group["seconds"], 3)
    shutil.rmtree(landing, ignore_errors=True)
