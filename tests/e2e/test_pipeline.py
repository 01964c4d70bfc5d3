"""End to end: demo files in incoming -> the client DAG run by Airflow -> gold and views.

Each client's files are generated, their expected counts computed independently from
the files (tests/expected_<client>.py), the files delivered into incoming, and the DAG
run with ``dag.test()`` against the test warehouse. Then the outcome is asserted: rows
per layer, rejected rows, files and manifest where they belong, audit rows present.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest
from psycopg import sql

from demo import generate
from include.etl.ingest.landing import Landing
from include.etl.orchestration.factory import build_all
from include.etl.warehouse.migrations import migrate
from tests.conftest import deliver_demo, reset_client

ROWS = 3000
FILE_AUDIT_QUERY = (Path(__file__).resolve().parents[2] / "sql" / "queries" / "file_history.sql").read_text()


def count(conn, schema: str, table: str, batch_id: str | None = None) -> int:
    query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, table))
    if batch_id is None:
        return conn.execute(query).fetchone()[0]
    return conn.execute(query + sql.SQL(" WHERE dwh_batch_id = %s"), (batch_id,)).fetchone()[0]


def assert_same_values(actual: dict, expected: dict) -> None:
    """Each named figure of gold equal to the oracle's, reported by name when not."""
    assert sorted(actual) == sorted(expected)
    wrong = [name for name in expected if actual[name] != expected[name]]
    details = [f"{name}: gold {actual[name]!r}, expected {expected[name]!r}" for name in wrong[:5]]
    assert not wrong, "gold differs from the files' figures:\n" + "\n".join(d[:2000] for d in details)


@pytest.fixture(scope="module")
def dags():
    built, errors = build_all()
    assert not errors
    return built


@pytest.mark.parametrize("client", ["client1", "client2"])
def test_files_to_gold(client, dags, clients, conn, landing: Landing, tmp_path: Path) -> None:
    cfg = clients[client]
    reset_client(conn, cfg)
    migrate(conn, [cfg])

    generated = tmp_path / "generated"
    deliver_demo(client, landing, generated, rows=ROWS)
    expected = importlib.import_module(f"tests.expected_{client}").expected_counts(generated)

    run = dags[client].test(run_conf={"mode": "start"})

    assert run.state == "success"
    batch_id = conn.execute(
        "SELECT batch_id FROM tools.batch_run WHERE client_schema = %s AND dag_run_id = %s",
        (client, run.run_id),
    ).fetchone()[0]
    assert batch_id == "BATCH000001"

    # Rows per layer equal what the files say they should be.
    for _, spec in cfg.files:
        assert (
            count(conn, cfg.bronze_schema, spec.bronze_table, batch_id)
            == expected[f"bronze.{spec.bronze_table}"]
        ), spec.name
    for step in cfg.gold:
        assert count(conn, cfg.gold_schema, step.table) == expected[f"gold.{step.table}"], step.name
    rejected = conn.execute(
        "SELECT count(*) FROM tools.rejected_rows WHERE client_schema = %s AND batch_id = %s",
        (client, batch_id),
    ).fetchone()[0]
    assert rejected == expected["rejected"] > 0
    for step in cfg.silver:
        assert count(conn, cfg.silver_schema, step.table, batch_id) > 0, step.name
    for view in cfg.views:
        assert count(conn, cfg.gold_schema, view.name) > 0, view.name

    # Gold by value: the figures an analyst reads, computed from the files alone.
    oracle = importlib.import_module(f"tests.expected_{client}")
    assert_same_values(oracle.gold_values(conn), oracle.expected_values(generated))

    # Files: raw in archive with the batch suffix, Parquet archived, nothing left behind.
    for system in cfg.sources:
        assert list(landing.raw(client, system.name, "incoming").iterdir()) == []
        assert list(landing.raw(client, system.name, "failed").iterdir()) == []
        archived = sorted(p.name for p in landing.raw(client, system.name, "archive").iterdir())
        assert archived and all(f"_{batch_id}." in name for name in archived)
        parquet = sorted(p.name for p in landing.data(client, system.name, "archive").iterdir())
        assert parquet == sorted(name.rsplit(".", 1)[0] + ".parquet" for name in archived)
    manifest_path = landing.batch_info(client, "success") / f"batch_output_{client}_{batch_id}.json"
    manifest = json.loads(manifest_path.read_text())
    assert manifest["status"] == "SUCCESS" and manifest["batch_id"] == batch_id
    assert {f["logical_source_file"] for f in manifest["files"]} == {f.name for _, f in cfg.files}
    assert list(landing.batch_info(client, "incoming").iterdir()) == []

    # Audit: the batch closed, every task attempt logged once, every SQL step logged.
    status, ended = conn.execute(
        "SELECT status, ended_at FROM tools.batch WHERE client_schema = %s AND batch_id = %s",
        (client, batch_id),
    ).fetchone()
    assert status == "SUCCESS" and ended is not None
    jobs = conn.execute(
        """SELECT task_id, status FROM tools.job_execution_log
           WHERE client_schema = %s AND batch_id = %s ORDER BY task_id""",
        (client, batch_id),
    ).fetchall()
    python_tasks = {"open_batch", "close_batch", "quality.silver", "quality.gold"} | {
        f"{f.name}.{step}"
        for _, f in cfg.files
        for step in ("convert", "validate_mapping", "validate_rows", "load_bronze")
    }
    assert sorted(t for t, _ in jobs) == sorted(python_tasks)
    assert {s for _, s in jobs} == {"SUCCESS"}
    steps = conn.execute(
        """SELECT layer, step_name, status FROM tools.sql_step_log
           WHERE client_schema = %s AND batch_id = %s""",
        (client, batch_id),
    ).fetchall()
    assert sorted((layer, name) for layer, name, _ in steps) == sorted(
        [("silver", s.name) for s in cfg.silver]
        + [("gold", s.name) for s in cfg.gold]
        + [("views", v.name) for v in cfg.views]
    )
    assert {s for _, _, s in steps} == {"SUCCESS"}
    for table in ("mapping_validation_log", "row_validation_log"):
        logged = conn.execute(
            sql.SQL("SELECT count(*) FROM {} WHERE client_schema = %s AND batch_id = %s").format(
                sql.Identifier("tools", table)
            ),
            (client, batch_id),
        ).fetchone()[0]
        assert logged == len(cfg.files), table

    # The README's "what happened to file X in batch Y" query answers in one row.
    _, first = cfg.files[0]
    history = conn.execute(
        FILE_AUDIT_QUERY, {"client": client, "batch_id": batch_id, "file": first.name}
    ).fetchall()
    assert len(history) == 1
    assert history[0][0] == first.name and history[0][-1] == "SUCCESS"


