"""A database source read incrementally by its high-water mark (client4: shop.customers in
a real source database), run by Airflow: given source rows -> expected bronze, silver,
gold rows, the mark and the windows, for each rule of the mark and each guard."""

from __future__ import annotations

import json
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
            (
                customer_id,
                name,
                f"c{customer_id}@shop.example",
                country,
                plan,
                bool(deleted and deleted[0]),
                updated_at,
            ),
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
        "SELECT customer_id FROM bronze_client4.shop_customers WHERE dwh_batch_id = %s ORDER BY 1",
        (batch_id,),
    ).fetchall()
    return [r[0] for r in rows]


def mark(conn) -> tuple | None:
    return conn.execute(
        "SELECT watermark AT TIME ZONE 'UTC', tiebreak, batch_id FROM tools.watermarks "
        "WHERE client_schema = 'client4' AND logical_source_file = 'customers'"
    ).fetchone()


def window(conn, batch_id: str) -> tuple:
    return conn.execute(
        """SELECT full_load, lower_watermark AT TIME ZONE 'UTC', lower_key,
                  upper_watermark AT TIME ZONE 'UTC', extracted_rows
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
def test_a_source_given_by_a_query_takes_only_the_rows_the_query_returns(client4, source, conn) -> None:
    """database.query (sql/clients/client4/sources/paying_customers.sql) instead of a table:
    the free plan's customers are never extracted, and the mark is the query's rows' mark."""
    cfg = client4(table=None, query="sources/paying_customers.sql")
    put(
        source,
        (1, "Ada", "de", "free", at(0)),
        (2, "Bo", "fr", "pro", at(10)),
        (3, "Cy", "us", "team", at(15)),
        (4, "Di", "gb", "free", at(20)),
    )
    _, first = run(cfg)
    assert first.state == "success"
    assert bronze_ids(conn, "BATCH000001") == [2, 3]
    assert mark(conn) == (at(15), "3", "BATCH000001")
    assert [r[0] for r in gold(conn)] == [2, 3]


def test_first_full_load_then_incremental_after_changes(client4, source, conn, landing) -> None:
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

    put(
        source,
        (2, "Bo", "FR", "team", at(30)),
        (3, "Cy", "us", "team", at(35), True),
        (5, "Eve", "nl", "free", at(40)),
    )
    _, second = run(cfg)
    assert second.state == "success"
    # (mark - 2h lookback, now]: every row of the last two hours again, the new ones too.
    assert window(conn, "BATCH000002") == (False, at(20) - timedelta(hours=2), None, at(40), 5)
    assert mark(conn) == (at(40), "5", "BATCH000002")
    assert silver(conn) == [
        (1, "Ada", "DE", "free", False, at(0), "BATCH000001"),  # read again, not newer: kept
        (2, "Bo", "FR", "team", False, at(30), "BATCH000002"),
        (3, "Cy", "US", "team", True, at(35), "BATCH000002"),  # deleted in the source
        (4, "Di", "GB", "free", True, at(20), "BATCH000001"),
        (5, "Eve", "NL", "free", False, at(40), "BATCH000002"),
    ]
    assert gold(conn) == [
        (1, "Ada", "DE", "free", at(0)),
        (2, "Bo", "FR", "team", at(30)),
        (5, "Eve", "NL", "free", at(40)),
    ]
    # The batch's manifest says what it extracted.
    manifest = json.loads(
        (landing.batch_info("client4", "success") / "batch_output_client4_BATCH000002.json").read_text()
    )
    assert manifest["files"][0]["extract_window"] == {
        "full_load": False,
        "after": "2026-03-01T10:20:00+00:00",
        "after_key": None,
        "up_to": "2026-03-01T12:40:00+00:00",
        "rows": 5,
    }


def test_equal_timestamps_at_the_mark_are_neither_lost_nor_taken_twice(client4, source, conn) -> None:
    cfg = client4(lookback="0s")  # the pair (updated_at, customer_id) alone decides
    put(
        source,
        (1, "Ada", "DE", "free", at(0)),
        (2, "Bo", "FR", "pro", at(10)),
        (4, "Di", "GB", "free", at(10)),
    )
    assert run(cfg)[1].state == "success"
    assert mark(conn) == (at(10), "4", "BATCH000001")

    # Written after the extract at the very same timestamp: one above the mark's key, one
    # below it (which only a lookback would take), and a newer row.
    put(
        source,
        (5, "Eve", "NL", "free", at(10)),
        (3, "Cy", "US", "team", at(10)),
        (6, "Fay", "DE", "pro", at(11)),
    )
    assert run(cfg)[1].state == "success"
    assert window(conn, "BATCH000002") == (False, at(10), "4", at(11), 2)
    assert bronze_ids(conn, "BATCH000002") == [5, 6]  # 2 and 4 not again; 3 is behind the mark
    assert mark(conn) == (at(11), "6", "BATCH000002")
    assert [r[0] for r in gold(conn)] == [1, 2, 4, 5, 6]


def test_a_late_row_within_the_lookback_is_taken_and_one_outside_is_not(client4, source, conn) -> None:
    cfg = client4(lookback="1h")
    put(
        source,
        (1, "Ada", "DE", "free", at(0)),
        (2, "Bo", "FR", "pro", at(-300)),
        (3, "Cy", "US", "team", at(600)),
    )
    assert run(cfg)[1].state == "success"
    assert mark(conn) == (at(600), "3", "BATCH000001")

    # Committed late, with timestamps before the mark: 30 min before it, and 2 h before.
    put(source, (1, "Ada", "DE", "pro", at(570)), (2, "Bo", "FR", "team", at(480)))
    assert run(cfg)[1].state == "success"
    assert bronze_ids(conn, "BATCH000002") == [1, 3]  # (mark - 1h, now]: 1 late, 3 again
    assert gold(conn) == [
        (1, "Ada", "DE", "pro", at(570)),
        (2, "Bo", "FR", "pro", at(-300)),  # outside the lookback: a full load takes it
        (3, "Cy", "US", "team", at(600)),
    ]
    assert run(cfg, full_load=True)[1].state == "success"
    assert gold(conn)[1] == (2, "Bo", "FR", "team", at(480))


def test_an_older_version_never_overwrites_a_newer_one(client4, source, conn, capfd) -> None:
    cfg = client4()  # lookback 2h
    put(source, (1, "Ada", "DE", "free", at(0)), (2, "Bo", "FR", "pro", at(60)))
    assert run(cfg)[1].state == "success"
    # Another writer puts back an older version of 2 (inside the lookback, so it is read).
    put(source, (2, "Bo", "FR", "stale", at(30)), (3, "Cy", "US", "team", at(90)))
    capfd.readouterr()
    assert run(cfg)[1].state == "success"
    task_log = capfd.readouterr().out
    assert bronze_ids(conn, "BATCH000002") == [1, 2, 3]
    assert silver(conn)[1] == (2, "Bo", "FR", "pro", False, at(60), "BATCH000001")
    assert gold(conn)[1] == (2, "Bo", "FR", "pro", at(60))
    # the step says so in its log: 1 and 2 read again (1 unchanged, 2 older), 3 new
    assert "customers: 3 rows in the batch, 1 written, 2 not newer than silver's (skipped)" in task_log


def test_full_load_reloads_the_table_without_duplicates(client4, source, conn) -> None:
    cfg = client4()
    put(source, *[(i, f"C{i}", "DE", "free", at(i)) for i in range(1, 6)])
    assert run(cfg)[1].state == "success"
    before = (silver(conn), gold(conn))
    put(source, (6, "C6", "FR", "pro", at(100)))

    assert run(cfg, full_load=True)[1].state == "success"

    assert window(conn, "BATCH000002")[0] is True
    assert bronze_ids(conn, "BATCH000002") == [1, 2, 3, 4, 5, 6]
    after = silver(conn)
    assert after[:5] == before[0] and len(after) == 6  # one row per key, the same values
    assert gold(conn)[:5] == before[1]
    assert mark(conn) == (at(100), "6", "BATCH000002")


# ------------------------------------------------------------------ hard deletes
def test_a_hard_delete_is_found_by_the_next_full_load(client4, source, conn, capfd) -> None:
    """A row deleted at the source leaves no watermark: incremental runs cannot see it. A
    full load reads every key: silver marks the missing one deleted (written by that
    batch), gold drops it; a key the load rejected (no updated_at now) is not gone."""
    cfg = client4()
    put(source, *[(i, f"C{i}", "DE", "free", at(i)) for i in range(1, 31)])
    assert run(cfg)[1].state == "success"
    source.execute("DELETE FROM shop.customers WHERE customer_id = 2")
    put(source, (31, "C31", "FR", "pro", at(100)))

    assert run(cfg)[1].state == "success"  # incremental: the deleted row is not seen
    assert [(r[0], r[4]) for r in silver(conn) if r[0] <= 3] == [(1, False), (2, False), (3, False)]
    assert 2 in [r[0] for r in gold(conn)]

    source.execute("UPDATE shop.customers SET updated_at = NULL WHERE customer_id = 3")  # rejected
    assert run(cfg, full_load=True)[1].state == "success"

    assert window(conn, "BATCH000003")[0] is True
    rows = {r[0]: (r[4], r[6]) for r in silver(conn)}
    assert rows[2] == (True, "BATCH000003")  # gone from the source: deleted by the full load
    assert rows[3] == (False, "BATCH000001")  # rejected, not gone: kept as it was
    assert sum(deleted for deleted, _ in rows.values()) == 1
    assert [r[0] for r in gold(conn)] == [1, *range(3, 32)]
    assert "customers: 1 no longer in the source (a full load): marked deleted" in capfd.readouterr().out


def test_full_load_every_reads_the_whole_source_when_the_last_full_load_is_older(
    client4, source, conn
) -> None:
    """`full_load_every: 1d`: the next run after the first is incremental; once the last
    full load is more than a day old, the run is a full load and finds the hard delete."""
    cfg = client4(full_load_every="1d")
    put(source, *[(i, f"C{i}", "DE", "free", at(i)) for i in range(1, 6)])
    assert run(cfg)[1].state == "success"
    source.execute("DELETE FROM shop.customers WHERE customer_id = 3")
    put(source, (6, "C6", "FR", "pro", at(50)))
    assert run(cfg)[1].state == "success"
    assert window(conn, "BATCH000002")[0] is False
    assert [r[0] for r in gold(conn)] == [1, 2, 3, 4, 5, 6]

    conn.execute(
        """UPDATE tools.extract_window SET planned_at = planned_at - interval '25 hours'
           WHERE client_schema = 'client4' AND full_load"""
    )
    assert run(cfg)[1].state == "success"

    assert window(conn, "BATCH000003")[0] is True
    assert bronze_ids(conn, "BATCH000003") == [1, 2, 4, 5, 6]
    assert [r[0] for r in gold(conn)] == [1, 2, 4, 5, 6]
    assert [r[0] for r in silver(conn) if r[4]] == [3]


# ------------------------------------------------------------------ failures
def test_a_crash_between_extract_and_load_leaves_the_mark_and_the_rerun_is_exact(
    client4, source, conn
) -> None:
    cfg = client4()
    put(source, (1, "Ada", "DE", "free", at(0)))
    assert run(cfg)[1].state == "success"
    put(source, (2, "Bo", "FR", "pro", at(10)))
    # The load fails (its child table inherits a check no row passes); the source changes meanwhile.
    conn.execute("ALTER TABLE bronze_client4.shop_customers ADD CONSTRAINT crash CHECK (false) NOT VALID")
    dag, failed = run(cfg)
    assert failed.state == "failed"
    assert failed.get_task_instance("customers.load_bronze").state == "failed"
    assert mark(conn) == (at(0), "1", "BATCH000001")  # where the data is
    conn.execute("ALTER TABLE bronze_client4.shop_customers DROP CONSTRAINT crash")
    put(source, (3, "Cy", "US", "team", at(20)))

    rerun = clear_and_resume(dag, failed.run_id, "customers.load_bronze")

    assert rerun.state == "success"
    assert bronze_ids(conn, "BATCH000002") == [1, 2]  # the window it extracted; 3 is the next one's
    assert mark(conn) == (at(10), "2", "BATCH000002")
    assert [r[0] for r in gold(conn)] == [1, 2]
    assert run(cfg)[1].state == "success"
    assert [r[0] for r in gold(conn)] == [1, 2, 3]


def test_clearing_any_task_of_the_group_gives_the_same_result(client4, source, conn) -> None:
    cfg = client4()
    put(source, (1, "Ada", "DE", "free", at(0)), (2, "Bo", "FR", "pro", at(10)))
    assert run(cfg)[1].state == "success"
    put(source, (2, "Bo", "FR", "team", at(20)), (3, "Cy", "US", "team", at(30)))
    dag, second = run(cfg)
    assert second.state == "success"
    expected = (
        silver(conn),
        gold(conn),
        mark(conn),
        window(conn, "BATCH000002"),
        bronze_ids(conn, "BATCH000002"),
    )
    put(source, (4, "Di", "GB", "free", at(40)))  # after the window: no cleared task may take it

    for task in (
        "customers.extract",
        "customers.convert",
        "customers.validate_mapping",
        "customers.validate_rows",
        "customers.load_bronze",
        "silver.customers",
        "gold.dim_customers",
    ):
        rerun = clear_and_resume(dag, second.run_id, task)
        assert rerun.state == "success", task
        got = (
            silver(conn),
            gold(conn),
            mark(conn),
            window(conn, "BATCH000002"),
            bronze_ids(conn, "BATCH000002"),
        )
        assert got == expected, task


def test_a_mark_later_than_the_source_fails_and_a_full_load_mends_it(client4, source, conn) -> None:
    cfg = client4()
    put(source, (1, "Ada", "DE", "free", at(0)))
    assert run(cfg)[1].state == "success"
    conn.execute(
        "UPDATE tools.watermarks SET watermark = '2031-01-01 00:00+00' WHERE client_schema = 'client4'"
    )
    _, failed = run(cfg)
    assert failed.state == "failed"
    assert job_message(conn, "BATCH000002", "customers.extract") == (
        "customers: the mark 2031-01-01 00:00:00+00:00 (key 1) is later than the source's greatest "
        "updated_at (2026-03-01 12:00:00): a corrupted mark or a clock set back; trigger with full_load "
        "to reload the table"
    )
    put(source, (2, "Bo", "FR", "pro", at(10)))
    assert run(cfg, full_load=True)[1].state == "success"
    assert mark(conn) == (at(10), "2", "BATCH000003")


def test_an_empty_window_warns_and_too_many_in_a_row_fail(client4, source, conn) -> None:
    cfg = client4(lookback="0s", max_empty_runs=2)
    put(source, (1, "Ada", "DE", "free", at(0)))
    assert run(cfg)[1].state == "success"

    assert run(cfg)[1].state == "success"  # nothing new: a warning, the batch goes on
    assert window(conn, "BATCH000002")[-1] == 0
    assert job_message(conn, "BATCH000002", "customers.extract") == (
        "no new row (after (2026-03-01 12:00:00+00:00, key 1) up to 2026-03-01 12:00:00); "
        "1 empty extract(s) in a row"
    )
    _, third = run(cfg)
    assert third.state == "failed"
    assert job_message(conn, "BATCH000003", "customers.extract") == (
        "customers: 2 extracts in a row took no row from app_source (shop.customers): "
        "is the source still written to?"
    )
    assert mark(conn) == (at(0), "1", "BATCH000001")


def test_a_row_without_a_watermark_is_rejected_with_its_reason(client4, source, conn) -> None:
    cfg = client4()
    put(source, (1, "Ada", "DE", "free", None), *[(i, f"C{i}", "FR", "pro", at(i)) for i in range(2, 31)])
    assert run(cfg)[1].state == "success"  # 1 of 30 rejected: within the file's 5%
    rejected = conn.execute(
        """SELECT column_name, reason FROM tools.rejected_rows
           WHERE client_schema = 'client4' AND batch_id = 'BATCH000001'"""
    ).fetchall()
    assert rejected == [("updated_at", "required value of updated_at is empty")]
    assert [r[0] for r in gold(conn)] == list(range(2, 31))
    # An incremental window cannot place it: it is not read (nor rejected) again.
    put(source, (31, "C31", "FR", "pro", at(31)))
    assert run(cfg)[1].state == "success"
    assert 1 not in bronze_ids(conn, "BATCH000002")
    rejected_now = (
        "SELECT count(*) FROM tools.rejected_rows WHERE client_schema = 'client4' AND batch_id = %s"
    )
    assert conn.execute(rejected_now, ("BATCH000002",)).fetchone() == (0,)


def test_an_unreachable_source_names_its_connection_never_its_password(monkeypatch) -> None:
    from include.etl.orchestration import tasks

    monkeypatch.setenv("AIRFLOW_CONN_BROKEN_SOURCE", "postgresql://shop:s3cr3t-pw@127.0.0.1:1/shop")
    with pytest.raises(RuntimeError) as error:
        tasks._source("broken_source")
    message = str(error.value)
    assert message.startswith("source connection 'broken_source' unreachable: ")
    assert "s3cr3t-pw" not in message


def test_a_column_gone_from_the_source_fails_the_mapping_as_a_files_would(client4, source, conn) -> None:
    cfg = client4()
    put(source, (1, "Ada", "DE", "free", at(0)))
    assert run(cfg)[1].state == "success"
    source.execute("ALTER TABLE shop.customers DROP COLUMN country")
    source.execute("UPDATE shop.customers SET updated_at = %s", (at(10),))

    _, failed = run(cfg)

    assert failed.state == "failed"
    assert failed.get_task_instance("customers.validate_mapping").state == "failed"
    (missing,) = conn.execute(
        """SELECT missing_columns FROM tools.schema_drift_log
           WHERE client_schema = 'client4' AND batch_id = 'BATCH000002'"""
    ).fetchone()
    assert missing == ["country"]
    assert mark(conn) == (at(0), "1", "BATCH000001")  # the mark stays with the data
