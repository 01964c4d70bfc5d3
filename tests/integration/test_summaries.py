"""client1's summary tables (views/*.sql), updated per batch for what the batch touched,
hold exactly what a recomputation from the whole fact table gives: after lines move to
another customer, product or month, late-arriving customers and products, a product that
changes line, a renamed customer (with or without a line of theirs), a batch whose
refresh never ran, and a skipped re-run."""

from __future__ import annotations

import logging

import psycopg
import pytest

from include.etl.config import ClientConfig
from include.etl.warehouse.sqlstep import run_step

log = logging.getLogger("test.summaries")

# The definitions of the two summaries: what the whole fact table says they hold.
MONTHLY = """
SELECT date_trunc('month', f.order_date)::date, coalesce(p.product_line, 'n/a'),
       count(DISTINCT f.order_number), count(*), count(DISTINCT f.customer_key),
       sum(f.quantity), sum(f.sales_amount)
FROM gold_client1.fact_sales AS f
LEFT JOIN gold_client1.dim_products AS p ON p.product_key = f.product_key
WHERE f.order_date IS NOT NULL
GROUP BY 1, 2
ORDER BY 1, 2"""
CUSTOMERS = """
SELECT c.customer_key, c.customer_id, c.customer_number, c.first_name, c.last_name, c.country,
       count(DISTINCT f.order_number), count(f.order_number), coalesce(sum(f.quantity), 0),
       coalesce(sum(f.sales_amount), 0),
       round(coalesce(sum(f.sales_amount), 0) / nullif(count(DISTINCT f.order_number), 0), 2),
       min(f.order_date), max(f.order_date)
FROM gold_client1.dim_customers AS c
LEFT JOIN gold_client1.fact_sales AS f ON f.customer_key = c.customer_key
GROUP BY c.customer_key
ORDER BY 1"""


def customer(conn, batch: str, customer_id: int, name: str) -> None:
    conn.execute(
        """INSERT INTO gold_client1.dim_customers (customer_id, customer_number, first_name,
               last_name, country, marital_status, gender, dwh_batch_id)
           VALUES (%s, %s, %s, 'Doe', 'Germany', 'n/a', 'n/a', %s)
           ON CONFLICT (customer_id) DO UPDATE SET first_name = EXCLUDED.first_name,
               dwh_batch_id = EXCLUDED.dwh_batch_id""",
        (customer_id, f"AW{customer_id:08d}", name, batch),
    )


def product(conn, batch: str, number: str, line: str) -> None:
    conn.execute(
        """INSERT INTO gold_client1.dim_products (product_number, product_line, dwh_batch_id)
           VALUES (%s, %s, %s)
           ON CONFLICT (product_number) DO UPDATE SET product_line = EXCLUDED.product_line,
               dwh_batch_id = EXCLUDED.dwh_batch_id""",
        (number, line, batch),
    )


def line(conn, batch: str, row: int, order: str, number: str, customer_id: int, day: str, qty: int) -> None:
    conn.execute(
        """INSERT INTO silver_client1.crm_sales_details (sls_ord_num, sls_prd_key, sls_cust_id,
               sls_order_dt, sls_sales, sls_quantity, sls_price, dwh_batch_id, dwh_row_number)
           VALUES (%s, %s, %s, %s::date, %s, %s, 10, %s, %s)""",
        (order, number, customer_id, day, 10 * qty, qty, batch, row),
    )


def run(conn, cfg: ClientConfig, batch: str, *, layers=("gold", "views")) -> dict[str, bool]:
    """The fact step and the summaries' steps for a batch; which of them were skipped."""
    skipped = {}
    steps = [("gold", s.name, s.sql, s.table) for s in cfg.gold if s.name == "fact_sales"]
    steps += [("views", v.name, v.sql, v.name) for v in cfg.views]
    for layer, name, path, table in steps:
        if layer not in layers:
            continue
        result = run_step(
            conn,
            client=cfg.client,
            layer=layer,
            step=name,
            target=f"{cfg.gold_schema}.{table}",
            sql_text=cfg.render_sql(path),
            batch_id=batch,
            log=log,
        )
        skipped[name] = result.skipped
    return skipped


MONTHS = "gold_client1.mv_monthly_sales_by_product_line"


def assert_summaries_match_the_fact(conn: psycopg.Connection) -> None:
    assert (
        conn.execute(f"SELECT * FROM {MONTHS} ORDER BY 1, 2").fetchall() == conn.execute(MONTHLY).fetchall()
    )
    assert conn.execute("SELECT * FROM gold_client1.mv_customer_lifetime_value ORDER BY 1").fetchall() == (
        conn.execute(CUSTOMERS).fetchall()
    )


@pytest.fixture
def batch1(conn: psycopg.Connection, cfg: ClientConfig) -> ClientConfig:
    customer(conn, "B1", 1, "Ann")
    customer(conn, "B1", 2, "Bob")
    product(conn, "B1", "P1", "M")
    product(conn, "B1", "P2", "R")
    line(conn, "B1", 1, "SO1", "P1", 1, "2024-01-05", 1)
    line(conn, "B1", 2, "SO2", "P2", 2, "2024-02-10", 2)
    line(conn, "B1", 3, "SO3", "P1", 3, "2024-01-20", 3)  # customer 3 not known yet
    line(conn, "B1", 4, "SO4", "PX", 1, "2024-03-01", 4)  # product PX not known yet
    run(conn, cfg, "B1")
    assert_summaries_match_the_fact(conn)
    return cfg


