"""Two clients of one template (client1 and client3, both ``retail_crm_erp``) run on
different deliveries: each one's gold holds exactly its own files' figures, in its own
schemas, and a step of one failing leaves the other untouched."""

from __future__ import annotations

from pathlib import Path

import pytest

from include.etl.orchestration.factory import build_all
from include.etl.warehouse.migrations import migrate
from tests import expected_client1 as oracle
from tests.conftest import deliver_demo, reset_client


@pytest.fixture(scope="module")
def dags():
    built, errors = build_all()
    assert not errors
    return built


def tables(conn, schema: str) -> set[str]:
    rows = conn.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema,)
    ).fetchall()
    return {name for (name,) in rows}


def test_two_clients_of_one_template_keep_to_their_own_rows(dags, clients, conn, landing, tmp_path: Path):
    client1, client3 = clients["client1"], clients["client3"]
    assert client1.template == client3.template == "retail_crm_erp"
    for cfg in (client1, client3):
        reset_client(conn, cfg)
    migrate(conn, [client1, client3])

    deliver_demo("client1", landing, tmp_path / "client1", rows=1200)
    deliver_demo("client3", landing, tmp_path / "client3", rows=700)  # another seed, fewer rows
    expected1 = oracle.expected_values(tmp_path / "client1")
    expected3 = oracle.expected_values(tmp_path / "client3")
    assert expected1["fact_sales.sales_total"] != expected3["fact_sales.sales_total"]

    assert dags["client1"].test(run_conf={"mode": "start"}).state == "success"
    assert dags["client3"].test(run_conf={"mode": "start"}).state == "success"

    # Each gold is its own delivery's, by value: a row of the other client would change it.
    assert oracle.gold_values(conn, "client3") == expected3
    assert oracle.gold_values(conn, "client1") == expected1
    # Its own schemas with the same tables (the template's), its own incoming folders.
    for layer in ("bronze", "silver", "gold"):
        assert tables(conn, f"{layer}_client3") == tables(conn, f"{layer}_client1") != set()
    for client, generated in (("client1", tmp_path / "client1"), ("client3", tmp_path / "client3")):
        archived = sorted(p.name for p in landing.raw(client, "crm", "archive").iterdir())
        assert archived == sorted(
            p.name.replace(".csv", "_BATCH000001.csv") for p in (generated / "crm").iterdir()
        )
    # The shared helpers exist once, not per client schema.
    helpers = conn.execute(
        """SELECT n.nspname, p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
           WHERE p.proname IN ('clean_text', 'yyyymmdd_to_date') ORDER BY 1, 2"""
    ).fetchall()
    assert helpers == [("shared", "clean_text"), ("shared", "yyyymmdd_to_date")]

    # client3's sales lines step fails (a constraint no row meets; the sales lines are an
    # increment: a snapshot delivered again adds no row to fail on); client1 is untouched.
    before = oracle.gold_values(conn, "client1")
    batches1 = conn.execute(
        "SELECT batch_id, status FROM tools.batch WHERE client_schema = 'client1'"
    ).fetchall()
    conn.execute(
        "ALTER TABLE silver_client3.crm_sales_details ADD CONSTRAINT no_rows_today CHECK (false) NOT VALID"
    )
    for task in dags["client3"].tasks:
        task.retries = 0  # the failure is the point, not the retries' wait
    try:
        deliver_demo("client3", landing, tmp_path / "client3-again", rows=700)
        assert dags["client3"].test(run_conf={"mode": "start"}).state == "failed"
    finally:
        conn.execute("ALTER TABLE silver_client3.crm_sales_details DROP CONSTRAINT no_rows_today")
    failed = conn.execute(
        """SELECT step_name, error_message FROM tools.sql_step_log
           WHERE client_schema = 'client3' AND status = 'FAILED'"""
    ).fetchall()
    assert {name for name, _ in failed} == {"crm_sales_details"}
    assert "no_rows_today" in failed[0][1]
    assert oracle.gold_values(conn, "client1") == before
    assert (
        conn.execute("SELECT batch_id, status FROM tools.batch WHERE client_schema = 'client1'").fetchall()
        == batches1
    )
    assert conn.execute(
        "SELECT count(*) FROM tools.sql_step_log WHERE client_schema = 'client1' AND status <> 'SUCCESS'"
    ).fetchone() == (0,)
