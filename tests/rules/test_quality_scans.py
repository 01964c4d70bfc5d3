"""What a quality check reads (include/etl/warehouse/quality.py): a check that a
constraint already guarantees reads nothing, and finds the bad rows once it does not."""

from __future__ import annotations

from include.etl.warehouse.quality import checks_for
from tests.rules.tables import given


def test_a_not_null_check_reads_the_table_only_where_no_constraint_holds_the_key(conn, client1) -> None:
    given(conn, "gold_client1.fact_sales", """
        order_number | product_number | dwh_batch_id
        SO1          | BK-1           | BATCH000001
        SO2          | BK-1           | BATCH000001
    """)  # fmt: skip
    (check,) = [c for c in checks_for(client1, "gold") if c.label == "not_null(order_number, product_number)"]
    run = lambda: conn.execute(check.sql, {"batch_id": "BATCH000001"}).fetchone()  # noqa: E731

    assert run() == (0, 0, True)  # NOT NULL on both columns: no row read

    conn.execute("ALTER TABLE gold_client1.fact_sales ALTER COLUMN product_number DROP NOT NULL")
    conn.execute("UPDATE gold_client1.fact_sales SET product_number = NULL WHERE order_number = 'SO2'")
    assert run() == (1, 2, False)
    assert check.verdict(run(), "BATCH000001") == (
        "gold_client1.fact_sales not_null(order_number, product_number): 1 of 2 rows have a NULL key"
    )
