"""Quality gates on silver and gold, against the real warehouse and Airflow.

Two healthy client1 batches (the gates pass); then, gate by gate, a row is broken the way
a bad SQL change or a lost constraint would break it, the layer's check task is cleared
with its downstream (as the runbook says), and the batch must end FAILED with one line
naming the table, the check and the numbers. The row is repaired, the check cleared
again, and the batch ends SUCCESS.
"""

from __future__ import annotations

import pytest

from include.etl.config import config_for
from include.etl.orchestration.factory import build_dag
from tests.conftest import deliver_demo
from tests.e2e.airflow_runs import clear_and_resume, fresh_client

CFG = config_for("client1")


@pytest.fixture(scope="module")
def runs(warehouse_url, tmp_path_factory):
    """Two successful client1 batches of the same delivery: (dag, run ids by batch)."""
    root = tmp_path_factory.mktemp("quality-gates")
    with fresh_client(CFG, root) as (landing, _):
        dag = build_dag(CFG)
        run_ids = {}
        for batch_id in ("BATCH000001", "BATCH000002"):
            deliver_demo("client1", landing, root / batch_id, rows=300)
            run = dag.test(run_conf={"mode": "start"})
            assert run.state == "success", batch_id
            run_ids[batch_id] = run.run_id
        yield dag, run_ids


def batch_outcome(conn, run_id: str) -> tuple[str, str | None]:
    """The batch's status and message, found through the DAG run (tools.batch_run)."""
    return conn.execute(
        """SELECT b.status, b.message FROM tools.batch_run r
           JOIN tools.batch b USING (client_schema, batch_id)
           WHERE r.client_schema = 'client1' AND r.dag_run_id = %s""",
        (run_id,),
    ).fetchone()


def last_check(conn, task_id: str) -> tuple[str, str]:
    return conn.execute(
        """SELECT status, message FROM tools.job_execution_log
           WHERE client_schema = 'client1' AND task_id = %s ORDER BY id DESC LIMIT 1""",
        (task_id,),
    ).fetchone()


def rows(conn, query: str, *args: object) -> int:
    return conn.execute(query, args).fetchone()[0]


def fails_then_passes(conn, runs, task_id: str, message: str, repair) -> None:
    """Clear the check: the batch fails with ``message``; repair, clear: it succeeds."""
    dag, run_ids = runs
    run_id = run_ids["BATCH000002"]

    run = clear_and_resume(dag, run_id, task_id)

    assert run.state == "failed"
    assert run.get_task_instance(task_id).state == "failed"
    assert run.get_task_instance("close_batch").state == "failed"
    assert last_check(conn, task_id) == ("FAILED", message)
    assert batch_outcome(conn, run_id) == ("FAILED", f"failed tasks: {task_id}")

    repair()
    assert clear_and_resume(dag, run_id, task_id).state == "success"
    assert last_check(conn, task_id)[0] == "SUCCESS"
    assert batch_outcome(conn, run_id) == ("SUCCESS", None)


def test_healthy_batches_pass_every_gate(runs, conn) -> None:
    _, run_ids = runs
    for run_id in run_ids.values():
        assert batch_outcome(conn, run_id) == ("SUCCESS", None)
    silver, gold = last_check(conn, "quality.silver"), last_check(conn, "quality.gold")
    assert silver == ("SUCCESS", "17 checks passed")  # 6 not_null, 5 unique, 6 row counts
    assert gold == ("SUCCESS", "8 checks passed")  # 3 not_null, 3 unique, 2 joins


def test_a_late_arriving_dimension_member_passes_the_join_gate(runs, conn) -> None:
    """A fact row whose customer is not known yet keeps a NULL key: that is no failure."""
    dag, run_ids = runs
    (order, product, key) = conn.execute(
        "SELECT order_number, product_number, customer_key FROM gold_client1.fact_sales LIMIT 1"
    ).fetchone()
    conn.execute(
        """UPDATE gold_client1.fact_sales SET customer_key = NULL
           WHERE order_number = %s AND product_number = %s""",
        (order, product),
    )
    try:
        assert clear_and_resume(dag, run_ids["BATCH000002"], "quality.gold").state == "success"
    finally:
        conn.execute(
            """UPDATE gold_client1.fact_sales SET customer_key = %s
               WHERE order_number = %s AND product_number = %s""",
            (key, order, product),
        )


