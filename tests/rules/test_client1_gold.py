"""client1's gold rules (the star schema and its two summaries), each pinned by given
silver (or gold) rows and the gold rows expected.

Surrogate keys are identities: where a test cannot know their values it shows them as
the natural key of the row they point to (the customer id, the product number).
"""

from __future__ import annotations

from tests.rules.tables import expect, given, run_step

B1, B2, B3 = "BATCH000001", "BATCH000002", "BATCH000003"

# A fact line with its dimension keys shown as what they point to.
FACT_LINKS = """
    SELECT f.order_number, f.product_number, p.product_number AS dim_product,
           c.customer_id AS dim_customer, f.dwh_batch_id
    FROM gold_client1.fact_sales AS f
    LEFT JOIN gold_client1.dim_products AS p ON p.product_key = f.product_key
    LEFT JOIN gold_client1.dim_customers AS c ON c.customer_key = f.customer_key"""


def again(conn, step: str) -> None:
    """Forget that a step ran, so running it for the same batch runs its SQL again
    (otherwise the task skips it: nothing it reads has changed)."""
    conn.execute(
        "DELETE FROM tools.sql_step_state WHERE client_schema = 'client1' AND step_name = %s", (step,)
    )


def updated_at(conn, table: str, key: str) -> dict:
    rows = conn.execute(f"SELECT {key}, dwh_updated_at FROM gold_client1.{table}").fetchall()
    return dict(rows)


# ------------------------------------------------------------------ dim_customers
def test_customers_are_enriched_from_the_erp(conn, client1, client_dags) -> None:
    """The CRM customer with the ERP birth date and country; gender from the CRM, from
    the ERP when the CRM does not know it, else 'n/a'; 'n/a' country when the ERP has
    no location. ERP rows of customers the CRM does not have are not customers."""
    given(conn, "silver_client1.crm_cust_info", """
        cst_id | cst_key | cst_firstname | cst_lastname | cst_marital_status | cst_gndr | cst_create_date
        1      | AW1     | Jon           | Yang         | Married            | Male     | 2024-01-01   # ERP agrees
        2      | AW2     | Ann           | Lee          | Single             | n/a      | 2024-01-02   # gender from the ERP
        3      | AW3     | Bo            | Ka           | n/a                | n/a      |              # nothing in the ERP
        4      | AW4     | Cy            | Do           | Single             | Female   | 2024-01-03   # CRM beats ERP
        5      |         | Ed            | Fu           | Married            | Male     | 2024-01-05   # no key: no ERP
        6      | AW6     | Gi            | Ho           | Married            | n/a      | 2024-01-06   # neither knows
    """)  # fmt: skip
    given(conn, "silver_client1.erp_cust_az12", """
        cid | bdate      | gen
        AW1 | 1970-01-01 | Male
        AW2 | 1980-02-02 | Female
        AW4 | 1990-03-03 | Male
        AW6 |            | n/a
        AW9 | 1999-09-09 | Male     # not a CRM customer
    """)  # fmt: skip
    given(conn, "silver_client1.erp_loc_a101", """
        cid | cntry
        AW1 | Germany
        AW2 | United States
        AW4 | n/a
        AW9 | France
    """)  # fmt: skip

    run_step(conn, client_dags["client1"], "gold.dim_customers")

    expect(conn, "gold_client1.dim_customers", """
        customer_id | customer_number | first_name | last_name | country       | marital_status | gender | birthdate  | create_date | dwh_batch_id
        1           | AW1             | Jon        | Yang      | Germany       | Married        | Male   | 1970-01-01 | 2024-01-01  | BATCH000001
        2           | AW2             | Ann        | Lee       | United States | Single         | Female | 1980-02-02 | 2024-01-02  | BATCH000001
        3           | AW3             | Bo         | Ka        | n/a           | n/a            | n/a    |            |             | BATCH000001
        4           | AW4             | Cy         | Do        | n/a           | Single         | Female | 1990-03-03 | 2024-01-03  | BATCH000001
        5           |                 | Ed         | Fu        | n/a           | Married        | Male   |            | 2024-01-05  | BATCH000001
        6           | AW6             | Gi         | Ho        | n/a           | Married        | n/a    |            | 2024-01-06  | BATCH000001
    """, ignore=["customer_key"])  # fmt: skip