def test_an_optional_file_that_did_not_arrive_skips_its_group(dags, clients, conn, landing, tmp_path):
    cfg = clients["client2"]
    optional = [f.name for _, f in cfg.files if not f.required]
    assert optional == ["plans"]
    reset_client(conn, cfg)
    deliver_demo("client2", landing, tmp_path / "generated", skip={"plans"})

    run = dags["client2"].test(run_conf={"mode": "start"})

    assert run.state == "success"
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert {t: s for t, s in states.items() if t.startswith("plans.")} == {
        "plans.convert": "skipped",
        "plans.validate_mapping": "skipped",
        "plans.validate_rows": "skipped",
        "plans.load_bronze": "skipped",
        "plans.done": "success",  # the join that lets silver go on without an optional file
    }
    assert all(s == "success" for t, s in states.items() if not t.startswith("plans."))
    row = conn.execute(
        """SELECT f.physical_file_name, f.convert_status, b.status FROM tools.file_audit_log f
           JOIN tools.batch b USING (client_schema, batch_id)
           WHERE f.client_schema = 'client2' AND f.logical_source_file = 'plans'"""
    ).fetchone()
    assert row == (None, "SKIPPED", "SUCCESS")
    job = conn.execute(
        """SELECT status, message FROM tools.job_execution_log
           WHERE client_schema = 'client2' AND task_id = 'plans.convert'"""
    ).fetchone()
    assert job[0] == "SKIPPED" and "optional" in job[1]


