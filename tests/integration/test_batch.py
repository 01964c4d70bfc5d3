"""Batches on the real PostgreSQL and a landing folder: opening (claim, manifest, tools rows),
idempotent re-opening by the same DAG run, and closing (archive, manifest state, status)."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from include.etl.batches import BatchError, close_batch, open_batch
from include.etl.config import ClientConfig, config_from
from include.etl.ingest.landing import Landing, manifest_name, move
from include.etl.warehouse import audit
from include.etl.warehouse.migrations import migrate
from tests.conftest import complete, reset_client

MANIFEST_KEYS = {
    "client_schema",
    "batch_id",
    "dag_run_id",
    "mode",
    "delivery_date",
    "config_version",
    "status",
    "created_at",
    "files",
    "transformation_steps",
    "integration_steps",
    "refresh_views",
}
FILE_KEYS = {
    "logical_source_file",
    "source_system",
    "source_type",
    "physical_file_name",
    "parquet_name",
    "target_schema",
    "target_table",
    "required",
}


def deliver(
    landing: Landing, cfg: ClientConfig, stamp: str = "", skip: tuple[str, ...] = ()
) -> dict[str, Path]:
    """One small CSV per logical file (header from the config), in its incoming folder."""
    delivered = {}
    for system, f in cfg.files:
        if f.name in skip:
            continue
        folder = landing.raw(cfg.client, system.name, "incoming")
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{f.name}{'_' + stamp if stamp else ''}.csv"
        header = ",".join(c.source for c in f.columns)
        path.write_text(f"{header}\n{','.join(['1'] * len(f.columns))}\n", encoding="utf-8")
        complete(path)
        delivered[f.name] = path
    return delivered


def scalar(conn: psycopg.Connection, query: str, *params: object) -> object:
    return conn.execute(query, params).fetchone()[0]


def raw_names(landing: Landing, cfg: ClientConfig, state: str) -> set[str]:
    names: set[str] = set()
    for system in cfg.sources:
        folder = landing.raw(cfg.client, system.name, state)
        if folder.is_dir():
            names |= {p.name for p in folder.iterdir()}
    return names


def expected_files(cfg: ClientConfig, batch_id: str, stamp: str = "") -> dict[str, str]:
    return {f.name: f"{f.name}{'_' + stamp if stamp else ''}_{batch_id}.csv" for _, f in cfg.files}


# ------------------------------------------------------------------ open
def test_open_batch_claims_files_and_records_the_batch(
    conn: psycopg.Connection, cfg: ClientConfig, landing: Landing
) -> None:
    delivered = deliver(landing, cfg)
    sizes = {name: path.stat().st_size for name, path in delivered.items()}
    batch = open_batch(conn, cfg, landing, "manual__2026-01-01T00:00:00")

    assert batch.client == "client1"
    assert batch.batch_id == "BATCH000001"
    assert batch.files == expected_files(cfg, "BATCH000001")
    # Claimed by renaming, still in incoming; nothing else moved.
    assert raw_names(landing, cfg, "incoming") == set(batch.files.values())
    assert not any(p.exists() for p in delivered.values())
    assert raw_names(landing, cfg, "success") == raw_names(landing, cfg, "archive") == set()

    manifest_path = landing.batch_info("client1", "incoming") / manifest_name("client1", "BATCH000001")
    assert batch.manifest_path == str(manifest_path)
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    assert set(manifest) == MANIFEST_KEYS
    assert manifest["client_schema"] == "client1"
    assert manifest["batch_id"] == "BATCH000001"
    assert manifest["dag_run_id"] == "manual__2026-01-01T00:00:00"
    assert manifest["mode"] == "start"
    assert manifest["status"] == "RUNNING"
    assert manifest["config_version"] == cfg.config_version
    assert manifest["transformation_steps"] == [s.sql for s in cfg.silver]
    assert manifest["integration_steps"] == [
        "gold/dim_customers.sql",
        "gold/dim_products.sql",
        "gold/fact_sales.sql",
    ]
    assert manifest["refresh_views"] == [
        "gold_client1.mv_monthly_sales_by_product_line",
        "gold_client1.mv_customer_lifetime_value",
    ]
    assert [e["logical_source_file"] for e in manifest["files"]] == [f.name for _, f in cfg.files]
    for entry in manifest["files"]:
        assert set(entry) == FILE_KEYS
    assert manifest["files"][0] == {
        "logical_source_file": "cust_info",
        "source_system": "crm",
        "source_type": "csv",
        "physical_file_name": "cust_info_BATCH000001.csv",
        "parquet_name": "cust_info_BATCH000001.parquet",
        "target_schema": "bronze_client1",
        "target_table": "crm_cust_info",
        "required": True,
    }

    batch_row = conn.execute(
        """SELECT status, mode, config_version, manifest_path, ended_at FROM tools.batch
           WHERE client_schema = 'client1'"""
    ).fetchall()
    assert batch_row == [("RUNNING", "start", cfg.config_version, str(manifest_path), None)]
    runs = conn.execute(
        "SELECT dag_run_id, batch_id, mode FROM tools.batch_run WHERE client_schema = 'client1'"
    )
    assert runs.fetchall() == [("manual__2026-01-01T00:00:00", "BATCH000001", "start")]
    assert (
        scalar(conn, "SELECT last_batch_id FROM tools.client_reference WHERE client_schema = 'client1'") == 1
    )
    audit_rows = conn.execute(
        """SELECT logical_source_file, source_system, physical_file_name, parquet_name, file_size_bytes,
                  convert_status, load_status
           FROM tools.file_audit_log WHERE client_schema = 'client1' AND batch_id = 'BATCH000001'"""
    ).fetchall()
    assert sorted(audit_rows) == sorted(
        (
            f.name,
            system.name,
            f"{f.name}_BATCH000001.csv",
            f"{f.name}_BATCH000001.parquet",
            sizes[f.name],
            None,
            None,
        )
        for system, f in cfg.files
    )


def test_open_batch_again_for_the_same_run_reuses_the_batch(
    conn: psycopg.Connection, cfg: ClientConfig, landing: Landing
) -> None:
    deliver(landing, cfg)
    first = open_batch(conn, cfg, landing, "run-1")
    # The run went on: some files converted (success), one already archived; new files arrive.
    move(
        landing.raw("client1", "crm", "incoming") / first.files["cust_info"],
        landing.raw("client1", "crm", "success"),
    )
    move(
        landing.raw("client1", "erp", "incoming") / first.files["CUST_AZ12"],
        landing.raw("client1", "erp", "success"),
    )
    move(
        landing.raw("client1", "crm", "incoming") / first.files["prd_info"],
        landing.raw("client1", "crm", "archive"),
    )
    newer = deliver(landing, cfg, stamp="20260102")

    again = open_batch(conn, cfg, landing, "run-1")
    assert again.batch_id == first.batch_id == "BATCH000001"
    assert again.files == first.files
    assert again.manifest_path == first.manifest_path
    assert all(p.exists() for p in newer.values())  # not claimed by the re-run
    assert scalar(conn, "SELECT count(*) FROM tools.batch WHERE client_schema = 'client1'") == 1
    assert scalar(conn, "SELECT count(*) FROM tools.batch_run WHERE client_schema = 'client1'") == 1
    assert (
        scalar(conn, "SELECT last_batch_id FROM tools.client_reference WHERE client_schema = 'client1'") == 1
    )
    assert scalar(conn, "SELECT count(*) FROM tools.file_audit_log WHERE client_schema = 'client1'") == 6
    audit_names = conn.execute(
        "SELECT physical_file_name FROM tools.file_audit_log WHERE client_schema = 'client1'"
    ).fetchall()
    assert {n for (n,) in audit_names} == set(first.files.values())
    manifests = list(landing.batch_info("client1", "incoming").iterdir())
    assert [p.name for p in manifests] == [manifest_name("client1", "BATCH000001")]
    manifest = json.loads(manifests[0].read_text(encoding="utf-8"))
    assert {e["logical_source_file"]: e["physical_file_name"] for e in manifest["files"]} == first.files


def test_a_different_run_gets_the_next_batch(
    conn: psycopg.Connection, cfg: ClientConfig, landing: Landing
) -> None:
    deliver(landing, cfg)
    first = open_batch(conn, cfg, landing, "run-1")
    deliver(landing, cfg, stamp="20260102")
    ended = lambda run_id: False  # noqa: E731 - run-1 is no longer active in Airflow
    second = open_batch(conn, cfg, landing, "run-2", mode="start", run_is_active=ended)
    assert second.batch_id == "BATCH000002"
    assert second.files == expected_files(cfg, "BATCH000002", stamp="20260102")
    assert raw_names(landing, cfg, "incoming") == set(first.files.values()) | set(second.files.values())
    runs = conn.execute(
        "SELECT dag_run_id, batch_id FROM tools.batch_run WHERE client_schema = 'client1' ORDER BY batch_id"
    ).fetchall()
    assert runs == [("run-1", "BATCH000001"), ("run-2", "BATCH000002")]
    assert (landing.batch_info("client1", "incoming") / manifest_name("client1", "BATCH000002")).is_file()
    assert scalar(conn, "SELECT count(*) FROM tools.file_audit_log WHERE client_schema = 'client1'") == 12


def test_required_file_missing_allocates_no_batch(
    conn: psycopg.Connection, cfg: ClientConfig, landing: Landing
) -> None:
    delivered = deliver(landing, cfg, skip=("cust_info", "LOC_A101"))
    with pytest.raises(BatchError) as info:
        open_batch(conn, cfg, landing, "run-1")
    message = str(info.value)
    assert message.startswith("client1: required file(s) missing in incoming:")
    assert "crm/cust_info" in message and "erp/LOC_A101" in message
    assert "prd_info" not in message
    assert (
        scalar(conn, "SELECT last_batch_id FROM tools.client_reference WHERE client_schema = 'client1'") == 0
    )
    assert scalar(conn, "SELECT count(*) FROM tools.batch WHERE client_schema = 'client1'") == 0
    assert scalar(conn, "SELECT count(*) FROM tools.batch_run WHERE client_schema = 'client1'") == 0
    assert scalar(conn, "SELECT count(*) FROM tools.file_audit_log WHERE client_schema = 'client1'") == 0
    assert all(p.exists() for p in delivered.values())  # nothing claimed
    assert list(landing.batch_info("client1", "incoming").iterdir()) == []
    # Once the files arrive, the same run opens the first batch.
    deliver(landing, cfg)
    batch = open_batch(conn, cfg, landing, "run-1")
    assert batch.batch_id == "BATCH000001"
    assert batch.files["cust_info"] == "cust_info_BATCH000001.csv"


def test_a_file_claimed_by_an_open_that_never_committed_goes_to_the_batch_given_its_number(
    conn: psycopg.Connection, cfg: ClientConfig, landing: Landing
) -> None:
    """An open renamed cust_info.csv to its claimed name and died before its transaction
    committed: BATCH000001 was never recorded and is given out again, and takes the file
    (no longer a delivery any pattern would claim) instead of calling it missing."""
    delivered = deliver(landing, cfg)
    cut = delivered["cust_info"]
    cut.rename(cut.with_name("cust_info_BATCH000001.csv"))
    batch = open_batch(conn, cfg, landing, "run-after-crash")
    assert batch.batch_id == "BATCH000001"
    assert batch.files == expected_files(cfg, "BATCH000001")
    assert raw_names(landing, cfg, "incoming") == set(batch.files.values())


def test_two_candidates_for_one_file(conn: psycopg.Connection, cfg: ClientConfig, landing: Landing) -> None:
    deliver(landing, cfg, stamp="20260101")
    incoming = landing.raw("client1", "crm", "incoming")
    (incoming / "cust_info_20260102.csv").write_text("cst_id\n2\n", encoding="utf-8")
    first = open_batch(conn, cfg, landing, "run-1")
    assert first.files["cust_info"] == "cust_info_20260101_BATCH000001.csv"
    assert (incoming / "cust_info_20260102.csv").is_file()  # left for the next batch

    deliver(landing, cfg, stamp="20260102", skip=("cust_info",))
    second = open_batch(conn, cfg, landing, "run-2", run_is_active=lambda run_id: False)
    assert second.batch_id == "BATCH000002"
    assert second.files["cust_info"] == "cust_info_20260102_BATCH000002.csv"
    assert not (incoming / "cust_info_20260102.csv").exists()


def test_optional_file_not_delivered(conn: psycopg.Connection, clients, landing: Landing) -> None:
    cfg = clients["client2"]
    reset_client(conn, cfg)
    migrate(conn, [cfg])
    names = {"invoices": "invoices.xlsx", "accounts": "accounts.json", "usage_events": "usage_events.jsonl"}
    for system, f in cfg.files:
        if f.name in names:
            folder = landing.raw("client2", system.name, "incoming")
            folder.mkdir(parents=True, exist_ok=True)
            (folder / names[f.name]).write_bytes(b"not read by open_batch")
    batch = open_batch(conn, cfg, landing, "run-1")
    assert batch.files["plans"] is None
    assert batch.files["invoices"] == "invoices_BATCH000001.xlsx"
    manifest = json.loads(Path(batch.manifest_path).read_text(encoding="utf-8"))
    plans = next(e for e in manifest["files"] if e["logical_source_file"] == "plans")
    assert (plans["physical_file_name"], plans["parquet_name"], plans["required"]) == (None, None, False)
    audit_row = conn.execute(
        """SELECT physical_file_name, parquet_name, file_size_bytes FROM tools.file_audit_log
           WHERE client_schema = 'client2' AND batch_id = 'BATCH000001' AND logical_source_file = 'plans'"""
    ).fetchall()
    assert audit_row == [(None, None, None)]
    reset_client(conn, cfg)


# ------------------------------------------------------------------ close
def test_close_batch_success(conn: psycopg.Connection, cfg: ClientConfig, landing: Landing) -> None:
    deliver(landing, cfg)
    batch = open_batch(conn, cfg, landing, "run-1")
    # As convert would: most raw files in success, one still in incoming.
    for system, f in cfg.files:
        if f.name != "PX_CAT_G1V2":
            move(
                landing.raw("client1", system.name, "incoming") / batch.files[f.name],
                landing.raw("client1", system.name, "success"),
            )
    audit.file_audit(
        conn,
        "client1",
        batch.batch_id,
        "cust_info",
        convert_status="SUCCESS",
        load_status="SUCCESS",
        loaded_rows=1,
        rejected_rows=0,
    )
    status = close_batch(conn, cfg, landing, batch.batch_id, [])
    assert status == "SUCCESS"
    assert raw_names(landing, cfg, "archive") == set(batch.files.values())
    assert raw_names(landing, cfg, "incoming") == raw_names(landing, cfg, "success") == set()

    final = landing.batch_info("client1", "success") / manifest_name("client1", batch.batch_id)
    assert not Path(batch.manifest_path).exists()
    assert list(landing.batch_info("client1", "incoming").iterdir()) == []
    manifest = json.loads(final.read_text(encoding="utf-8"))
    assert manifest["status"] == "SUCCESS"
    assert manifest["message"] is None
    assert manifest["closed_at"]
    cust = manifest["files"][0]
    assert (cust["convert_status"], cust["load_status"], cust["loaded_rows"], cust["rejected_rows"]) == (
        "SUCCESS",
        "SUCCESS",
        1,
        0,
    )
    assert manifest["files"][1]["convert_status"] is None
    row = conn.execute(
        """SELECT status, message, manifest_path, ended_at IS NOT NULL FROM tools.batch
           WHERE client_schema = 'client1' AND batch_id = %s""",
        (batch.batch_id,),
    ).fetchone()
    assert row == ("SUCCESS", None, str(final), True)


def test_close_batch_with_failed_tasks(conn: psycopg.Connection, cfg: ClientConfig, landing: Landing) -> None:
    deliver(landing, cfg)
    batch = open_batch(conn, cfg, landing, "run-1")
    move(
        landing.raw("client1", "crm", "incoming") / batch.files["cust_info"],
        landing.raw("client1", "crm", "failed"),
    )
    move(
        landing.raw("client1", "crm", "incoming") / batch.files["prd_info"],
        landing.raw("client1", "crm", "success"),
    )
    failed = ["cust_info.convert", "silver.crm_cust_info"]
    status = close_batch(conn, cfg, landing, batch.batch_id, failed)
    assert status == "FAILED"
    # Raw files stay where they are, ready for a restart of the batch.
    assert raw_names(landing, cfg, "failed") == {batch.files["cust_info"]}
    assert raw_names(landing, cfg, "success") == {batch.files["prd_info"]}
    assert len(raw_names(landing, cfg, "incoming")) == 4
    assert raw_names(landing, cfg, "archive") == set()

    final = landing.batch_info("client1", "failed") / manifest_name("client1", batch.batch_id)
    manifest = json.loads(final.read_text(encoding="utf-8"))
    assert manifest["status"] == "FAILED"
    assert manifest["message"] == "failed tasks: cust_info.convert, silver.crm_cust_info"
    assert list(landing.batch_info("client1", "incoming").iterdir()) == []
    row = conn.execute(
        """SELECT status, message, manifest_path FROM tools.batch
           WHERE client_schema = 'client1' AND batch_id = %s""",
        (batch.batch_id,),
    ).fetchone()
    assert row == ("FAILED", "failed tasks: cust_info.convert, silver.crm_cust_info", str(final))


def test_close_batch_twice_is_safe(conn: psycopg.Connection, cfg: ClientConfig, landing: Landing) -> None:
    deliver(landing, cfg)
    batch = open_batch(conn, cfg, landing, "run-1")
    assert close_batch(conn, cfg, landing, batch.batch_id, []) == "SUCCESS"
    assert close_batch(conn, cfg, landing, batch.batch_id, []) == "SUCCESS"
    assert raw_names(landing, cfg, "archive") == set(batch.files.values())
    assert [p.name for p in landing.batch_info("client1", "success").iterdir()] == [
        manifest_name("client1", batch.batch_id)
    ]


def test_close_batch_without_a_manifest(
    conn: psycopg.Connection, cfg: ClientConfig, landing: Landing
) -> None:
    with pytest.raises(BatchError, match="BATCH000009: manifest not found"):
        close_batch(conn, cfg, landing, "BATCH000009", [])


# ------------------------------------------------------------------ bug: extensionless names
def test_reopen_finds_a_claimed_file_without_extension(conn: psycopg.Connection, landing: Landing) -> None:
    cfg = config_from(
        {
            "client": "zz_noext",
            "display_name": "No extension",
            "owner": "test",
            "sources": [
                {
                    "name": "app",
                    "files": [
                        {
                            "name": "export",
                            "pattern": r"export_\d{8}",
                            "type": "csv",
                            "bronze_table": "app_export",
                            "columns": [{"source": "id"}],
                        }
                    ],
                }
            ],
        }
    )
    reset_client(conn, cfg)
    migrate(conn, [cfg])
    folder = landing.raw("zz_noext", "app", "incoming")
    folder.mkdir(parents=True)
    (folder / "export_20260101").write_text("id\n1\n", encoding="utf-8")
    try:
        first = open_batch(conn, cfg, landing, "run-1")
        assert first.files == {"export": "export_20260101_BATCH000001"}
        again = open_batch(conn, cfg, landing, "run-1")
        assert again.files == first.files
    finally:
        reset_client(conn, cfg)


# ------------------------------------------------------------------ run modes
@pytest.mark.parametrize(
    ("mode", "batch_id", "message"),
    [
        ("start", "BATCH000001", "mode start opens a new batch: leave batch_id empty"),
        ("restart", "batch1", "'batch1' is not a batch id (BATCH and six digits"),
        ("reprocessing", "BATCH00001'; drop table x", "is not a batch id"),
        ("restart", "BATCH000042", "BATCH000042 is not a batch of client1"),
        ("rerun", None, "unknown run mode 'rerun'"),
    ],
)
def test_a_wrong_mode_and_batch_combination_fails_at_once(
    conn, cfg, landing: Landing, mode: str, batch_id: str | None, message: str
) -> None:
    deliver(landing, cfg)
    with pytest.raises(BatchError, match=message.replace("(", r"\(")):
        open_batch(conn, cfg, landing, "run-x", mode, batch_id)
    assert scalar(conn, "SELECT count(*) FROM tools.batch_run WHERE client_schema = %s", cfg.client) == 0


def test_restart_without_a_failed_batch_says_so(conn, cfg, landing: Landing) -> None:
    deliver(landing, cfg)
    open_batch(conn, cfg, landing, "run-1")
    close_batch(conn, cfg, landing, "BATCH000001", [])
    with pytest.raises(BatchError, match="client1: no failed batch to restart; give the batch_id"):
        open_batch(conn, cfg, landing, "run-2", "restart")


def test_a_batch_id_of_another_client_is_refused(conn, cfg, clients, landing: Landing) -> None:
    other = clients["client2"]
    reset_client(conn, other)
    migrate(conn, [other])
    deliver(landing, cfg)
    open_batch(conn, cfg, landing, "run-1")
    close_batch(conn, cfg, landing, "BATCH000001", ["cust_info.convert"])
    with pytest.raises(BatchError, match="BATCH000001 is not a batch of client2"):
        open_batch(conn, other, landing, "run-2", "reprocessing", "BATCH000001")
    reset_client(conn, other)


def test_restart_defaults_to_the_latest_failed_batch_and_claims_no_new_file(
    conn, cfg, landing: Landing
) -> None:
    deliver(landing, cfg)
    first = open_batch(conn, cfg, landing, "run-1")
    close_batch(conn, cfg, landing, first.batch_id, ["cust_info.convert"])
    new_delivery = deliver(landing, cfg, stamp="20260102")  # tomorrow's files, already there

    again = open_batch(conn, cfg, landing, "run-2", "restart")

    assert again.batch_id == first.batch_id and again.mode == "restart"
    assert again.files == first.files
    assert all(path.exists() for path in new_delivery.values())  # left for the next batch
    status = conn.execute(
        "SELECT status, ended_at FROM tools.batch WHERE client_schema = %s AND batch_id = %s",
        (cfg.client, first.batch_id),
    ).fetchone()
    assert status == ("RUNNING", None)


def test_reprocessing_needs_the_batch_parquet(conn, cfg, landing: Landing) -> None:
    deliver(landing, cfg)
    opened = open_batch(conn, cfg, landing, "run-1")
    close_batch(conn, cfg, landing, opened.batch_id, ["cust_info.convert"])
    with pytest.raises(BatchError, match=r"cannot reprocess client1 BATCH000001: no Parquet for cust_info, "):
        open_batch(conn, cfg, landing, "run-2", "reprocessing")
    # The refused run changed nothing: the batch is still FAILED and run-2 owns nothing.
    status = "SELECT status FROM tools.batch WHERE client_schema = 'client1' AND batch_id = 'BATCH000001'"
    assert scalar(conn, status) == "FAILED"
    assert scalar(conn, "SELECT count(*) FROM tools.batch_run WHERE dag_run_id = 'run-2'") == 0

    for system, f in cfg.files:  # once every file has its Parquet, reprocessing opens
        folder = landing.data(cfg.client, system.name, "archive")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / opened.files[f.name].replace(".csv", ".parquet")).write_bytes(b"PAR1")
    again = open_batch(conn, cfg, landing, "run-3", "reprocessing")
    assert again.batch_id == opened.batch_id and again.mode == "reprocessing"


# ------------------------------------------------------------------ review fixes
def test_two_runs_opening_at_once_never_split_a_delivery(conn, cfg, landing: Landing, warehouse_url) -> None:
    import threading

    deliver(landing, cfg)
    outcomes: dict[str, object] = {}

    def open_in(run_id: str) -> None:
        with psycopg.connect(warehouse_url.replace("postgres://", "postgresql://"), autocommit=True) as c:
            try:
                outcomes[run_id] = open_batch(c, cfg, landing, run_id)
            except BatchError as exc:
                outcomes[run_id] = exc

    threads = [threading.Thread(target=open_in, args=(f"run-{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    opened = [o for o in outcomes.values() if not isinstance(o, BatchError)]
    refused = [o for o in outcomes.values() if isinstance(o, BatchError)]
    assert len(opened) == 1 and len(refused) == 1
    assert str(refused[0]).startswith("client1 is busy: DAG run run-")
    assert all(name is not None for name in opened[0].files.values())
    assert scalar(conn, "SELECT count(*) FROM tools.batch WHERE client_schema = %s", cfg.client) == 1


def test_reopening_a_closed_run_claims_nothing_new_and_reopens_its_manifest(
    conn, cfg, landing: Landing
) -> None:
    deliver(landing, cfg, skip=("PX_CAT_G1V2",))
    cfg_optional = cfg.model_copy(deep=True)  # PX_CAT_G1V2 is required in client1: relax it here
    _, spec = cfg_optional.file("PX_CAT_G1V2")
    object.__setattr__(spec, "required", False)
    first = open_batch(conn, cfg_optional, landing, "run-1")
    close_batch(conn, cfg_optional, landing, first.batch_id, [])
    late = deliver(landing, cfg, stamp="20260102")["PX_CAT_G1V2"]  # arrives after the close

    again = open_batch(conn, cfg_optional, landing, "run-1")  # an operator clears open_batch

    assert again.files == first.files and again.files["PX_CAT_G1V2"] is None
    assert late.exists()  # left for the next batch
    assert (landing.batch_info(cfg.client, "incoming") / manifest_name(cfg.client, "BATCH000001")).exists()
    assert list(landing.batch_info(cfg.client, "success").iterdir()) == []
    status = "SELECT status FROM tools.batch WHERE client_schema = 'client1' AND batch_id = 'BATCH000001'"
    assert scalar(conn, status) == "RUNNING"


# ------------------------------------------------------------------ one active run per client
def test_a_second_run_of_a_busy_client_is_refused_until_the_first_closes(conn, cfg, landing: Landing) -> None:
    deliver(landing, cfg)
    first = open_batch(conn, cfg, landing, "run-1")
    deliver(landing, cfg, stamp="20260102")

    with pytest.raises(BatchError) as refused:  # forced through Airflow's max_active_runs
        open_batch(conn, cfg, landing, "run-2", run_is_active=lambda run_id: run_id == "run-1")
    assert str(refused.value) == (
        "client1 is busy: DAG run run-1 is still working on BATCH000001; "
        "this run stops here, trigger it again once that run has finished"
    )
    assert scalar(conn, "SELECT count(*) FROM tools.batch WHERE client_schema = 'client1'") == 1

    close_batch(conn, cfg, landing, first.batch_id, [], "run-1")
    second = open_batch(conn, cfg, landing, "run-2", run_is_active=lambda run_id: run_id == "run-1")
    assert second.batch_id == "BATCH000002"
    assert (
        scalar(conn, "SELECT dag_run_id FROM tools.client_lease WHERE client_schema = 'client1'") == "run-2"
    )


def test_the_lease_of_a_run_that_died_is_taken_over(conn, cfg, landing: Landing) -> None:
    deliver(landing, cfg)
    open_batch(conn, cfg, landing, "run-1")  # run-1 dies: close_batch never runs
    deliver(landing, cfg, stamp="20260102")
    second = open_batch(conn, cfg, landing, "run-2", run_is_active=lambda run_id: False)
    assert second.batch_id == "BATCH000002"
    assert (
        scalar(conn, "SELECT dag_run_id FROM tools.client_lease WHERE client_schema = 'client1'") == "run-2"
    )


def test_clients_do_not_share_a_lease(conn, cfg, clients, landing: Landing) -> None:
    other = clients["client2"]
    reset_client(conn, other)
    migrate(conn, [other])
    deliver(landing, cfg)
    for system, f in other.files:
        folder = landing.raw(other.client, system.name, "incoming")
        folder.mkdir(parents=True, exist_ok=True)
        name = {"csv": "csv", "xlsx": "xlsx", "json": "json"}[f.type]
        candidates = [n for n in (f"{f.name}.{name}", f"{f.name}.jsonl") if f.matches(n)]
        (folder / candidates[0]).write_text("x")
    open_batch(conn, cfg, landing, "run-a")
    opened = open_batch(conn, other, landing, "run-b")  # client1 busy does not block client2
    assert opened.batch_id == "BATCH000001"
    reset_client(conn, other)
