"""A database source read incrementally by its high-water mark (client4: shop.customers in
a real source database), run by Airflow: given source rows -> expected bronze, silver,
gold rows, the mark and the windows, for each rule of the mark and each guard."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import psycopg
import pytest
import yaml

from include.etl.config import CLIENTS_DIR, load_client
from include.etl.orchestration.factory import build_dag
from include.etl.warehouse.migrations import migrate
from tests.conftest import reset_client
from tests.e2e.airflow_runs import clear_and_resume

T0 = datetime(2026, 3, 1, 12, 0, 0)
COLUMNS = "customer_id, full_name, email, country, plan, deleted, updated_at"


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


@pytest.fixture
def source(source_url: str):
    with psycopg.connect(source_url, autocommit=True) as conn:
        conn.execute(
            """DROP SCHEMA IF EXISTS shop CASCADE; CREATE SCHEMA shop;
               CREATE TABLE shop.customers (
                   customer_id bigint PRIMARY KEY, full_name text NOT NULL, email text NOT NULL,
                   country text NOT NULL, plan text NOT NULL, deleted boolean NOT NULL DEFAULT false,
                   updated_at timestamp)"""
        )
        yield conn


def put(source: psycopg.Connection, *rows: tuple) -> None:
    """Insert or replace source rows: (id, name, country, plan, updated_at[, deleted])."""
    for row in rows:
        customer_id, name, country, plan, updated_at, *deleted = row
        source.execute(
            f"""INSERT INTO shop.customers ({COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s)
                ON CONFLICT (customer_id) DO UPDATE SET full_name = EXCLUDED.full_name,
                    country = EXCLUDED.country, plan = EXCLUDED.plan, deleted = EXCLUDED.deleted,
                    updated_at = EXCLUDED.updated_at""",
            (customer_id, name, f"c{customer_id}@shop.example", country, plan, bool(deleted and deleted[0]), updated_at),
        )


@pytest.fixture
def client4(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, conn, source, landing):
    """client4's config (with the test's settings over it), a clean warehouse for it."""

    def make(**database: object):
        folder = tmp_path / "clients"
        folder.mkdir(exist_ok=True)
        data = yaml.safe_load((CLIENTS_DIR / "client4.yaml").read_text())
        data["retries"] = 0
        data["sources"][0]["files"][0]["database"].update(database)
        (folder / "client4.yaml").write_text(yaml.safe_dump(data))
        monkeypatch.setenv("ETL_CLIENTS_DIR", str(folder))
        return load_client(folder / "client4.yaml")

    cfg = make()
    reset_client(conn, cfg)
    migrate(conn, [cfg])
    return make


def run(cfg, **conf: object):
    dag = build_dag(cfg)
    return dag, dag.test(run_conf={"mode": "start", **conf})


def silver(conn) -> list[tuple]:
    return conn.execute(
        "SELECT customer_id, full_name, country, plan, deleted, updated_at, dwh_batch_id "
        "FROM silver_client4.customers ORDER BY 1"
    ).fetchall()


def gold(conn) -> list[tuple]:
    return conn.execute(
        "SELECT customer_id, full_name, country, plan, updated_at FROM gold_client4.dim_customers ORDER BY 1"
    ).fetchall()


def bronze_ids(conn, batch_id: str) -> list[int]:
    rows = conn.execute(
        "SELECT customer_id FROM bronze_client4.shop_customers WHERE dwh_batch_id = %s ORDER BY 1", (batch_id,)
    ).fetchall()
    return [r[0] for r in rows]


def mark(conn) -> tuple | None:
    return conn.execute(
        "SELECT watermark AT TIME ZONE 'UTC', tiebreak, batch_id FROM tools.watermarks "
        "WHERE client_schema = 'client4' AND logical_source_file = 'customers'"
    ).fetchone()


def window(conn, batch_id: str) -> tuple:
    return conn.execute(
        """SELECT full_load, lower_watermark AT TIME ZONE 'UTC', lower_key, upper_watermark AT TIME ZONE 'UTC',
                  extracted_rows
           FROM tools.extract_window WHERE client_schema = 'client4' AND batch_id = %s""",
        (batch_id,),
    ).fetchone()


def job_message(conn, batch_id: str, task: str) -> str:
    (message,) = conn.execute(
        """SELECT message FROM tools.job_execution_log
           WHERE client_schema = 'client4' AND batch_id = %s AND task_id = %s ORDER BY id DESC LIMIT 1""",
        (batch_id, task),
    ).fetchone()
    return message


# ------------------------------------------------------------------ the mark
def test_first_full_load_then_incremental_after_changes(client4, source, conn) -> None:
    cfg = client4()
    put(
        source,
        (1, "Ada", "de", "free", at(0)),
        (2, " Bo ", "FR", "pro", at(10)),
        (3, "Cy", "us", "team", at(10)),
        (4, "Di", "gb", "free", at(20), True),  # soft-deleted: in silver, not in gold
    )
    _, first = run(cfg)
    assert first.state == "success"
    assert window(conn, "BATCH000001") == (True, None, None, at(20), 4)
    assert bronze_ids(conn, "BATCH000001") == [1, 2, 3, 4]
    assert mark(conn) == (at(20), "4", "BATCH000001")
    assert gold(conn) == [
        (1, "Ada", "DE", "free", at(0)),
        (2, "Bo", "FR", "pro", at(10)),
        (3, "Cy", "US", "team", at(10)),
    ]

    put(source, (2, "Bo", "FR", "team", at(30)), (5, "Eve", "nl", "free", at(40)))
    _, second = run(cfg)
    assert second.state == "success"
    # (mark - 2h lookback, now]: every row of the last two hours again, the new ones too.
    assert window(conn, "BATCH000002") == (False, at(20) - timedelta(hours=2), None, at(40), 5)
    assert mark(conn) == (at(40), "5", "BATCH000002")
    assert silver(conn) == [
        (1, "Ada", "DE", "free", False, at(0), "BATCH000001"),  # read again, not newer: kept
        (2, "Bo", "FR", "team", False, at(30), "BATCH000002"),
        (3, "Cy", "US", "team", False, at(10), "BATCH000001"),
        (4, "Di", "GB", "free", True, at(20), "BATCH000001"),
        (5, "Eve", "NL", "free", False, at(40), "BATCH000002"),
    ]
    assert gold(conn) == [
        (1, "Ada", "DE", "free", at(0)),
        (2, "Bo", "FR", "team", at(30)),
        (3, "Cy", "US", "team", at(10)),
        (5, "Eve", "NL", "free", at(40)),
    ]