def test_customers_take_the_latest_erp_rows_as_of_their_batch(conn, client1, client_dags) -> None:
    """The ERP rows of any batch up to the customer's batch count (an ERP file delivered
    earlier still enriches), the latest batch first; a later batch's rows do not."""
    given(conn, "silver_client1.erp_cust_az12", """
        cid | bdate      | gen    | dwh_batch_id
        AW1 | 1970-01-01 | Female | BATCH000001
        AW1 | 1971-01-01 | Male   | BATCH000002   # the latest up to BATCH000002
        AW1 | 1972-01-01 | Female | BATCH000003   # after it: not seen
    """)  # fmt: skip
    given(conn, "silver_client1.erp_loc_a101", """
        cid | cntry         | dwh_batch_id
        AW1 | Germany       | BATCH000001   # an earlier delivery still counts
        AW1 | France        | BATCH000003
        AW2 | Canada        | BATCH000002
    """)  # fmt: skip
    given(conn, "silver_client1.crm_cust_info", """
        cst_id | cst_key | cst_firstname | cst_marital_status | cst_gndr
        1      | AW1     | Jon           | Married            | n/a
        2      | AW2     | Ann           | Single             | Female
    """, batch=B2)  # fmt: skip

    run_step(conn, client_dags["client1"], "gold.dim_customers", batch=B2)

    expect(conn, "SELECT * FROM gold_client1.dim_customers", """
        customer_id | country | gender | birthdate  | dwh_batch_id
        1           | Germany | Male   | 1971-01-01 | BATCH000002
        2           | Canada  | Female |            | BATCH000002
    """)  # fmt: skip


def test_customers_merge_by_id_and_an_older_batch_never_wins(conn, client1, client_dags) -> None:
    """A customer keeps its key when a later batch changes it; a new customer is added;
    running an older batch again changes nothing; an unchanged customer is not rewritten."""
    dag = client_dags["client1"]
    crm = "silver_client1.crm_cust_info"
    given(conn, crm, """
        cst_id | cst_key | cst_lastname | cst_marital_status | cst_gndr
        1      | AW1     | Yang         | Married            | Male
        2      | AW2     | Lee          | Single             | Female
    """)  # fmt: skip
    run_step(conn, dag, "gold.dim_customers", batch=B1)
    keys = dict(conn.execute("SELECT customer_id, customer_key FROM gold_client1.dim_customers"))
    given(conn, crm, """
        cst_id | cst_key | cst_lastname | cst_marital_status | cst_gndr
        1      | AW1     | Young        | Married            | Male     # renamed
        3      | AW3     | Diaz         | Single             | n/a      # new
    """, batch=B2)  # fmt: skip
    run_step(conn, dag, "gold.dim_customers", batch=B2)
    written = updated_at(conn, "dim_customers", "customer_id")

    again(conn, "dim_customers")
    run_step(conn, dag, "gold.dim_customers", batch=B1)  # older: must not undo the rename
    again(conn, "dim_customers")
    run_step(conn, dag, "gold.dim_customers", batch=B2)  # the same again: nothing to write

    expect(conn, "SELECT * FROM gold_client1.dim_customers", """
        customer_id | last_name | dwh_batch_id
        1           | Young     | BATCH000002
        2           | Lee       | BATCH000001
        3           | Diaz      | BATCH000002
    """)  # fmt: skip
    after = dict(conn.execute("SELECT customer_id, customer_key FROM gold_client1.dim_customers"))
    assert (after[1], after[2]) == (keys[1], keys[2])  # keys never change once assigned
    assert updated_at(conn, "dim_customers", "customer_id") == written  # no row rewritten


