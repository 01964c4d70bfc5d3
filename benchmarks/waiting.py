"""What waiting costs: N clients whose files have not come, under a real scheduler,
DAG processor, triggerer and api-server (LocalExecutor), three ways: a run per client
whose ``wait_for_files`` waits in reschedule mode (each look a task process) or deferred
(each look a coroutine in the triggerer), and no run at all (``sensor.start: delivery``:
each client's delivery watcher looks in the triggerer). Measured: the CPU seconds each
Airflow service used (the scheduler's with the LocalExecutor's task processes) per
minute of waiting, once every client looks (its sensor has looked once, or its watcher
runs); the waiting cost is all but the DAG processor's (parsing does not depend on
waiting: the parse bench measures it, and unchanged files are not re-parsed here).

The waiting cost of one client is the slope between two N (what a client more costs),
so the services' own idle cost does not count as waiting; ``waiting_cpu_share_1000_clients``
extrapolates it to 1,000 clients as a share of one core.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import yaml

from benchmarks.data import synthetic_clients
from benchmarks.report import Results
from scripts.airflow_stack import AirflowStack, database_beside

WAYS = ("reschedule", "deferred", "delivery")
# A run per client costs enough to measure at 50 and 200; no run (start: delivery) is
# measured where it matters, at 1,000 (the triggerer's default capacity).
CLIENTS = {"reschedule": (50, 200), "deferred": (50, 200), "delivery": (200, 1000)}
WINDOW_S = 120.0
POKE_S = 60
TICK = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(groups: dict[int, str]) -> dict[str, float]:
    """CPU seconds (user + system, with waited-for children) of the processes of each
    service, by its process group (``groups``: process group -> service)."""
    total = dict.fromkeys(groups.values(), 0.0)
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            fields = Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) in groups:  # pgrp
            total[groups[int(fields[2])]] += sum(int(v) for v in fields[11:15]) / TICK  # u+s, children too
    return total


def _configure(folder: Path, count: int, way: str) -> None:
    """``count`` synthetic clients waiting: scheduled daily (one run each at once), or
    with ``start: delivery`` unscheduled (no run at all: the tick's run would find nothing
    and end, a cost of the tick, not of waiting)."""
    synthetic_clients(folder, count)
    clients = folder / "clients"
    defaults = yaml.safe_load((clients / "_defaults.yaml").read_text())
    if way == "delivery":
        for path in clients.glob("bench*.yaml"):
            path.write_text(yaml.safe_dump({**yaml.safe_load(path.read_text()), "schedule": None}))
    defaults["sensor"].update(
        poke_interval_seconds=POKE_S,
        timeout_seconds=86400,
        deferrable=way != "reschedule",
        start="delivery" if way == "delivery" else "schedule",
    )
    (clients / "_defaults.yaml").write_text(yaml.safe_dump(defaults))


# Every client looks: its sensor has looked once (then it waits: deferred, or between its
# looks; in reschedule mode some are always running a look, so "all waiting" may never be
# seen); with start: delivery, its watcher runs in the triggerer (and its tick's run, which
# finds nothing to take, has ended).
LOOKING = {
    "sensor": "SELECT count(*) FROM task_instance WHERE task_id = 'wait_for_files'"
    " AND start_date IS NOT NULL"
    " AND state IN ('deferred', 'up_for_reschedule', 'running', 'queued', 'scheduled')",
    "delivery": "SELECT (SELECT count(*) FROM trigger WHERE triggerer_id IS NOT NULL"
    " AND classpath = 'include.etl.orchestration.triggers.DeliveryWatcher')"
    " * (SELECT (count(*) = 0)::int FROM dag_run WHERE state IN ('queued', 'running'))",
}


def _one(results: Results, metadata_base: str, count: int, way: str) -> float:
    print(f"waiting: {count} clients, {way}", flush=True)
    metadata = database_beside(metadata_base, "wait")
    with tempfile.TemporaryDirectory() as folder:
        _configure(Path(folder), count, way)
        env = {
            "ETL_CLIENTS_DIR": f"{folder}/clients",
            "ETL_SQL_DIR": f"{folder}/sql",
            "ETL_DATA_ROOT": f"{folder}/landing",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "16",
            "AIRFLOW__CORE__PARALLELISM": "32",
            # no re-parse of unchanged DAG files inside the window (parsing: the parse bench)
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "3600",
        }
        with AirflowStack(Path(folder) / "airflow", metadata, env) as stack:
            # Housekeeping purges each client daily: a task per client, not waiting's cost.
            stack.airflow("dags", "pause", "housekeeping")
            stack.start("api-server", "scheduler", "dag-processor", "triggerer")
            if way == "delivery":  # watchers are registered for unpaused DAGs: parse them once more
                stack.airflow("dags", "reserialize")
            query = LOOKING["delivery" if way == "delivery" else "sensor"]
            looked = lambda: stack.metadata(query)[0][0] >= count  # noqa: E731
            stack.wait_for(f"{count} clients looking", looked, 1800, every=5)
            groups = {s.pid: name for name, s in stack.services.items()}
            before, started = _cpu_seconds(groups), time.monotonic()
            time.sleep(WINDOW_S)
            after, elapsed = _cpu_seconds(groups), time.monotonic() - started
    per_service = {name: (after[name] - before[name]) / elapsed * 60 for name in after}
    for name, value in per_service.items():
        service = name.replace("-", "_")
        results.values[f"waiting_{count}_clients_{way}_{service}_cpu_s_per_min"] = round(value, 2)
    # Waiting's own cost: everything but the DAG processor, whose parsing does not depend
    # on waiting (and is measured by the parse bench); the scheduler's share includes the
    # LocalExecutor's task processes.
    per_minute = sum(v for name, v in per_service.items() if name != "dag-processor")
    results.values[f"waiting_{count}_clients_{way}_cpu_s_per_min"] = round(per_minute, 2)
    results.line(f"waiting {count} clients, {way}, CPU s per minute", per_minute, count)
    return per_minute


def measure_waiting(
    results: Results, metadata_base: str, counts: tuple[int, int] | None = None, ways: tuple[str, ...] = WAYS
) -> None:
    """Each way at two counts (``counts``, else its own in ``CLIENTS``); the slope per
    client (and per service) and its share of a core at 1,000 clients."""
    for way in ways:
        low, high = counts or CLIENTS[way]
        at_low = _one(results, metadata_base, low, way)
        at_high = _one(results, metadata_base, high, way)
        # A slope below zero is noise in the services' own cost (the scheduler's loop),
        # and counts as no cost: hence the share measured at ``high`` below.
        per_client = max(at_high - at_low, 0.0) / (high - low)  # CPU s per minute per client
        results.values[f"waiting_cpu_s_per_min_per_client_{way}"] = round(per_client, 4)
        # 1,000 clients: CPU seconds per second of wall time = share of one core
        results.values[f"waiting_cpu_share_1000_clients_{way}"] = round(per_client * 1000 / 60, 3)
        for service in ("scheduler", "triggerer", "api_server"):  # the slope of each service
            key = f"waiting_{{}}_clients_{way}_{service}_cpu_s_per_min"
            grew = results.values[key.format(high)] - results.values[key.format(low)]
            slope = max(grew, 0.0) / (high - low)
            results.values[f"waiting_cpu_share_1000_clients_{way}_{service}"] = round(slope * 1000 / 60, 3)
        # Measured, not extrapolated: the waiting services' share of one core at ``high``
        # clients, their own idle cost included (so above what waiting alone costs).
        results.values[f"waiting_{high}_clients_{way}_cpu_share"] = round(at_high / 60, 3)
    # The headline: the cheapest way measured (no run while nothing has come, when measured).
    best = next(w for w in ("delivery", "deferred", "reschedule") if w in ways)
    headline = results.values[f"waiting_cpu_share_1000_clients_{best}"]
    results.values["waiting_cpu_share_1000_clients"] = headline