def test_a_null_key_in_gold_fails_the_batch(runs, conn) -> None:
    # The NOT NULL constraint is gone (a migration dropped it); a row lost its key.
    conn.execute("ALTER TABLE gold_client1.dim_customers ALTER COLUMN customer_id DROP NOT NULL")
    key, customer = conn.execute(
        "SELECT customer_key, customer_id FROM gold_client1.dim_customers ORDER BY customer_key LIMIT 1"
    ).fetchone()
    conn.execute("UPDATE gold_client1.dim_customers SET customer_id = NULL WHERE customer_key = %s", (key,))
    total = rows(conn, "SELECT count(*) FROM gold_client1.dim_customers")

    def repair() -> None:
        conn.execute(
            "UPDATE gold_client1.dim_customers SET customer_id = %s WHERE customer_key = %s", (customer, key)
        )
        conn.execute("ALTER TABLE gold_client1.dim_customers ALTER COLUMN customer_id SET NOT NULL")

    fails_then_passes(
        conn,
        runs,
        "quality.gold",
        f"quality check failed: gold_client1.dim_customers not_null(customer_id): 1 of {total:,} rows "
        "have a NULL key",
        repair,
    )


def test_a_duplicate_key_in_silver_fails_the_batch(runs, conn) -> None:
    # The batch's unique index is gone and a product row was written twice into batch 2
    # (which, delivering the same products, kept none: the products are a snapshot delivery).
    conn.execute("DROP INDEX silver_client1.crm_prd_info_batch_key_uq")
    conn.execute(
        """CREATE TEMP TABLE twice AS SELECT * FROM silver_client1.crm_prd_info
           WHERE dwh_batch_id = 'BATCH000001' ORDER BY prd_id LIMIT 1"""
    )
    conn.execute("UPDATE twice SET dwh_batch_id = 'BATCH000002'")
    conn.execute("INSERT INTO silver_client1.crm_prd_info SELECT * FROM twice UNION ALL SELECT * FROM twice")

    def repair() -> None:
        conn.execute("DELETE FROM silver_client1.crm_prd_info WHERE dwh_batch_id = 'BATCH000002'")
        conn.execute("DROP TABLE twice")
        conn.execute(
            """CREATE UNIQUE INDEX crm_prd_info_batch_key_uq
               ON silver_client1.crm_prd_info (dwh_batch_id, prd_id)"""
        )

    fails_then_passes(
        conn,
        runs,
        "quality.silver",
        "quality check failed: silver_client1.crm_prd_info unique(prd_id): 1 key value(s) held by more "
        "than one row (2 rows) of BATCH000002",
        repair,
    )


def test_a_fact_row_whose_key_is_not_in_its_dimension_fails_the_batch(runs, conn) -> None:
    # The foreign key is gone (dropped for load speed) and a fact row points nowhere.
    conn.execute("ALTER TABLE gold_client1.fact_sales DROP CONSTRAINT IF EXISTS fact_sales_product_key_fkey")
    (order, product, key) = conn.execute(
        """SELECT order_number, product_number, product_key FROM gold_client1.fact_sales
           WHERE product_key IS NOT NULL ORDER BY order_number, product_number LIMIT 1"""
    ).fetchone()
    conn.execute(
        """UPDATE gold_client1.fact_sales SET product_key = -1
           WHERE order_number = %s AND product_number = %s""",
        (order, product),
    )
    keyed = rows(conn, "SELECT count(*) FROM gold_client1.fact_sales WHERE product_key IS NOT NULL")

    def repair() -> None:
        conn.execute(
            """UPDATE gold_client1.fact_sales SET product_key = %s
               WHERE order_number = %s AND product_number = %s""",
            (key, order, product),
        )

    fails_then_passes(
        conn,
        runs,
        "quality.gold",
        f"quality check failed: gold_client1.fact_sales joins dim_products(product_key): 1 of {keyed:,} rows "
        "have a key missing from gold_client1.dim_products.product_key",
        repair,
    )


def test_a_row_count_drop_against_the_previous_batch_fails_the_batch(runs, conn) -> None:
    # The silver step of batch 2 lost most of the sales lines (a bad filter, say); a snapshot
    # delivery's gate (it compares the rows delivered) is pinned in tests/rules/test_snapshot_deliveries.py.
    lines = "silver_client1.crm_sales_details"
    before = rows(conn, f"SELECT count(*) FROM {lines} WHERE dwh_batch_id = 'BATCH000001'")
    kept = f"SELECT ctid FROM {lines} WHERE dwh_batch_id = 'BATCH000002' ORDER BY ctid LIMIT 10"
    gone = f"FROM {lines} WHERE dwh_batch_id = 'BATCH000002' AND ctid NOT IN ({kept})"
    conn.execute(f"CREATE TEMP TABLE lost AS SELECT * {gone}")
    conn.execute(f"DELETE {gone}")
    drop = 1 - 10 / before

    def repair() -> None:
        conn.execute(f"INSERT INTO {lines} SELECT * FROM lost")

    fails_then_passes(
        conn,
        runs,
        "quality.silver",
        f"quality check failed: {lines} row_count: 10 rows in BATCH000002, {drop:.0%} "
        f"fewer than the {before:,} of BATCH000001 (at most 50% allowed)",
        repair,
    )