# ------------------------------------------------------------------ dim_products
def test_products_are_the_current_rows_with_their_category(conn, client1, client_dags) -> None:
    """Only the current history row (no end date) is a product; its category comes from
    the ERP (NULL when the ERP does not know it). Two current rows with one product
    number: the later start wins (a start beats none), then the higher id. An empty
    product number is no product."""
    given(conn, "silver_client1.crm_prd_info", """
        prd_id | prd_key          | cat_id | prd_number | prd_nm     | prd_cost | prd_line    | prd_start_dt | prd_end_dt
        210    | CO-RF-FR-R92B-58 | CO_RF  | FR-R92B-58 | Frame 1    | 100      | Road        | 2023-01-01   | 2023-12-31  # history
        211    | CO-RF-FR-R92B-58 | CO_RF  | FR-R92B-58 | Frame 2    | 120      | Road        | 2024-01-01   |             # current
        212    | BI-MB-BK-M82B-44 | BI_MB  | BK-M82B-44 | Mountain   | 0        | Mountain    | 2024-02-01   |             # no ERP category
        230    | AC-HE-HL-U509    | AC_HE  | HL-U509    | Helmet A   | 35       | Other Sales | 2024-01-01   |             # one number, two
        231    | CL-HE-HL-U509    | CL_HE  | HL-U509    | Helmet B   | 36       | Other Sales | 2024-02-01   |             #   keys: later start
        241    | XX-BC-WB-H098    | XX_BC  | WB-H098    | Bottle B   | 6        | Other Sales | 2024-01-01   |             # same start:
        240    | AC-BC-WB-H098    | AC_BC  | WB-H098    | Bottle A   | 5        | Other Sales | 2024-01-01   |             #   higher id
        261    | XY-PU-PU-0452    | XY_PU  | PU-0452    | Pump ?     | 4        | Other Sales |              |             # no start loses
        260    | AC-PU-PU-0452    | AC_PU  | PU-0452    | Pump       | 5        | Other Sales | 2024-01-01   |
        250    | AC-LI-LT-H902    | AC_LI  | LT-H902    | Light      | 12       | Touring     |              |             # alone: current
        223    | AB               | AB     | ''         | Short      | 0        | n/a         | 2024-01-01   |             # no number
    """)  # fmt: skip
    given(conn, "silver_client1.erp_px_cat_g1v2", """
        id    | cat         | subcat            | maintenance
        CO_RF | Components  | Road Frames       | No
        AC_HE | Accessories | Helmets           | Yes
        CL_HE | Clothing    | Head              | No
        AC_BC | Accessories | Bottles and Cages | No
        AC_PU | Accessories | Pumps             | Yes
        AC_LI | Accessories | Lights            | Yes
    """)  # fmt: skip

    run_step(conn, client_dags["client1"], "gold.dim_products")

    expect(conn, "gold_client1.dim_products", """
        product_number | product_id | product_name | category_id | category    | subcategory | maintenance | cost | product_line | start_date | dwh_batch_id
        FR-R92B-58     | 211        | Frame 2      | CO_RF       | Components  | Road Frames | No          | 120  | Road         | 2024-01-01 | BATCH000001
        BK-M82B-44     | 212        | Mountain     | BI_MB       |             |             |             | 0    | Mountain     | 2024-02-01 | BATCH000001
        HL-U509        | 231        | Helmet B     | CL_HE       | Clothing    | Head        | No          | 36   | Other Sales  | 2024-02-01 | BATCH000001
        WB-H098        | 241        | Bottle B     | XX_BC       |             |             |             | 6    | Other Sales  | 2024-01-01 | BATCH000001
        PU-0452        | 260        | Pump         | AC_PU       | Accessories | Pumps       | Yes         | 5    | Other Sales  | 2024-01-01 | BATCH000001
        LT-H902        | 250        | Light        | AC_LI       | Accessories | Lights      | Yes         | 12   | Touring      |            | BATCH000001
    """, ignore=["product_key"])  # fmt: skip