def test_a_batch_updates_what_it_touched(conn: psycopg.Connection, batch1: ClientConfig) -> None:
    cfg = batch1
    customer(conn, "B2", 1, "Anne")  # renamed
    customer(conn, "B2", 3, "Cy")  # arrives: SO3 is linked to them late
    product(conn, "B2", "PX", "T")  # arrives: SO4 is linked to it late
    product(conn, "B2", "P2", "S")  # changes line: February's rows move from R to S
    line(conn, "B2", 1, "SO1", "P1", 2, "2024-04-02", 1)  # moves to Bob, and to April
    line(conn, "B2", 2, "SO5", "P1", 3, "2024-05-01", 5)  # new
    moved_before = conn.execute("SELECT count(*) FROM gold_client1.fact_sales_moves").fetchone()[0]

    assert run(conn, cfg, "B2") == {
        "fact_sales": False,
        "mv_monthly_sales_by_product_line": False,
        "mv_customer_lifetime_value": False,
    }

    assert_summaries_match_the_fact(conn)
    # each step analyzed the table it wrote, for the next steps' plans
    analyzed = conn.execute(
        "SELECT relname FROM pg_stat_user_tables"
        " WHERE schemaname = 'gold_client1' AND last_analyze IS NOT NULL"
    ).fetchall()
    assert {"fact_sales", "mv_monthly_sales_by_product_line", "mv_customer_lifetime_value"} <= {
        r for (r,) in analyzed
    }
    months = conn.execute(
        f"SELECT sales_month::text, product_line, sales_lines FROM {MONTHS} ORDER BY 1, 2"
    ).fetchall()
    assert months == [
        ("2024-01-01", "M", 1),  # SO3 (SO1 moved away to April)
        ("2024-02-01", "S", 1),
        ("2024-03-01", "T", 1),
        ("2024-04-01", "M", 1),
        ("2024-05-01", "M", 1),
    ]
    # where SO1 was before it moved, and the months of the two late links
    moves = conn.execute(
        "SELECT customer_key IS NOT NULL, order_date::text FROM gold_client1.fact_sales_moves"
        " WHERE dwh_batch_id = 'B2' ORDER BY 2, 1"
    ).fetchall()
    assert len(moves) == 3 and moved_before == 0
    assert [d for _, d in moves] == ["2024-01-05", "2024-01-20", "2024-03-01"]

    # The same batch again, nothing changed: every step is skipped, the summaries stay.
    assert run(conn, cfg, "B2") == dict.fromkeys(
        ["fact_sales", "mv_monthly_sales_by_product_line", "mv_customer_lifetime_value"], True
    )
    assert_summaries_match_the_fact(conn)


def test_a_customer_the_dimension_wrote_without_a_line_is_updated(
    conn: psycopg.Connection, batch1: ClientConfig
) -> None:
    """Customers a batch changed in the dimension alone (no sales line of theirs came or
    moved) are found by the batch the dimension row carries: a rename shows, a new
    customer gets a row of zeros, the others are left as they were."""
    customer(conn, "B2", 2, "Robert")  # renamed; SO2 stays as it was
    customer(conn, "B2", 4, "Dee")  # new, no sales yet

    run(conn, batch1, "B2")

    assert_summaries_match_the_fact(conn)
    rows = conn.execute(
        "SELECT customer_id, first_name, orders, sales_lines, lifetime_value::int"
        " FROM gold_client1.mv_customer_lifetime_value ORDER BY customer_id"
    ).fetchall()
    assert rows == [(1, "Ann", 2, 2, 50), (2, "Robert", 1, 1, 20), (4, "Dee", 0, 0, 0)]


def test_a_batch_whose_refresh_never_ran_is_caught_up(conn: psycopg.Connection, batch1: ClientConfig) -> None:
    cfg = batch1
    line(conn, "B2", 1, "SO6", "P2", 2, "2024-06-01", 6)
    run(conn, cfg, "B2", layers=("gold",))  # the batch failed after gold: no refresh
    line(conn, "B3", 1, "SO7", "P1", 1, "2024-07-01", 7)

    run(conn, cfg, "B3")

    assert_summaries_match_the_fact(conn)
    june = conn.execute(f"SELECT sales_lines FROM {MONTHS} WHERE sales_month = '2024-06-01'").fetchone()
    assert june == (1,)


def test_a_first_run_replaces_whatever_the_summaries_held(
    conn: psycopg.Connection, cfg: ClientConfig
) -> None:
    """No state recorded for the summaries (a first run, or its state rows removed):
    every row is recomputed and rows of months or customers the fact does not have go."""
    customer(conn, "B1", 1, "Ann")
    product(conn, "B1", "P1", "M")
    line(conn, "B1", 1, "SO1", "P1", 1, "2024-01-05", 1)
    conn.execute(
        f"INSERT INTO {MONTHS} (sales_month, product_line, orders, sales_lines, customers, quantity,"
        " sales_amount) VALUES ('1999-01-01', 'M', 9, 9, 9, 9, 9), ('2024-01-01', 'M', 9, 9, 9, 9, 9)"
    )
    conn.execute(
        "INSERT INTO gold_client1.mv_customer_lifetime_value (customer_key, customer_id, orders,"
        " sales_lines, quantity, lifetime_value) VALUES (-1, -1, 9, 9, 9, 9)"
    )

    run(conn, cfg, "B1")

    assert_summaries_match_the_fact(conn)
    assert conn.execute(f"SELECT count(*) FROM {MONTHS}").fetchone() == (1,)
