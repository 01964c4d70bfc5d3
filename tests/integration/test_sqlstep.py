"""SQL steps (include/etl/warehouse/sqlstep.py) on the test warehouse: the fact merge keeps the gold
contract, and a step is skipped only when nothing it reads has changed."""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path

import psycopg
import pytest

from include.etl.config import ClientConfig
from include.etl.ingest.bronze import load_bronze
from include.etl.ingest.validation import validate_rows
from include.etl.warehouse.migrations import migrate
from include.etl.warehouse.sqlstep import (
    describe,
    relations_read,
    relations_written,
    run_step,
    split_statements,
)
from tests.conftest import reset_client
from tests.integration.test_warehouse import GOOD_ROWS, make_parquet

log = logging.getLogger("test.sqlstep")


@pytest.fixture
def client1(conn: psycopg.Connection, clients: dict[str, ClientConfig]) -> ClientConfig:
    cfg = clients["client1"]
    reset_client(conn, cfg)
    migrate(conn, [cfg])
    return cfg


def step(conn, cfg: ClientConfig, layer: str, name: str, batch_id: str, *, force=False, text=None):
    s = next(s for s in getattr(cfg, layer) if s.name == name)
    schema = cfg.silver_schema if layer == "silver" else cfg.gold_schema
    return run_step(
        conn,
        client=cfg.client,
        layer=layer,
        step=name,
        target=f"{schema}.{s.table}",
        sql_text=text if text is not None else cfg.render_sql(s.sql),
        batch_id=batch_id,
        log=log,
        skip_unchanged=not force,
    )


# ------------------------------------------------------------------ parsing the SQL text
def test_statements_reads_and_writes_of_a_step_file(clients) -> None:
    cfg = clients["client1"]
    text = cfg.render_sql("gold/fact_sales.sql")
    assert relations_read(text, "client1") == {
        "silver_client1.crm_sales_details",
        "gold_client1.dim_products",
        "gold_client1.dim_customers",
        "gold_client1.fact_sales",
        "gold_client1.fact_sales_moves",
    }
    # the side table where moved lines were: it gets the step's write id too
    assert relations_written(text, "client1") == {"gold_client1.fact_sales", "gold_client1.fact_sales_moves"}
    statements = split_statements(text)  # three SET LOCAL, the merge, two late-arrival links
    assert [describe(s, width=60) for s in statements] == [
        "SET LOCAL work_mem = '256MB'",
        "SET LOCAL random_page_cost = 1.1",
        "SET LOCAL enable_seqscan = off",
        "WITH ... UPDATE gold_client1.fact_sales, INSERT INTO gold...",
        "WITH ... UPDATE gold_client1.fact_sales, INSERT INTO gold...",
        "WITH ... UPDATE gold_client1.fact_sales, INSERT INTO gold...",
    ]
    assert split_statements("-- only a comment\n;\nSELECT '%%';\n\n") == ["SELECT '%%'"]
    refresh = 'REFRESH MATERIALIZED VIEW "gold_client1"."mv_x"'
    assert relations_read(refresh, "client1") == {"gold_client1.mv_x"}


# ------------------------------------------------------------------ the fact merge
def add_line(conn, batch_id: str, row: int, order: str, product: str, customer: int, quantity: int) -> None:
    conn.execute(
        """INSERT INTO silver_client1.crm_sales_details (sls_ord_num, sls_prd_key, sls_cust_id,
               sls_order_dt, sls_ship_dt, sls_due_dt, sls_sales, sls_quantity, sls_price,
               dwh_batch_id, dwh_row_number)
           VALUES (%s, %s, %s, DATE '2024-01-05', DATE '2024-01-07', DATE '2024-01-09', %s, %s, 10,
                   %s, %s)""",
        (order, product, customer, 10 * quantity, quantity, batch_id, row),
    )