def test_products_upsert_by_number_and_an_older_batch_never_wins(conn, client1, client_dags) -> None:
    """The category is the ERP's latest as of the product's batch; a later batch updates
    the product in place (same key); an older batch run again changes nothing, and an
    unchanged product is not rewritten."""
    dag = client_dags["client1"]
    product = """
        prd_id | prd_key          | cat_id | prd_number | prd_cost | prd_line | prd_start_dt
        211    | CO-RF-FR-R92B-58 | CO_RF  | FR-R92B-58 | {cost}   | Road     | 2024-01-01
    """
    given(conn, "silver_client1.erp_px_cat_g1v2", """
        id    | cat        | maintenance | dwh_batch_id
        CO_RF | Components | No          | BATCH000001
        CO_RF | Components | Yes         | BATCH000003   # later than both runs: not seen
    """)  # fmt: skip
    given(conn, "silver_client1.crm_prd_info", product.format(cost=120), batch=B1)
    run_step(conn, dag, "gold.dim_products", batch=B1)
    (key,) = conn.execute("SELECT product_key FROM gold_client1.dim_products").fetchone()
    given(conn, "silver_client1.crm_prd_info", product.format(cost=130), batch=B2)
    run_step(conn, dag, "gold.dim_products", batch=B2)
    written = updated_at(conn, "dim_products", "product_number")

    again(conn, "dim_products")
    run_step(conn, dag, "gold.dim_products", batch=B1)  # older: keeps 130
    again(conn, "dim_products")
    run_step(conn, dag, "gold.dim_products", batch=B2)  # unchanged: not rewritten

    expect(conn, "SELECT * FROM gold_client1.dim_products", f"""
        product_key | product_number | cost | maintenance | dwh_batch_id
        {key}       | FR-R92B-58     | 130  | No          | BATCH000002
    """)  # fmt: skip
    assert updated_at(conn, "dim_products", "product_number") == written


