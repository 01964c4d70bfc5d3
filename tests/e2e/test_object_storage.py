"""The landing store on object storage: ``ETL_DATA_ROOT`` an ``s3://`` URL, the same code.

An S3 API server (moto in server mode, ``scripts/airflow_stack.s3_server``) runs on this
machine; the landing is reached over HTTP through Airflow's ``ObjectStoragePath`` and the
amazon provider's s3fs filesystem, as production reaches S3: connection ``landing_s3``
with an ``endpoint_url``. client1 runs end to end (the deferrable sensor looks at the
bucket, every file step reads and writes objects), then restart, reprocessing and
clearing each file step of a group, each ending with gold equal to the delivered files'
figures. The claim protocol (docs/object-storage.md) is shown by a claim interrupted
between its copy and its delete, and by two runs racing for one delivery.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import psycopg
import pytest

from include.etl import batches
from include.etl.config import config_for
from include.etl.ingest.landing import Landing, claimed_batch, claimed_name, listing, manifest_name
from include.etl.orchestration.connections import landing as landing_store
from include.etl.orchestration.factory import build_dag
from include.etl.warehouse.migrations import migrate
from scripts.airflow_stack import free_port, s3_server
from tests import expected_client1 as oracle
from tests.conftest import reset_client
from tests.e2e.airflow_runs import clear_and_resume
from tests.e2e.test_pipeline import assert_same_values

CFG = config_for("client1")
CONN_ID = "landing_s3"
BUCKET = "etl-landing"
FIRST_GROUP = sorted(t for t in build_dag(CFG).task_ids if t.startswith("cust_info."))


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Iterator[str]:
    """An S3 API server with an empty bucket; Airflow's ``landing_s3`` connection points at it.
    The credentials are the fake ones the server accepts."""
    logs = tmp_path_factory.mktemp("s3-server")
    port = free_port()
    server = s3_server(port, logs)
    endpoint = f"http://127.0.0.1:{port}"
    boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    ).create_bucket(Bucket=BUCKET)
    connection = {
        "conn_type": "aws",
        "login": "testing",
        "password": "testing",
        "extra": {"endpoint_url": endpoint, "region_name": "us-east-1"},
    }
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(connection))
        yield endpoint
    server.terminate()
    server.wait(timeout=10)


def upload(landing: Landing, client: str, files: Iterator[Path] | list[Path]) -> list[str]:
    """Deliver local files into the client's incoming folders on the store."""
    names = []
    for path in files:
        target = landing.raw(client, path.parent.name, "incoming") / path.name
        target.fs.put_file(str(path), target.path)  # type: ignore[attr-defined]
        names.append(f"{path.parent.name}/{path.name}")
    return names


def names(folder) -> list[str]:
    return [p.name for p in listing(folder)]


@pytest.fixture(scope="module")
def first_run(store: str, warehouse_url: str, tmp_path_factory):
    """client1's delivery uploaded to the bucket and run by its DAG, once settled."""
    from demo import generate

    generated = tmp_path_factory.mktemp("s3-generated")
    files = generate("client1", generated, rows=400)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ETL_DATA_ROOT", f"s3://{CONN_ID}@{BUCKET}/run")
        landing = landing_store()
        assert landing.remote
        with psycopg.connect(os.environ["WAREHOUSE_DSN"], autocommit=True) as conn:
            reset_client(conn, CFG)
            migrate(conn, [CFG])
            delivered = upload(landing, "client1", files)
            uploaded_at = time.time()
            # settle time on the store: an object written just now is not claimed yet
            arriving = landing.incomplete(CFG, CFG.sensor.settle_seconds)
            assert sorted(a.split(" is still being written")[0] for a in arriving) == sorted(delivered)
            time.sleep(max(CFG.sensor.settle_seconds + 1 - (time.time() - uploaded_at), 0))
            assert landing.incomplete(CFG, CFG.sensor.settle_seconds) == []

            dag = build_dag(CFG)
            run = dag.test(run_conf={"mode": "start"})
            assert run.state == "success"
            yield dag, run.run_id, landing, conn, oracle.expected_values(generated), generated


def test_client1_runs_end_to_end_on_object_storage(first_run) -> None:
    _, _, landing, conn, expected, generated = first_run
    assert_same_values(oracle.gold_values(conn), expected)
    assert conn.execute(
        "SELECT batch_id, status FROM tools.batch WHERE client_schema = 'client1'"
    ).fetchall() == [("BATCH000001", "SUCCESS")]
    for system in ("crm", "erp"):
        delivered = sorted(p.name for p in (generated / system).iterdir())
        assert names(landing.raw("client1", system, "incoming")) == []
        assert names(landing.raw("client1", system, "archive")) == sorted(
            claimed_name(n, "BATCH000001") for n in delivered
        )
        assert len(names(landing.data("client1", system, "archive"))) == len(delivered)
    manifest = landing.batch_info("client1", "success") / manifest_name("client1", "BATCH000001")
    assert json.loads(manifest.read_text())["status"] == "SUCCESS"
    assert names(landing.batch_info("client1", "incoming")) == []