def test_an_optional_file_that_fails_alone_ends_the_batch_partial(dags, clients, conn, landing, tmp_path):
    """client2's price list is optional: broken, it fails alone; the rest goes through gold,
    and the batch ends PARTIAL: red in Airflow, PARTIAL in tools, the file in failed."""
    cfg = clients["client2"]
    reset_client(conn, cfg)

    def break_plans(path: Path) -> None:
        if path.name.startswith("plans"):
            path.write_bytes(path.read_bytes() + b"P9;too;many;fields;1;2;3;4\n")

    deliver_demo("client2", landing, tmp_path / "generated", edit=break_plans)

    run = dags["client2"].test(run_conf={"mode": "start"})

    assert run.state == "failed"  # never green with data missing
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert states["plans.convert"] == "failed"
    assert states["plans.load_bronze"] == "upstream_failed"
    assert states["plans.done"] == "success"
    assert states["close_batch"] == "failed"
    others = {t: s for t, s in states.items() if not t.startswith("plans.") and t != "close_batch"}
    assert set(others.values()) == {"success"}, others  # every other file, silver, gold, views
    batch_id = "BATCH000001"
    (plans_file,) = [p.name for p in landing.raw("client2", "billing", "failed").iterdir()]
    assert plans_file.startswith("plans") and plans_file.endswith(f"_{batch_id}.csv")
    (error,) = conn.execute(
        """SELECT error_message FROM tools.file_audit_log
           WHERE client_schema = 'client2' AND batch_id = %s AND logical_source_file = 'plans'""",
        (batch_id,),
    ).fetchone()
    assert error.startswith(f"{plans_file}: line ") and error.endswith("'P9;too;many;fields;1;2;3;4'")
    expected = (
        f"optional file(s) failed, the rest of the batch loaded: plans: {error}; "
        "failed tasks: plans.convert, plans.load_bronze, plans.validate_mapping, plans.validate_rows"
    )
    assert conn.execute(
        "SELECT status, message FROM tools.batch WHERE client_schema = 'client2' AND batch_id = %s",
        (batch_id,),
    ).fetchone() == ("PARTIAL", expected)
    assert conn.execute(
        "SELECT status, message FROM tools.batch_run WHERE client_schema = 'client2' AND dag_run_id = %s",
        (run.run_id,),
    ).fetchone() == ("PARTIAL", expected)
    manifest = json.loads(
        (landing.batch_info("client2", "failed") / f"batch_output_client2_{batch_id}.json").read_text()
    )
    assert (manifest["status"], manifest["message"]) == ("PARTIAL", expected)
    # The files that loaded are archived; gold has their rows.
    archived = {p.name for s in ("billing", "app") for p in landing.raw("client2", s, "archive").iterdir()}
    assert len(archived) == 3 and not any(n.startswith("plans") for n in archived)
    assert count(conn, cfg.gold_schema, "fact_invoices") > 0
    assert count(conn, cfg.bronze_schema, "billing_plans", batch_id) == 0


def drop_gender_column(path: Path) -> None:
    """Break client1's customer file: its sixth column (cst_gndr) is gone, header and all."""
    if path.name == "cust_info.csv":
        lines = path.read_text().splitlines()
        path.write_text("\n".join(",".join(line.split(",")[:5] + line.split(",")[6:]) for line in lines))


def test_a_file_missing_a_column_fails_alone_and_the_batch_fails_visibly(
    dags, clients, conn, landing, tmp_path
):
    cfg = clients["client1"]
    reset_client(conn, cfg)

    deliver_demo("client1", landing, tmp_path / "generated", edit=drop_gender_column)

    run = dags["client1"].test(run_conf={"mode": "start"})

    assert run.state == "failed"
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert states["cust_info.convert"] == "success"
    assert states["cust_info.validate_mapping"] == "failed"
    assert states["cust_info.load_bronze"] == "upstream_failed"
    for _, spec in cfg.files:  # the other files still loaded
        if spec.name != "cust_info":
            assert states[f"{spec.name}.load_bronze"] == "success", spec.name
    assert states["silver.crm_cust_info"] == "upstream_failed"
    assert states["close_batch"] == "failed"

    batch_id = "BATCH000001"
    message = conn.execute(
        """SELECT message, missing_columns FROM tools.mapping_validation_log
           WHERE client_schema = 'client1' AND batch_id = %s AND logical_source_file = 'cust_info'""",
        (batch_id,),
    ).fetchone()
    assert message == (
        "cust_info_BATCH000001.parquet: column(s) missing from the file: cst_gndr",
        ["cst_gndr"],
    )
    status, batch_message = conn.execute(
        "SELECT status, message FROM tools.batch WHERE client_schema = 'client1' AND batch_id = %s",
        (batch_id,),
    ).fetchone()
    assert status == "FAILED" and "cust_info.validate_mapping" in batch_message
    assert conn.execute(  # a required file failed: the run's batch_run row says FAILED too
        "SELECT status FROM tools.batch_run WHERE client_schema = 'client1' AND dag_run_id = %s",
        (run.run_id,),
    ).fetchone() == ("FAILED",)
    assert (landing.data("client1", "crm", "failed") / "cust_info_BATCH000001.parquet").exists()
    assert (landing.batch_info("client1", "failed") / f"batch_output_client1_{batch_id}.json").exists()
    assert count(conn, cfg.bronze_schema, "crm_cust_info", batch_id) == 0
    assert count(conn, cfg.bronze_schema, "crm_sales_details", batch_id) > 0
    # Nothing was archived: the batch can be restarted from its claimed files.
    assert list(landing.raw("client1", "crm", "archive").iterdir()) == []


