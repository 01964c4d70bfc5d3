"""Retention (``include.etl.retention`` and the ``housekeeping`` DAG): a client's batches
older than its ``retention_days`` lose their files, Parquet, manifest, bronze child
tables, dead letters and log rows; an open batch, the latest good batch and every batch
inside the window keep everything, and a batch inside the window can still be
reprocessed. A dry run removes nothing and says what would go."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from include.etl.config import ClientConfig
from include.etl.ingest.landing import Landing
from include.etl.orchestration import tasks
from include.etl.retention import TOOLS_ROWS, purge_client
from tests.conftest import deliver_demo

OLD = "200 days"  # client1 keeps 90 (its retention_days, from _defaults.yaml)


def run_batch(client: str, mode: str = "start", batch_id: str | None = None) -> str:
    """One batch of client1, its file steps and close run as the DAG's tasks run them."""
    dag_run = f"retention-{uuid.uuid4().hex[:8]}"

    def ctx(task: str) -> tasks.RunContext:
        return tasks.RunContext(dag_run_id=dag_run, task_id=task)

    batch = tasks.open_batch(client, mode, batch_id, ctx("open_batch"))
    for logical in batch["files"]:
        parquet = tasks.convert(client, logical, batch, ctx(f"{logical}.convert"))
        tasks.validate_mapping(client, logical, batch, parquet, ctx(f"{logical}.validate_mapping"))
        tasks.validate_rows(client, logical, batch, parquet, ctx(f"{logical}.validate_rows"))
        tasks.load_bronze(client, logical, batch, parquet, ctx(f"{logical}.load_bronze"))
    tasks.close_batch(client, batch, [], ctx("close_batch"))
    return batch["batch_id"]


def age(conn: psycopg.Connection, batch_id: str, by: str = OLD) -> None:
    conn.execute(
        """UPDATE tools.batch SET ended_at = now() - %s::interval
           WHERE client_schema = 'client1' AND batch_id = %s""",
        (by, batch_id),
    )


def what_is_left(conn, landing: Landing, batch_id: str) -> dict[str, int]:
    """Everything a batch leaves behind: files of each kind, bronze tables, tools rows."""
    root = landing.root
    return {
        "raw": len(list(root.glob(f"raw/client1/*/*/*_{batch_id}.*"))),
        "parquet": len(list(root.glob(f"data/client1/*/*/*_{batch_id}.parquet"))),
        "manifests": len(list(root.glob(f"batch_info/client1/*/batch_output_client1_{batch_id}.json"))),
        "bronze_tables": conn.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'bronze_client1' AND tablename LIKE %s",
            (f"%__{batch_id.lower()}",),
        ).fetchone()[0],
        "rejected_rows": conn.execute(
            "SELECT count(*) FROM tools.rejected_rows WHERE client_schema = 'client1' AND batch_id = %s",
            (batch_id,),
        ).fetchone()[0],
        "job_log": conn.execute(
            "SELECT count(*) FROM tools.job_execution_log WHERE client_schema = 'client1' AND batch_id = %s",
            (batch_id,),
        ).fetchone()[0],
        "batch_row": conn.execute(
            "SELECT count(*) FROM tools.batch WHERE client_schema = 'client1' AND batch_id = %s", (batch_id,)
        ).fetchone()[0],
        "file_audit": conn.execute(
            "SELECT count(*) FROM tools.file_audit_log WHERE client_schema = 'client1' AND batch_id = %s",
            (batch_id,),
        ).fetchone()[0],
    }


def tools_rows(conn: psycopg.Connection, batch_id: str) -> int:
    """The batch's dead letters and log rows, every table retention purges."""
    return sum(
        conn.execute(
            f"SELECT count(*) FROM tools.{table} WHERE client_schema = 'client1' AND batch_id = %s",
            (batch_id,),
        ).fetchone()[0]
        for table in TOOLS_ROWS
    )