@pytest.mark.parametrize("mode", ["restart", "reprocessing"])
def test_run_modes_on_object_storage(first_run, mode: str) -> None:
    _, _, _, conn, expected, _ = first_run
    # a DAG of its own: dag.test keeps a run's conf in the DAG's params
    run = build_dag(CFG).test(run_conf={"mode": mode, "batch_id": "BATCH000001"})
    assert run.state == "success"
    assert_same_values(oracle.gold_values(conn), expected)
    assert conn.execute(
        "SELECT count(*), min(status) FROM tools.batch WHERE client_schema = 'client1'"
    ).fetchone() == (1, "SUCCESS")
    converted = conn.execute(
        """SELECT rows_processed, message FROM tools.job_execution_log
           WHERE client_schema = 'client1' AND dag_run_id = %s AND task_id = 'cust_info.convert'""",
        (run.run_id,),
    ).fetchall()
    if mode == "reprocessing":  # the batch's Parquet read again from the store
        assert converted[0][1].startswith("reprocessing: reusing s3://")
    else:  # the archived raw object converted again
        assert converted[0][0] > 0 and converted[0][1] is None


@pytest.mark.parametrize("task_id", ["open_batch", *FIRST_GROUP])
def test_clearing_a_file_step_on_object_storage(first_run, task_id: str) -> None:
    dag, run_id, landing, conn, expected, _ = first_run
    rerun = clear_and_resume(dag, run_id, task_id)
    assert rerun.state == "success"
    assert_same_values(oracle.gold_values(conn), expected)
    assert names(landing.raw("client1", "crm", "incoming")) == []
    assert "cust_info_BATCH000001.csv" in names(landing.raw("client1", "crm", "archive"))


def test_a_claim_cut_between_copy_and_delete_is_finished_by_the_next_open(first_run) -> None:
    """The copy of cust_info to its claimed name was made, the delete of the original was
    not, and the batch's transaction never committed: the next open (given the same
    number) takes the copy and deletes the original, so no later batch claims it again."""
    _, _, landing, conn, _, generated = first_run
    upload(landing, "client1", [p for s in ("crm", "erp") for p in sorted((generated / s).iterdir())])
    (number,) = conn.execute(
        "SELECT last_batch_id FROM tools.client_reference WHERE client_schema = 'client1'"
    ).fetchone()
    batch_id = f"BATCH{number + 1:06d}"
    incoming = landing.raw("client1", "crm", "incoming")
    original = incoming / "cust_info.csv"
    original.fs.copy(original.path, (incoming / claimed_name("cust_info.csv", batch_id)).path)

    opened = batches.open_batch(conn, CFG, landing, "cut-claim", "start", settle_seconds=0)

    assert opened.batch_id == batch_id
    assert opened.files["cust_info"] == claimed_name("cust_info.csv", batch_id)
    assert names(incoming) == sorted(
        claimed_name(n, batch_id) for n in ("cust_info.csv", "prd_info.csv", "sales_details.csv")
    )


def test_two_runs_racing_for_one_delivery_claim_each_object_once(first_run) -> None:
    """Two DAG runs open a batch at the same moment on the same objects: one claims every
    file, the other is refused (the client is busy) and claims none."""
    _, _, landing, _, _, generated = first_run
    for state_folder in ("crm", "erp"):  # clear what the previous test left in incoming
        for path in listing(landing.raw("client1", state_folder, "incoming")):
            path.unlink()
    upload(landing, "client1", [p for s in ("crm", "erp") for p in sorted((generated / s).iterdir())])
    outcome: dict[str, object] = {}
    start = threading.Barrier(2)

    def race(run_id: str) -> None:
        with psycopg.connect(os.environ["WAREHOUSE_DSN"], autocommit=True) as own:
            start.wait()
            try:
                outcome[run_id] = batches.open_batch(
                    own,
                    CFG,
                    landing,
                    run_id,
                    "start",
                    run_is_active=lambda holder: holder.startswith("race"),
                    settle_seconds=0,
                )
            except batches.BatchError as exc:
                outcome[run_id] = exc

    threads = [threading.Thread(target=race, args=(f"race-{i}",)) for i in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)

    won = [o for o in outcome.values() if isinstance(o, batches.Batch)]
    refused = [o for o in outcome.values() if isinstance(o, batches.BatchError)]
    assert len(won) == 1 and len(refused) == 1, outcome
    assert "is still working on" in str(refused[0])
    winner = won[0].batch_id
    for system in ("crm", "erp"):
        left = names(landing.raw("client1", system, "incoming"))
        assert left and all(claimed_batch(n) == winner for n in left), left