def fact(conn) -> list[tuple]:
    return conn.execute(
        """SELECT f.order_number, f.product_number, p.product_number, c.customer_id, f.quantity,
                  f.dwh_batch_id
           FROM gold_client1.fact_sales AS f
           LEFT JOIN gold_client1.dim_products AS p USING (product_key)
           LEFT JOIN gold_client1.dim_customers AS c USING (customer_key)
           ORDER BY 1, 2"""
    ).fetchall()


def whole_rows(conn, table: str, *left_out: str) -> list[dict]:
    """Every column of every row of a gold table but ``left_out`` and the time it was written."""
    query = f"SELECT to_jsonb(t) - 'dwh_updated_at' - %s::text[] FROM gold_client1.{table} AS t"
    rows = [row for (row,) in conn.execute(query, (list(left_out),)).fetchall()]
    return sorted(rows, key=lambda row: json.dumps(row, sort_keys=True))


def checksum(conn) -> str:
    return conn.execute(
        """SELECT md5(string_agg(f::text, '|' ORDER BY order_number, product_number))
           FROM gold_client1.fact_sales AS f"""
    ).fetchone()[0]


def add_customer(conn, customer_id: int) -> None:
    conn.execute(
        """INSERT INTO gold_client1.dim_customers (customer_id, country, marital_status, gender, dwh_batch_id)
           VALUES (%s, 'n/a', 'n/a', 'n/a', 'BATCH000001')""",
        (customer_id,),
    )


def test_fact_merge_keeps_the_gold_contract(conn: psycopg.Connection, client1: ClientConfig) -> None:
    conn.execute(
        """INSERT INTO gold_client1.dim_products (product_number, dwh_batch_id)
           VALUES ('P1', 'BATCH000001')"""
    )
    add_customer(conn, 1)
    add_line(conn, "BATCH000001", 1, "SO1", "P1", 1, 1)
    add_line(conn, "BATCH000001", 2, "SO2", "P1", 2, 1)  # customer 2 is not known yet
    add_line(conn, "BATCH000001", 3, "SO1", "P1", 1, 3)  # delivered twice: the last row wins
    assert not step(conn, client1, "gold", "fact_sales", "BATCH000001").skipped  # into an empty table
    assert fact(conn) == [
        ("SO1", "P1", "P1", 1, 3, "BATCH000001"),
        ("SO2", "P1", "P1", None, 1, "BATCH000001"),
    ]

    # a newer batch changes a line (twice: its last row wins here too) and adds one
    add_line(conn, "BATCH000002", 1, "SO1", "P1", 1, 5)
    add_line(conn, "BATCH000002", 2, "SO3", "P9", 1, 1)  # unknown product
    add_line(conn, "BATCH000002", 3, "SO1", "P1", 1, 6)
    step(conn, client1, "gold", "fact_sales", "BATCH000002")
    after_second = fact(conn)
    assert after_second == [
        ("SO1", "P1", "P1", 1, 6, "BATCH000002"),
        ("SO2", "P1", "P1", None, 1, "BATCH000001"),
        ("SO3", "P9", None, 1, 1, "BATCH000002"),
    ]

    # the older batch, run again, never overwrites the newer row; nothing changes
    before = checksum(conn)
    step(conn, client1, "gold", "fact_sales", "BATCH000001", force=True)
    assert fact(conn) == after_second
    assert checksum(conn) == before
    # the same batch run again changes no row (not even dwh_updated_at)
    step(conn, client1, "gold", "fact_sales", "BATCH000002", force=True)
    assert checksum(conn) == before

    # late-arriving dimensions get linked by the next run
    add_customer(conn, 2)
    conn.execute(
        "INSERT INTO gold_client1.dim_products (product_number, dwh_batch_id) VALUES ('P9', 'BATCH000002')"
    )
    # (the dimensions were written by hand here, not by their steps: skipping would not see it)
    step(conn, client1, "gold", "fact_sales", "BATCH000002", force=True)
    assert [(r[0], r[2], r[3]) for r in fact(conn)] == [
        ("SO1", "P1", 1),
        ("SO2", "P1", 2),
        ("SO3", "P9", 1),
    ]


