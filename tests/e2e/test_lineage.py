"""OpenLineage: a client1 run, with the provider's file transport configured, emits
events whose datasets connect each raw file to the gold table it feeds:
raw file -> Parquet -> bronze table -> silver table(s) -> gold table.

The run is `airflow dags test` in a process of its own, so the OpenLineage listener
reads the transport from the environment as it does in production.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

from include.etl.warehouse.migrations import migrate
from tests.conftest import deliver_demo, reset_client

# What each raw file of client1 feeds, as its analysts know it.
FEEDS = {
    "sales_details": "gold_client1.fact_sales",
    "cust_info": "gold_client1.dim_customers",
    "CUST_AZ12": "gold_client1.dim_customers",
    "LOC_A101": "gold_client1.dim_customers",
    "prd_info": "gold_client1.dim_products",
    "PX_CAT_G1V2": "gold_client1.dim_products",
}


def events(path: Path) -> list[dict]:
    """The COMPLETE events of the file transport's log."""
    return [e for line in path.read_text().splitlines() if (e := json.loads(line))["eventType"] == "COMPLETE"]


def graph(completed: list[dict]) -> dict[str, set[str]]:
    """Dataset -> the datasets a task wrote from it."""
    edges: dict[str, set[str]] = defaultdict(set)
    for event in completed:
        for source in event.get("inputs", []):
            for target in event.get("outputs", []):
                edges[source["name"]].add(target["name"])
    return edges


def reachable(edges: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in edges.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_a_client1_run_draws_each_raw_file_to_gold(clients, conn, landing, tmp_path):
    cfg = clients["client1"]
    reset_client(conn, cfg)
    migrate(conn, [cfg])
    deliver_demo("client1", landing, tmp_path / "generated", rows=300)
    log = tmp_path / "lineage.jsonl"
    env = {
        **os.environ,
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(
            {"type": "file", "log_file_path": str(log), "append": True}
        ),
        "AIRFLOW__OPENLINEAGE__NAMESPACE": "medallion",
    }
    done = subprocess.run(
        [sys.executable, "-m", "airflow", "dags", "test", "client1", "--conf", '{"mode": "start"}'],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    completed = events(log)
    jobs = {e["job"]["name"] for e in completed}
    assert {
        "client1.sales_details.convert",
        "client1.silver.crm_sales_details",
        "client1.gold.fact_sales",
    } <= jobs
    assert {e["job"]["namespace"] for e in completed} == {"medallion"}
    edges = graph(completed)
    raw = {
        logical: name
        for name in edges
        for logical in FEEDS
        if "/raw/client1/" in name and Path(name).name.startswith(f"{logical}_")
    }
    assert set(raw) == set(FEEDS)  # each of the six raw files is a dataset
    for logical, path in raw.items():
        database = conn.info.dbname
        downstream = {n.split(".", 1)[1] for n in reachable(edges, path) if n.startswith(f"{database}.")}
        assert FEEDS[logical] in downstream, f"{logical}: {sorted(downstream)}"
        assert "gold_client1.fact_sales" in downstream  # every file reaches the fact, through its dimension

    # The bronze load says how many rows it wrote: the rows the audit log counts.
    loaded = dict(
        conn.execute(
            """SELECT logical_source_file, loaded_rows FROM tools.file_audit_log
               WHERE client_schema = 'client1'"""
        ).fetchall()
    )
    (sales_load,) = [e for e in completed if e["job"]["name"] == "client1.sales_details.load_bronze"]
    (bronze,) = sales_load["outputs"]
    assert bronze["name"] == f"{conn.info.dbname}.bronze_client1.crm_sales_details"
    assert bronze["outputFacets"]["outputStatistics"]["rowCount"] == loaded["sales_details"]