# ------------------------------------------------------------------ fact_sales
def test_sales_lines_find_their_dimensions_and_collapse_duplicates(conn, client1, client_dags) -> None:
    """One fact row per (order, product number), the last delivered row of the batch;
    product and customer keys looked up (NULL when unknown, the ids kept for later)."""
    given(conn, "gold_client1.dim_products", """
        product_number | dwh_batch_id
        BK-R93R-62     | BATCH000001
        HL-U509        | BATCH000001
    """)  # fmt: skip
    given(conn, "gold_client1.dim_customers", """
        customer_id | country | marital_status | gender | dwh_batch_id
        11000       | n/a     | n/a            | n/a    | BATCH000001
        11001       | n/a     | n/a            | n/a    | BATCH000001
    """)  # fmt: skip
    given(conn, "silver_client1.crm_sales_details", """
        sls_ord_num | sls_prd_key | sls_cust_id | sls_order_dt | sls_ship_dt | sls_due_dt | sls_sales | sls_quantity | sls_price | dwh_row_number
        SO1         | BK-R93R-62  | 11000       | 2024-01-05   | 2024-01-12  | 2024-01-19 | 20        | 2            | 10        | 1   # both known
        SO1         | HL-U509     | 11000       | 2024-01-05   | 2024-01-12  | 2024-01-19 | 35        | 1            | 35        | 2   # same order: own line
        SO2         | XX-NEW      | 11001       | 2024-01-06   |             |            | 5         | 1            | 5         | 3   # unknown product
        SO3         | HL-U509     | 99999       | 2024-01-07   |             |            | 35        | 1            | 35        | 4   # unknown customer
        SO4         | HL-U509     |             |              |             |            |           | 1            |           | 5   # no customer at all
        SO5         | BK-R93R-62  | 11001       | 2024-01-08   |             |            | 10        | 1            | 10        | 6   # twice: the last
        SO5         | BK-R93R-62  | 11001       | 2024-01-08   |             |            | 30        | 3            | 10        | 7   #   row wins
        SO6         | BK-R93R-62  | 11001       | 2024-01-09   |             |            | 50        | 5            | 10        | 9   # the last row comes
        SO6         | BK-R93R-62  | 11001       | 2024-01-09   |             |            | 40        | 4            | 10        | 8   #   first in the table
    """)  # fmt: skip

    run_step(conn, client_dags["client1"], "gold.fact_sales")

    expect(conn, "gold_client1.fact_sales", """
        order_number | product_number | customer_id | order_date | shipping_date | due_date   | sales_amount | quantity | price | dwh_batch_id
        SO1          | BK-R93R-62     | 11000       | 2024-01-05 | 2024-01-12    | 2024-01-19 | 20           | 2        | 10    | BATCH000001
        SO1          | HL-U509        | 11000       | 2024-01-05 | 2024-01-12    | 2024-01-19 | 35           | 1        | 35    | BATCH000001
        SO2          | XX-NEW         | 11001       | 2024-01-06 |               |            | 5            | 1        | 5     | BATCH000001
        SO3          | HL-U509        | 99999       | 2024-01-07 |               |            | 35           | 1        | 35    | BATCH000001
        SO4          | HL-U509        |             |            |               |            |              | 1        |       | BATCH000001
        SO5          | BK-R93R-62     | 11001       | 2024-01-08 |               |            | 30           | 3        | 10    | BATCH000001
        SO6          | BK-R93R-62     | 11001       | 2024-01-09 |               |            | 50           | 5        | 10    | BATCH000001
    """, ignore=["product_key", "customer_key"])  # fmt: skip
    expect(conn, FACT_LINKS, """
        order_number | product_number | dim_product | dim_customer | dwh_batch_id
        SO1          | BK-R93R-62     | BK-R93R-62  | 11000        | BATCH000001
        SO1          | HL-U509        | HL-U509     | 11000        | BATCH000001
        SO2          | XX-NEW         |             | 11001        | BATCH000001
        SO3          | HL-U509        | HL-U509     |              | BATCH000001
        SO4          | HL-U509        | HL-U509     |              | BATCH000001
        SO5          | BK-R93R-62     | BK-R93R-62  | 11001        | BATCH000001
        SO6          | BK-R93R-62     | BK-R93R-62  | 11001        | BATCH000001
    """)  # fmt: skip


