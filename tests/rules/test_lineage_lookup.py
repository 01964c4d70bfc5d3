"""The console's Lineage page (``include.etl.console.queries.lineage``): which silver and
bronze rows a gold row is traced to, pinned by given rows of each layer.

Each lookup runs on a read-only connection of its own, as the console opens one per
request (``include.etl.console.app.read_only``).
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from include.etl.console.queries import lineage
from include.etl.orchestration.connections import warehouse
from tests.rules.tables import given

B1, B2, B3 = "BATCH000001", "BATCH000002", "BATCH000003"


@pytest.fixture
def console(client1) -> Iterator[psycopg.Connection]:
    with warehouse() as conn:
        conn.read_only = True
        yield conn


def traced(console, client1, table: str, key: list[str]) -> dict:
    entry = next(e for e in client1.lineage if e.gold == table)
    return lineage(console, client1, entry, key)


def test_a_line_delivered_again_is_traced_to_the_delivery_gold_holds(conn, client1, console) -> None:
    """SO1 came on day one and again, corrected, on day three: its gold row is the third
    batch's, so are its silver and bronze rows (not day one's, which silver keeps too)."""
    for batch, quantity in ((B1, 1), (B3, 2)):
        given(conn, "bronze_client1.crm_sales_details", f"""
            sls_ord_num | sls_prd_key | sls_quantity
            SO9         | BK-1        | 7
            SO1         | BK-1        | {quantity}
        """, batch=batch)  # fmt: skip
        given(conn, "silver_client1.crm_sales_details", f"""
            sls_ord_num | sls_prd_key | sls_quantity | dwh_row_number
            SO1         | BK-1        | {quantity}   | 2
        """, batch=batch)  # fmt: skip
    given(conn, "gold_client1.fact_sales", """
        order_number | product_number | quantity | dwh_batch_id
        SO1          | BK-1           | 2        | BATCH000003
    """)  # fmt: skip

    found = traced(console, client1, "fact_sales", ["SO1", "BK-1"])

    assert found["gold"]["quantity"] == 2
    assert [
        (s["dwh_batch_id"], s["sls_quantity"], s["dwh_source_file"], s["dwh_row_number"])
        for s in found["silver"]
    ] == [(B3, 2, "crm_sales_details_BATCH000003.csv", 2)]
    bronze = found["silver"][0]["_bronze"]
    assert (bronze["dwh_batch_id"], bronze["sls_ord_num"], bronze["sls_quantity"]) == (B3, "SO1", 2)
    # The lookup's planner setting ends with it: the request's next queries plan as usual.
    assert console.execute("SHOW enable_seqscan").fetchone() == ("on",)


def test_a_customer_unchanged_since_is_traced_to_the_latest_row_before_its_gold_batch(
    conn, client1, console
) -> None:
    """dim_customers wrote customer 7 in the second batch (an ERP change, say), whose
    CRM snapshot kept no row for it: the customer's CRM row is the first batch's, the
    latest before the gold row's batch; the third batch's row came after and is not it."""
    for batch, name in ((B1, "Ann"), (B3, "Anne")):
        given(conn, "bronze_client1.crm_cust_info", f"""
            cst_id | cst_firstname
            7      | {name}
        """, batch=batch)  # fmt: skip
        given(conn, "silver_client1.crm_cust_info", f"""
            cst_id | cst_firstname | cst_marital_status | cst_gndr
            7      | {name}        | n/a                | n/a
        """, batch=batch)  # fmt: skip
    given(conn, "gold_client1.dim_customers", """
        customer_id | first_name | country | marital_status | gender | dwh_batch_id
        7           | Ann        | n/a     | n/a            | n/a    | BATCH000002
    """)  # fmt: skip

    found = traced(console, client1, "dim_customers", ["7"])

    assert [(s["dwh_batch_id"], s["cst_firstname"]) for s in found["silver"]] == [(B1, "Ann")]
    assert found["silver"][0]["_bronze"]["cst_firstname"] == "Ann"


def test_a_key_that_is_not_of_its_columns_type_is_said_so(client1, console) -> None:
    """customer_id is a whole number: "AW7" is reported as what it is, and the page's
    connection is still usable for the next lookup."""
    found = traced(console, client1, "dim_customers", ["AW7"])

    assert found["gold"] is None
    assert (
        found["error"] == 'dim_customers is found by customer_id: invalid input syntax for type bigint: "AW7"'
    )
    assert traced(console, client1, "dim_customers", ["7"]) == {"gold": None, "silver": []}
