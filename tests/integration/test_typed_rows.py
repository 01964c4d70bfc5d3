"""The typed rows validation writes for the bronze load: where they are, who removes them,
and that re-running validate_rows or load_bronze alone (a cleared task) or reprocessing
the batch gives the same bronze rows."""

from __future__ import annotations

import logging

import psycopg
import pytest

from include.etl.config import ClientConfig
from include.etl.ingest.landing import Landing
from include.etl.orchestration import tasks
from tests.conftest import deliver_demo

LOGICAL = "sales_details"


def ctx(task: str, run: str = "typed-rows") -> tasks.RunContext:
    return tasks.RunContext(dag_run_id=run, task_id=task)


def data_files(landing: Landing, cfg: ClientConfig) -> dict[str, list[str]]:
    """The sales files under data/client1/crm, hidden ones included, by state folder."""
    base = landing.root / "data" / cfg.client / "crm"
    return {
        state.name: sorted(p.name for p in state.iterdir() if LOGICAL in p.name)
        for state in sorted(base.iterdir())
    }


def bronze_rows(conn: psycopg.Connection, batch_id: str) -> list[tuple]:
    return conn.execute(
        """SELECT sls_ord_num, sls_prd_key, sls_cust_id, sls_sales, sls_quantity, sls_price,
                  dwh_source_file, dwh_row_number
           FROM bronze_client1.crm_sales_details WHERE dwh_batch_id = %s ORDER BY dwh_row_number""",
        (batch_id,),
    ).fetchall()


def typed_here(caplog: pytest.LogCaptureFixture) -> bool:
    """Whether the last load typed the rows itself (no typed rows of validation to use)."""
    typed = any("typing the rows here" in r.getMessage() for r in caplog.records)
    caplog.clear()
    return typed


def test_typed_rows_live_from_validation_to_the_load(
    conn: psycopg.Connection, cfg: ClientConfig, landing: Landing, tmp_path, caplog
) -> None:
    caplog.set_level(logging.INFO, logger="include.etl.ingest.bronze")
    deliver_demo("client1", landing, tmp_path / "generated", rows=300)
    batch = tasks.open_batch(cfg.client, "start", None, ctx("open_batch"))
    batch_id = batch["batch_id"]
    converted = {  # reprocessing needs every file's Parquet
        f.name: tasks.convert(cfg.client, f.name, batch, ctx(f"{f.name}.convert")) for _, f in cfg.files
    }
    parquet = converted[LOGICAL]
    tasks.validate_mapping(cfg.client, LOGICAL, batch, parquet, ctx("validate_mapping"))
    typed = parquet.replace(".parquet", ".bronze.arrow")

    tasks.validate_rows(cfg.client, LOGICAL, batch, parquet, ctx("validate_rows"))
    assert data_files(landing, cfg)["incoming"] == sorted([parquet, typed])
    caplog.clear()
    loaded = tasks.load_bronze(cfg.client, LOGICAL, batch, parquet, ctx("load_bronze"))
    assert not typed_here(caplog)
    assert data_files(landing, cfg) == {"archive": [parquet], "failed": [], "incoming": []}
    rows = bronze_rows(conn, batch_id)
    assert len(rows) == loaded > 0

    # load_bronze cleared alone: no typed rows any more, the rows are typed again.
    assert tasks.load_bronze(cfg.client, LOGICAL, batch, parquet, ctx("load_bronze")) == loaded
    assert typed_here(caplog)
    assert bronze_rows(conn, batch_id) == rows
    # validate_rows cleared alone: its typed rows wait for the load, which uses them.
    tasks.validate_rows(cfg.client, LOGICAL, batch, parquet, ctx("validate_rows"))
    assert data_files(landing, cfg)["incoming"] == [typed]
    assert tasks.load_bronze(cfg.client, LOGICAL, batch, parquet, ctx("load_bronze")) == loaded
    assert not typed_here(caplog)
    assert bronze_rows(conn, batch_id) == rows
    assert data_files(landing, cfg) == {"archive": [parquet], "failed": [], "incoming": []}

    # Typed rows no load used (validate_rows re-run, load not) go when the batch closes.
    tasks.validate_rows(cfg.client, LOGICAL, batch, parquet, ctx("validate_rows"))
    tasks.close_batch(cfg.client, batch, [], ctx("close_batch"))
    assert data_files(landing, cfg) == {"archive": [parquet], "failed": [], "incoming": []}

    # Reprocessing validates the archived Parquet again and loads the same rows.
    again = tasks.open_batch(cfg.client, "reprocessing", batch_id, ctx("open_batch", "typed-rows-2"))
    assert tasks.convert(cfg.client, LOGICAL, again, ctx("convert", "typed-rows-2")) == parquet
    tasks.validate_rows(cfg.client, LOGICAL, again, parquet, ctx("validate_rows", "typed-rows-2"))
    assert data_files(landing, cfg) == {"archive": [parquet], "failed": [], "incoming": [typed]}
    assert (
        tasks.load_bronze(cfg.client, LOGICAL, again, parquet, ctx("load_bronze", "typed-rows-2")) == loaded
    )
    assert not typed_here(caplog)
    assert bronze_rows(conn, batch_id) == rows
    assert data_files(landing, cfg) == {"archive": [parquet], "failed": [], "incoming": []}