def test_sales_lines_link_late_dimensions_and_an_older_batch_never_wins(conn, client1, client_dags) -> None:
    """A later batch updates a line it delivers again and links the earlier lines whose
    product or customer has arrived since; where a line moved from is recorded for the
    summaries; an older batch run again changes nothing."""
    dag = client_dags["client1"]
    given(conn, "gold_client1.dim_products", "product_number | dwh_batch_id\nBK-R93R-62 | BATCH000001")
    given(conn, "gold_client1.dim_customers", """
        customer_id | country | marital_status | gender | dwh_batch_id
        11000       | n/a     | n/a            | n/a    | BATCH000001
    """)  # fmt: skip
    given(conn, "silver_client1.crm_sales_details", """
        sls_ord_num | sls_prd_key | sls_cust_id | sls_order_dt | sls_sales | sls_quantity | sls_price
        SO1         | BK-R93R-62  | 11000       | 2024-01-05   | 10        | 1            | 10
        SO2         | HL-U509     | 11001       | 2024-01-06   | 35        | 1            | 35     # neither known yet
    """, batch=B1)  # fmt: skip
    run_step(conn, dag, "gold.fact_sales", batch=B1)

    given(conn, "gold_client1.dim_products", "product_number | dwh_batch_id\nHL-U509 | BATCH000002")
    given(conn, "gold_client1.dim_customers", """
        customer_id | country | marital_status | gender | dwh_batch_id
        11001       | n/a     | n/a            | n/a    | BATCH000002
    """)  # fmt: skip
    given(conn, "silver_client1.crm_sales_details", """
        sls_ord_num | sls_prd_key | sls_cust_id | sls_order_dt | sls_sales | sls_quantity | sls_price
        SO1         | BK-R93R-62  | 11000       | 2024-02-01   | 50        | 5            | 10     # corrected, moved
        SO3         | BK-R93R-62  | 11000       | 2024-02-02   | 10        | 1            | 10     # new
    """, batch=B2)  # fmt: skip
    run_step(conn, dag, "gold.fact_sales", batch=B2)
    again(conn, "fact_sales")
    run_step(conn, dag, "gold.fact_sales", batch=B1)  # older: SO1 stays as B2 wrote it

    expect(conn, "SELECT * FROM gold_client1.fact_sales", """
        order_number | order_date | quantity | dwh_batch_id
        SO1          | 2024-02-01 | 5        | BATCH000002
        SO2          | 2024-01-06 | 1        | BATCH000001
        SO3          | 2024-02-02 | 1        | BATCH000002
    """)  # fmt: skip
    expect(conn, FACT_LINKS, """
        order_number | product_number | dim_product | dim_customer | dwh_batch_id
        SO1          | BK-R93R-62     | BK-R93R-62  | 11000        | BATCH000002
        SO2          | HL-U509        | HL-U509     | 11001        | BATCH000001
        SO3          | BK-R93R-62     | BK-R93R-62  | 11000        | BATCH000002
    """)  # fmt: skip
    expect(conn, """
        SELECT m.dwh_batch_id, c.customer_id, p.product_number, m.order_date
        FROM gold_client1.fact_sales_moves AS m
        LEFT JOIN gold_client1.dim_products AS p ON p.product_key = m.product_key
        LEFT JOIN gold_client1.dim_customers AS c ON c.customer_key = m.customer_key""", """
        dwh_batch_id | customer_id | product_number | order_date
        BATCH000002  | 11000       | BK-R93R-62     | 2024-01-05   # SO1 left January
        BATCH000002  |             |                | 2024-01-06   # SO2 linked to its product
        BATCH000002  |             |                | 2024-01-06   # SO2 linked to its customer
    """)  # fmt: skip


def test_an_unchanged_sales_line_is_not_rewritten(conn, client1, client_dags) -> None:
    dag = client_dags["client1"]
    given(conn, "silver_client1.crm_sales_details", """
        sls_ord_num | sls_prd_key | sls_cust_id | sls_order_dt | sls_sales | sls_quantity | sls_price
        SO1         | BK-R93R-62  | 11000       | 2024-01-05   | 10        | 1            | 10
    """)  # fmt: skip
    given(conn, "gold_client1.fact_sales", """
        order_number | product_number | order_date | quantity | dwh_batch_id
        SO0          | BK-R93R-62     | 2023-12-01 | 1        | BATCH000000   # makes the table not empty
    """)  # fmt: skip
    run_step(conn, dag, "gold.fact_sales")
    written = updated_at(conn, "fact_sales", "order_number")
    again(conn, "fact_sales")
    run_step(conn, dag, "gold.fact_sales")
    assert updated_at(conn, "fact_sales", "order_number") == written
    assert conn.execute("SELECT count(*) FROM gold_client1.fact_sales_moves").fetchone() == (0,)