def table_checksums(conn, cfg) -> dict[str, tuple[int, str]]:
    """Row count and an order-independent content checksum of every silver and gold table.

    The load timestamps (``dwh_*_at``) say when a row was written, not what it holds, so
    they are left out.
    """
    sums = {}
    for schema, steps in ((cfg.silver_schema, cfg.silver), (cfg.gold_schema, cfg.gold)):
        for step in steps:
            query = sql.SQL(
                "SELECT count(*), coalesce(sum(hashtext((to_jsonb(t) - %s::text[])::text)::bigint), 0)::text"
                " FROM {} t"
            ).format(sql.Identifier(schema, step.table))
            timestamps = ["dwh_loaded_at", "dwh_created_at", "dwh_updated_at"]
            sums[f"{schema}.{step.table}"] = tuple(conn.execute(query, (timestamps,)).fetchone())
    return sums


def test_restart_after_fixing_a_file_completes_the_same_batch(dags, clients, conn, landing, tmp_path):
    cfg = clients["client1"]
    reset_client(conn, cfg)
    generated = tmp_path / "generated"
    originals = {p.name: p.read_bytes() for p in generate("client1", generated, rows=500)}

    deliver_demo("client1", landing, tmp_path / "broken", edit=drop_gender_column)
    failed = dags["client1"].test(run_conf={"mode": "start"})
    assert failed.state == "failed"

    # The operator puts the fixed file back into incoming under its claimed name ...
    fixed = landing.raw("client1", "crm", "incoming") / "cust_info_BATCH000001.csv"
    fixed.write_bytes(originals["cust_info.csv"])
    # ... and triggers restart (batch id defaults to the latest failed batch).
    restarted = dags["client1"].test(run_conf={"mode": "restart"})

    assert restarted.state == "success"
    batches = conn.execute(
        "SELECT batch_id, status FROM tools.batch WHERE client_schema = 'client1'"
    ).fetchall()
    assert batches == [("BATCH000001", "SUCCESS")]
    runs = conn.execute(
        "SELECT mode FROM tools.batch_run WHERE client_schema = 'client1' ORDER BY created_at"
    ).fetchall()
    assert runs == [("start",), ("restart",)]
    expected = importlib.import_module("tests.expected_client1").expected_counts(generated)
    for _, spec in cfg.files:
        assert (
            count(conn, cfg.bronze_schema, spec.bronze_table, "BATCH000001")
            == expected[f"bronze.{spec.bronze_table}"]
        ), spec.name
    for step in cfg.gold:
        assert count(conn, cfg.gold_schema, step.table) == expected[f"gold.{step.table}"], step.name
    assert (landing.raw("client1", "crm", "archive") / "cust_info_BATCH000001.csv").read_bytes() == (
        originals["cust_info.csv"]
    )
    assert (landing.batch_info("client1", "success") / "batch_output_client1_BATCH000001.json").exists()
    assert list(landing.batch_info("client1", "failed").iterdir()) == []


def test_reprocessing_reruns_a_batch_from_its_parquet_and_changes_nothing(
    dags, clients, conn, landing, tmp_path
):
    cfg = clients["client1"]
    reset_client(conn, cfg)
    deliver_demo("client1", landing, tmp_path / "generated")
    assert dags["client1"].test(run_conf={"mode": "start"}).state == "success"
    before = table_checksums(conn, cfg)
    bronze_before = {f.bronze_table: count(conn, cfg.bronze_schema, f.bronze_table) for _, f in cfg.files}

    run = dags["client1"].test(run_conf={"mode": "reprocessing", "batch_id": "BATCH000001"})

    assert run.state == "success"
    assert table_checksums(conn, cfg) == before
    assert {f.bronze_table: count(conn, cfg.bronze_schema, f.bronze_table) for _, f in cfg.files} == (
        bronze_before
    )
    converts = conn.execute(
        """SELECT DISTINCT convert_status FROM tools.file_audit_log
           WHERE client_schema = 'client1' AND batch_id = 'BATCH000001'"""
    ).fetchall()
    assert converts == [("REUSED",)]
    assert conn.execute("SELECT count(*) FROM tools.batch WHERE client_schema = 'client1'").fetchone()[0] == 1
