"""What waiting costs: N clients whose files have not come, under a real scheduler,
DAG processor, triggerer and api-server (LocalExecutor), for ``wait_for_files`` in
reschedule mode (each look a task process) and deferred (each look a coroutine in the
triggerer). Measured: the CPU seconds every Airflow process used (task processes
included) per minute of waiting, after every client's sensor has started waiting.

The waiting cost of one client is the slope between two N (what a client more costs),
so the services' own idle cost does not count as waiting; ``waiting_cpu_share_1000_clients``
extrapolates it to 1,000 clients as a share of one core.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import yaml

from benchmarks.data import synthetic_clients
from benchmarks.report import Results
from scripts.airflow_stack import AirflowStack, fresh_database

CLIENTS = (50, 200)
WINDOW_S = 120.0
POKE_S = 60
TICK = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(groups: set[int]) -> float:
    """CPU seconds (user + system, with waited-for children) of the processes in the
    process groups ``groups``."""
    total = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            fields = Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) in groups:  # pgrp
            total += sum(int(v) for v in fields[11:15])  # utime stime cutime cstime
    return total / TICK


def _configure(folder: Path, count: int, deferrable: bool) -> None:
    """``count`` synthetic clients, scheduled daily (one run each at once), waiting."""
    synthetic_clients(folder, count)
    clients = folder / "clients"
    defaults = yaml.safe_load((clients / "_defaults.yaml").read_text())
    defaults["sensor"].update(poke_interval_seconds=POKE_S, timeout_seconds=86400, deferrable=deferrable)
    (clients / "_defaults.yaml").write_text(yaml.safe_dump(defaults))


def _one(results: Results, metadata_base: str, count: int, deferrable: bool) -> float:
    way = "deferred" if deferrable else "reschedule"
    print(f"waiting: {count} clients, {way}", flush=True)
    parts = urlsplit(metadata_base)
    metadata = fresh_database(urlunsplit(parts._replace(path=f"{parts.path}_wait")))
    with tempfile.TemporaryDirectory() as folder:
        _configure(Path(folder), count, deferrable)
        env = {
            "ETL_CLIENTS_DIR": f"{folder}/clients",
            "ETL_SQL_DIR": f"{folder}/sql",
            "ETL_DATA_ROOT": f"{folder}/landing",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "16",
            "AIRFLOW__CORE__PARALLELISM": "32",
        }
        with AirflowStack(Path(folder) / "airflow", metadata, env) as stack:
            stack.start("api-server", "scheduler", "dag-processor", "triggerer")
            waiting_states = ("deferred",) if deferrable else ("up_for_reschedule",)
            query = "SELECT count(*) FROM task_instance WHERE task_id = 'wait_for_files' AND state = ANY(%s)"
            stack.wait_for(
                f"{count} sensors waiting",
                lambda: stack.metadata(query, list(waiting_states))[0][0] >= count,
                1800,
                every=5,
            )
            groups = {s.pid for s in stack.services.values()}
            before, started = _cpu_seconds(groups), time.monotonic()
            time.sleep(WINDOW_S)
            used, elapsed = _cpu_seconds(groups) - before, time.monotonic() - started
    per_minute = used / elapsed * 60
    results.values[f"waiting_{count}_clients_{way}_cpu_s_per_min"] = round(per_minute, 2)
    results.line(f"waiting {count} clients, {way}, CPU s per minute", per_minute, count)
    return per_minute


def measure_waiting(results: Results, metadata_base: str, counts: tuple[int, int] = CLIENTS) -> None:
    """Both ways at both counts; the slope per client and its 1,000-client share."""
    low, high = counts
    for deferrable, way in ((False, "reschedule"), (True, "deferred")):
        at_low = _one(results, metadata_base, low, deferrable)
        at_high = _one(results, metadata_base, high, deferrable)
        per_client = max(at_high - at_low, 0.0) / (high - low)  # CPU s per minute per client
        results.values[f"waiting_cpu_s_per_min_per_client_{way}"] = round(per_client, 4)
        # 1,000 clients: CPU seconds per second of wall time = share of one core
        results.values[f"waiting_cpu_share_1000_clients_{way}"] = round(per_client * 1000 / 60, 3)
    deferred = results.values["waiting_cpu_share_1000_clients_deferred"]
    results.values["waiting_cpu_share_1000_clients"] = deferred