# ------------------------------------------------------------------ summaries
def given_star(conn) -> None:
    """Three customers (keys 1-3), four products (keys 1-4), nine sales lines."""
    given(conn, "gold_client1.dim_customers", """
        customer_id | customer_number | first_name | last_name | country       | marital_status | gender | dwh_batch_id
        11000       | AW00011000      | Jon        | Yang      | Germany       | n/a            | n/a    | BATCH000001
        11001       | AW00011001      | Ann        | Lee       | United States | n/a            | n/a    | BATCH000001
        11002       | AW00011002      | Bo         | Ka        | n/a           | n/a            | n/a    | BATCH000001
    """)  # fmt: skip
    given(conn, "gold_client1.dim_products", """
        product_number | product_line | dwh_batch_id
        BK-R93R-62     | Road         | BATCH000001
        HL-U509        | Mountain     | BATCH000001
        WB-H098        |              | BATCH000001
        BK-R93R-44     | Road         | BATCH000001
    """)  # fmt: skip
    given(conn, "gold_client1.fact_sales", """
        order_number | product_number | product_key | customer_key | order_date | sales_amount | quantity | dwh_batch_id
        SO1          | BK-R93R-62     | 1           | 1            | 2024-01-05 | 20           | 2        | BATCH000001
        SO1          | HL-U509        | 2           | 1            | 2024-01-05 | 50           | 1        | BATCH000001
        SO1          | BK-R93R-44     | 4           | 1            | 2024-01-05 | 15           | 1        | BATCH000001   # SO1's 2nd Road line
        SO2          | BK-R93R-62     | 1           | 2            | 2024-01-20 | 10           | 1        | BATCH000001
        SO3          | BK-R93R-62     | 1           | 1            | 2024-02-03 | 30           | 3        | BATCH000001
        SO4          | WB-H098        | 3           | 2            | 2024-02-10 | 5            | 1        | BATCH000001   # no line: n/a
        SO5          | XX-NEW         |             | 2            | 2024-02-11 | 7            | 1        | BATCH000001   # unknown product: n/a
        SO6          | BK-R93R-62     | 1           |              | 2024-02-12 | 9            | 1        | BATCH000001   # unknown customer
        SO7          | BK-R93R-62     | 1           | 1            |            | 100          | 1        | BATCH000001   # no order date
    """)  # fmt: skip


def test_monthly_sales_are_summed_per_month_and_product_line(conn, client1, client_dags) -> None:
    """Per order month and product line ('n/a' when the product or its line is unknown):
    distinct orders, lines, distinct known customers, quantity and sales. Lines without
    an order date are in no month."""
    given_star(conn)

    run_step(conn, client_dags["client1"], "refresh_views.mv_monthly_sales_by_product_line")

    expect(conn, "gold_client1.mv_monthly_sales_by_product_line", """
        sales_month | product_line | orders | sales_lines | customers | quantity | sales_amount
        2024-01-01  | Road         | 2      | 3           | 2         | 4        | 45
        2024-01-01  | Mountain     | 1      | 1           | 1         | 1        | 50
        2024-02-01  | Road         | 2      | 2           | 1         | 4        | 39
        2024-02-01  | n/a          | 2      | 2           | 1         | 2        | 12
    """)  # fmt: skip


def test_customer_lifetime_value_counts_every_line_of_a_customer(conn, client1, client_dags) -> None:
    """Every customer, with what they bought so far: distinct orders, lines, quantity,
    value, value per order (rounded to cents), first and last order date; zero and no
    dates for a customer with no sales. A line without an order date still counts."""
    given_star(conn)

    run_step(conn, client_dags["client1"], "refresh_views.mv_customer_lifetime_value")

    expect(conn, "gold_client1.mv_customer_lifetime_value", """
        customer_key | customer_id | customer_number | first_name | last_name | country       | orders | sales_lines | quantity | lifetime_value | average_order_value | first_order_date | last_order_date
        1            | 11000       | AW00011000      | Jon        | Yang      | Germany       | 3      | 5           | 8        | 215            | 71.67               | 2024-01-05       | 2024-02-03
        2            | 11001       | AW00011001      | Ann        | Lee       | United States | 3      | 3           | 3        | 22             | 7.33                | 2024-01-20       | 2024-02-11
        3            | 11002       | AW00011002      | Bo         | Ka        | n/a           | 0      | 0           | 0        | 0              |                     |                  |
    """)  # fmt: skip