@pytest.fixture
def three_batches(cfg: ClientConfig, conn, landing: Landing, tmp_path: Path) -> list[str]:
    """Three closed batches of client1, the first two past the retention."""
    batches = []
    for n in range(3):
        deliver_demo("client1", landing, tmp_path / f"delivery{n}", rows=300)
        batches.append(run_batch("client1"))
    age(conn, batches[0])
    age(conn, batches[1])
    return batches


def test_a_dry_run_lists_what_would_go_and_removes_nothing(cfg, conn, landing, three_batches) -> None:
    before = {b: what_is_left(conn, landing, b) for b in three_batches}
    purged = purge_client(conn, cfg, landing, datetime.now(UTC), dry_run=True, dag_run_id="dry")

    assert [p.batch_id for p in purged] == three_batches[:2]
    assert {b: what_is_left(conn, landing, b) for b in three_batches} == before
    logged = conn.execute(
        """SELECT batch_id, kind, items, dry_run FROM tools.housekeeping_log
           WHERE dag_run_id = 'dry' ORDER BY batch_id, kind"""
    ).fetchall()
    old = before[three_batches[0]]
    assert [(k, n, d) for b, k, n, d in logged if b == three_batches[0]] == [
        ("bronze_tables", old["bronze_tables"], True),
        ("manifests", 1, True),
        ("parquet", old["parquet"], True),
        ("raw_files", old["raw"], True),
        ("tools_rows", tools_rows(conn, three_batches[0]), True),
    ]


def test_a_real_purge_removes_the_expired_batches_only(cfg, conn, landing, three_batches) -> None:
    kept = what_is_left(conn, landing, three_batches[2])
    bronze = conn.execute("SELECT count(*) FROM bronze_client1.crm_sales_details").fetchone()[0]

    purge_client(conn, cfg, landing, datetime.now(UTC), dry_run=False, dag_run_id="real")

    for expired in three_batches[:2]:
        assert what_is_left(conn, landing, expired) == {
            "raw": 0,
            "parquet": 0,
            "manifests": 0,
            "bronze_tables": 0,
            "rejected_rows": 0,
            "job_log": 0,
            "batch_row": 1,  # the batch's one-line history stays
            "file_audit": 6,
        }
    assert what_is_left(conn, landing, three_batches[2]) == kept
    assert kept["raw"] == 6 and kept["bronze_tables"] == 6
    assert conn.execute("SELECT count(*) FROM bronze_client1.crm_sales_details").fetchone()[0] < bronze
    bytes_freed = conn.execute(
        "SELECT sum(bytes) FROM tools.housekeeping_log WHERE dag_run_id = 'real' AND kind = 'raw_files'"
    ).fetchone()[0]
    assert bytes_freed > 0
    # A batch inside the window can still be reprocessed from its Parquet.
    assert run_batch("client1", "reprocessing", three_batches[2]) == three_batches[2]
    status = conn.execute(
        "SELECT status FROM tools.batch WHERE client_schema = 'client1' AND batch_id = %s",
        (three_batches[2],),
    ).fetchone()
    assert status == ("SUCCESS",)


def test_the_latest_good_batch_and_an_open_batch_are_kept_however_old(
    cfg, conn, landing, three_batches, tmp_path
) -> None:
    age(conn, three_batches[2])  # now all three are old: the latest SUCCESS still stays
    deliver_demo("client1", landing, tmp_path / "open", rows=300)
    opened = tasks.open_batch("client1", "start", None, tasks.RunContext("open-run", "open_batch"))
    age(conn, opened["batch_id"])  # open (RUNNING) and old

    purged = purge_client(conn, cfg, landing, datetime.now(UTC), dry_run=False)

    assert [p.batch_id for p in purged] == three_batches[:2]
    assert what_is_left(conn, landing, three_batches[2])["raw"] == 6
    assert len(list(landing.root.glob(f"raw/client1/*/incoming/*_{opened['batch_id']}.csv"))) == 6
