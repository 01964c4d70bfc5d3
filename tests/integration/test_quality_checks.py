"""The quality checks' SQL on the real warehouse: a unique key that an index enforces is
not scanned; without that index (or with only a partial one) duplicates are found."""

from __future__ import annotations

import psycopg

from include.etl.config import ClientConfig
from include.etl.warehouse.quality import Check, checks_for

BATCH = "BATCH000001"


def unique_check(cfg: ClientConfig, layer: str, table: str) -> Check:
    (check,) = [c for c in checks_for(cfg, layer) if c.kind == "unique" and c.table == table]
    return check


def run(conn: psycopg.Connection, check: Check) -> tuple:
    return conn.execute(check.sql, {"batch_id": BATCH, "client": "client1"}).fetchone()


def add_sales_line(conn: psycopg.Connection, order_number: str) -> None:
    conn.execute(
        "INSERT INTO gold_client1.fact_sales (order_number, product_number, dwh_batch_id)"
        " VALUES (%s, 'P-1', %s)",
        (order_number, BATCH),
    )


def test_a_key_with_a_unique_index_is_not_scanned(conn: psycopg.Connection, cfg: ClientConfig) -> None:
    add_sales_line(conn, "SO1")
    fact = unique_check(cfg, "gold", "gold_client1.fact_sales")
    assert run(conn, fact) == (0, 0, True)
    # silver: the batch-scoped key is enforced by the (dwh_batch_id, key) unique index
    customers = unique_check(cfg, "silver", "silver_client1.crm_cust_info")
    assert run(conn, customers) == (0, 0, True)


def test_without_the_index_duplicates_are_found(conn: psycopg.Connection, cfg: ClientConfig) -> None:
    conn.execute("ALTER TABLE gold_client1.fact_sales DROP CONSTRAINT fact_sales_line_uq")
    # a partial unique index does not guarantee the key for every row
    conn.execute(
        "CREATE UNIQUE INDEX fact_sales_partial_uq ON gold_client1.fact_sales (order_number, product_number)"
        " WHERE quantity > 0"
    )
    for order_number in ("SO1", "SO1", "SO2"):
        add_sales_line(conn, order_number)
    fact = unique_check(cfg, "gold", "gold_client1.fact_sales")
    row = run(conn, fact)
    assert row == (1, 2, False)
    assert fact.verdict(row, BATCH) == (
        "gold_client1.fact_sales unique(order_number, product_number): 1 key value(s) held by more "
        "than one row (2 rows)"
    )