def test_a_first_batch_writes_what_the_merge_would(conn: psycopg.Connection, client1: ClientConfig) -> None:
    """Into an empty fact the lines skip the matching (a plain insert); into a fact that
    holds other keys they are matched and classified. Both write the same rows, every
    column of them."""
    conn.execute(
        "INSERT INTO gold_client1.dim_products (product_number, dwh_batch_id) VALUES ('P1', 'BATCH000001')"
    )
    add_customer(conn, 1000)  # so that customer 1's key is not 1: a key and an id mixed up shows
    add_customer(conn, 1)
    for row, (order, product, customer, quantity) in enumerate(
        [("SO1", "P1", 1, 1), ("SO2", "P1", 2, 1), ("SO1", "P1", 1, 3), ("SO3", "P9", 1, 2)], start=1
    ):
        add_line(conn, "BATCH000001", row, order, product, customer, quantity)
    step(conn, client1, "gold", "fact_sales", "BATCH000001")
    into_empty, into_empty_rows = fact(conn), whole_rows(conn, "fact_sales")

    conn.execute("DELETE FROM gold_client1.fact_sales")
    conn.execute(
        """INSERT INTO gold_client1.fact_sales (order_number, product_number, dwh_batch_id)
           VALUES ('SO0', 'P0', 'BATCH000000')"""
    )
    step(conn, client1, "gold", "fact_sales", "BATCH000001", force=True)
    merged = [row for row in fact(conn) if row[0] != "SO0"]
    assert [r for r in whole_rows(conn, "fact_sales") if r["order_number"] != "SO0"] == into_empty_rows
    assert (
        merged
        == into_empty
        == [
            ("SO1", "P1", "P1", 1, 3, "BATCH000001"),
            ("SO2", "P1", "P1", None, 1, "BATCH000001"),
            ("SO3", "P9", None, 1, 2, "BATCH000001"),
        ]
    )


# ------------------------------------------------------------------ customers: a first batch, skipping
def load_customers(conn, cfg: ClientConfig, tmp_path: Path, rows: str = GOOD_ROWS) -> None:
    spec = cfg.file("cust_info")[1]
    parquet = make_parquet(tmp_path, cfg, "cust_info_BATCH000001", rows)
    rejected = {r.row_number for r in validate_rows(parquet, spec).rejects}
    load_bronze(conn, cfg, spec, parquet, "BATCH000001", "cust_info_BATCH000001.csv", rejected)


def silver_customers(conn) -> list[tuple]:
    return conn.execute(
        "SELECT cst_id, cst_firstname, dwh_loaded_at FROM silver_client1.crm_cust_info ORDER BY cst_id"
    ).fetchall()


def dimension(conn) -> list[tuple]:
    return conn.execute(
        """SELECT customer_id, customer_number, first_name, country, gender, birthdate, dwh_batch_id
           FROM gold_client1.dim_customers ORDER BY customer_id"""
    ).fetchall()


