"""Two clients run at the same time without touching each other's schemas or files.

Each client's DAG runs in its own process (as two workers would run them), at once,
each from its own landing root. Both must succeed with exactly their own expected
counts, and neither client's folders may hold the other's files.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import psycopg

from include.etl.ingest.landing import Landing
from include.etl.warehouse.migrations import migrate
from tests.conftest import deliver_demo, reset_client
from tests.e2e.test_pipeline import count

RUN = """
import sys
from include.etl.config import config_for
from include.etl.orchestration.factory import build_dag
run = build_dag(config_for(sys.argv[1])).test(run_conf={"mode": "start"})
print("STATE", run.state)
"""


def test_two_clients_at_the_same_time(clients, conn: psycopg.Connection, tmp_path: Path) -> None:
    landing = Landing(tmp_path / "landing")
    expected = {}
    for client in ("client1", "client2"):
        cfg = clients[client]
        reset_client(conn, cfg)
        migrate(conn, [cfg])
        generated = tmp_path / "generated" / client
        deliver_demo(client, landing, generated, rows=1500)
        expected[client] = importlib.import_module(f"tests.expected_{client}").expected_counts(generated)

    env = {
        **os.environ,
        "ETL_DATA_ROOT": str(landing.root),
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
    }
    runs = {
        client: subprocess.Popen(
            [sys.executable, "-c", RUN, client], env=env, stdout=subprocess.PIPE, text=True
        )
        for client in ("client1", "client2")
    }
    outputs = {client: proc.communicate(timeout=600)[0] for client, proc in runs.items()}

    for client, out in outputs.items():
        assert "STATE success" in out, (client, out[-2000:])
        cfg = clients[client]
        batch = conn.execute(
            "SELECT batch_id, status FROM tools.batch WHERE client_schema = %s", (client,)
        ).fetchall()
        assert batch == [("BATCH000001", "SUCCESS")]
        for _, spec in cfg.files:
            bronze = count(conn, cfg.bronze_schema, spec.bronze_table, "BATCH000001")
            assert bronze == expected[client][f"bronze.{spec.bronze_table}"], spec.name
        for step in cfg.gold:
            assert count(conn, cfg.gold_schema, step.table) == expected[client][f"gold.{step.table}"]
        other = "client2" if client == "client1" else "client1"
        names = {p.name for p in (landing.root / "raw" / client).rglob("*") if p.is_file()}
        assert names and not any(f.name in n for _, f in clients[other].files for n in names)
    spans = dict(
        conn.execute(
            """SELECT client_schema, tstzrange(started_at, ended_at) FROM tools.batch
               WHERE client_schema IN ('client1', 'client2')"""
        ).fetchall()
    )
    overlap = conn.execute("SELECT %s::tstzrange && %s::tstzrange", (spans["client1"], spans["client2"]))
    assert overlap.fetchone()[0], f"the two runs did not overlap: {spans}"