def test_a_first_batch_of_customers_writes_what_the_merge_would(
    conn: psycopg.Connection, client1: ClientConfig, tmp_path: Path
) -> None:
    """As for the fact: into an empty dimension the customers are inserted without being
    matched; into one holding other customers they are matched. Both write the same rows,
    every column of them (the surrogate key aside)."""
    load_customers(conn, client1, tmp_path)
    step(conn, client1, "silver", "crm_cust_info", "BATCH000001")
    conn.execute(
        """INSERT INTO silver_client1.erp_cust_az12 (cid, bdate, gen, dwh_batch_id)
           VALUES ('AW1', DATE '1980-02-03', 'Male', 'BATCH000001'), ('AW5', NULL, 'Female', 'BATCH000001')"""
    )
    conn.execute(
        """INSERT INTO silver_client1.erp_loc_a101 (cid, cntry, dwh_batch_id)
           VALUES ('AW2', 'Germany', 'BATCH000001')"""
    )
    step(conn, client1, "gold", "dim_customers", "BATCH000001")
    into_empty, into_empty_rows = dimension(conn), whole_rows(conn, "dim_customers", "customer_key")

    conn.execute("DELETE FROM gold_client1.dim_customers")
    conn.execute(
        """INSERT INTO gold_client1.dim_customers (customer_id, country, marital_status, gender, dwh_batch_id)
           VALUES (99, 'n/a', 'n/a', 'n/a', 'BATCH000000')"""
    )
    step(conn, client1, "gold", "dim_customers", "BATCH000001", force=True)
    rows = whole_rows(conn, "dim_customers", "customer_key")
    assert [r for r in rows if r["customer_id"] != 99] == into_empty_rows
    assert (
        [row for row in dimension(conn) if row[0] != 99]
        == into_empty
        == [
            (1, "AW1", "Jon", "n/a", "Male", dt.date(1980, 2, 3), "BATCH000001"),
            (2, "AW2", 'Smith, "Jr"', "Germany", "Female", None, "BATCH000001"),
            (3, "AW3", "two\nlines", "n/a", "n/a", None, "BATCH000001"),
            (5, "AW5", "Éva", "n/a", "Female", None, "BATCH000001"),
        ]
    )


def test_a_step_is_skipped_only_when_nothing_it_reads_changed(
    conn: psycopg.Connection, client1: ClientConfig, tmp_path: Path
) -> None:
    load_customers(conn, client1, tmp_path)
    assert not step(conn, client1, "silver", "crm_cust_info", "BATCH000001").skipped
    written = silver_customers(conn)
    assert [r[:2] for r in written] == [(1, "Jon"), (2, 'Smith, "Jr"'), (3, "two\nlines"), (5, "Éva")]
    assert not step(conn, client1, "gold", "dim_customers", "BATCH000001").skipped

    # nothing changed: both are skipped and the silver rows are the very same rows
    assert step(conn, client1, "silver", "crm_cust_info", "BATCH000001").skipped
    assert step(conn, client1, "gold", "dim_customers", "BATCH000001").skipped
    assert silver_customers(conn) == written

    # bronze reloaded (a new file for the batch): silver runs, then gold, then both skip
    load_customers(conn, client1, tmp_path / "again", GOOD_ROWS.replace(" Jon ", "John"))
    assert not step(conn, client1, "silver", "crm_cust_info", "BATCH000001").skipped
    assert silver_customers(conn)[0][1] == "John"
    assert not step(conn, client1, "gold", "dim_customers", "BATCH000001").skipped
    assert step(conn, client1, "silver", "crm_cust_info", "BATCH000001").skipped
    assert step(conn, client1, "gold", "dim_customers", "BATCH000001").skipped
    assert conn.execute(
        "SELECT first_name FROM gold_client1.dim_customers WHERE customer_id = 1"
    ).fetchone() == ("John",)

    # another batch writing a table the step reads makes it run again
    conn.execute(
        """INSERT INTO bronze_client1.crm_cust_info (cst_id, dwh_batch_id, dwh_source_file, dwh_row_number)
           VALUES (9, 'BATCH000002', 'f.csv', 1)"""
    )
    assert not step(conn, client1, "silver", "crm_cust_info", "BATCH000002").skipped
    assert not step(conn, client1, "gold", "dim_customers", "BATCH000001").skipped

    # a changed SQL text runs; a failing step leaves the batch's rows and state as they were
    text = client1.render_sql("silver/crm_cust_info.sql")
    edited = text + "\n-- edited\n"
    assert not step(conn, client1, "silver", "crm_cust_info", "BATCH000001", text=edited).skipped
    before = silver_customers(conn)
    with pytest.raises(psycopg.errors.DivisionByZero):
        step(conn, client1, "silver", "crm_cust_info", "BATCH000001", text=text + ";\nSELECT 1 / 0;")
    assert silver_customers(conn) == before
    assert step(conn, client1, "silver", "crm_cust_info", "BATCH000001", text=edited).skipped
