-- {{ client }} (retail sales, CRM + ERP): silver and gold schemas, tables, helper functions
-- and materialized views.
-- Idempotent: every object is created only if it does not exist yet (functions are
-- replaced). The bronze tables are created by the runtime from
-- include/clients/{{ client }}.yaml, not here.

CREATE SCHEMA IF NOT EXISTS {{ silver }};
CREATE SCHEMA IF NOT EXISTS {{ gold }};

-- ================================================================ helper functions
-- Small, immutable SQL functions: PostgreSQL inlines them into the silver queries.

-- Trimmed text, NULL when nothing is left (spaces, tabs and line breaks are trimmed).
CREATE OR REPLACE FUNCTION {{ silver }}.clean_text(value text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT nullif(btrim(value, E' \t\r\n'), '')
$$;

-- A YYYYMMDD integer as a date, NULL when it is not a real calendar date (0, negative,
-- wrong number of digits, month 13, 30 February, ...). Checked with arithmetic before
-- make_date is called, so it never raises.
CREATE OR REPLACE FUNCTION {{ silver }}.yyyymmdd_to_date(value bigint)
RETURNS date
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN value BETWEEN 10000101 AND 99991231
         -- the day must exist in that month (and year, for February)
         AND mod(value, 100) BETWEEN 1 AND
             CASE mod(value / 100, 100)
                 WHEN 1 THEN 31 WHEN 3 THEN 31 WHEN 5 THEN 31 WHEN 7 THEN 31
                 WHEN 8 THEN 31 WHEN 10 THEN 31 WHEN 12 THEN 31
                 WHEN 4 THEN 30 WHEN 6 THEN 30 WHEN 9 THEN 30 WHEN 11 THEN 30
                 WHEN 2 THEN
                     CASE
                         WHEN mod(value / 10000, 4) = 0
                          AND (mod(value / 10000, 100) <> 0 OR mod(value / 10000, 400) = 0)
                         THEN 29
                         ELSE 28
                     END
                 ELSE 0  -- no such month
             END
        THEN make_date((value / 10000)::int, mod(value / 100, 100)::int, mod(value, 100)::int)
    END
$$;

-- ================================================================ silver
-- One table per bronze table: cleaned and typed, scoped by batch (each silver step
-- deletes and re-inserts the rows of its batch), with the lineage of the bronze row.

-- CRM customers: one row per customer and batch (the most recent by create date).
CREATE TABLE IF NOT EXISTS {{ silver }}.crm_cust_info (
    cst_id             bigint NOT NULL,
    cst_key            text,                  -- business key, e.g. AW00011000
    cst_firstname      text,
    cst_lastname       text,
    cst_marital_status text NOT NULL,         -- Married | Single | n/a
    cst_gndr           text NOT NULL,         -- Male | Female | n/a
    cst_create_date    date,
    dwh_batch_id       text NOT NULL,
    dwh_source_file    text,
    dwh_row_number     bigint,
    dwh_loaded_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS crm_cust_info_batch_idx
    ON {{ silver }}.crm_cust_info (dwh_batch_id);
CREATE UNIQUE INDEX IF NOT EXISTS crm_cust_info_batch_key_uq
    ON {{ silver }}.crm_cust_info (dwh_batch_id, cst_id);

-- CRM products: every history row, with a validity recomputed from the next row.
CREATE TABLE IF NOT EXISTS {{ silver }}.crm_prd_info (
    prd_id          bigint NOT NULL,
    prd_key         text NOT NULL,            -- as delivered (trimmed): CO-RF-FR-R92B-58
    cat_id          text,                     -- ERP spelling of its first five characters: CO_RF
    prd_number      text NOT NULL,            -- the rest: FR-R92B-58, what sales refer to
    prd_nm          text,
    prd_cost        numeric NOT NULL,         -- 0 when missing
    prd_line        text NOT NULL,            -- Mountain | Road | Other Sales | Touring | n/a
    prd_start_dt    date,
    prd_end_dt      date,                     -- day before the next row starts, NULL = current
    dwh_batch_id    text NOT NULL,
    dwh_source_file text,
    dwh_row_number  bigint,
    dwh_loaded_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS crm_prd_info_batch_idx
    ON {{ silver }}.crm_prd_info (dwh_batch_id);
CREATE UNIQUE INDEX IF NOT EXISTS crm_prd_info_batch_key_uq
    ON {{ silver }}.crm_prd_info (dwh_batch_id, prd_id);

-- CRM sales lines: dates typed, amounts made consistent. Every bronze row is kept
-- (re-delivered lines are collapsed in gold).
CREATE TABLE IF NOT EXISTS {{ silver }}.crm_sales_details (
    sls_ord_num     text NOT NULL,
    sls_prd_key     text NOT NULL,            -- product number
    sls_cust_id     bigint,                   -- cst_id
    sls_order_dt    date,                     -- NULL when the delivered integer is no date
    sls_ship_dt     date,
    sls_due_dt      date,
    sls_sales       numeric,                  -- quantity * price when missing or inconsistent
    sls_quantity    bigint,
    sls_price       numeric,                  -- sales / quantity when missing or not positive
    dwh_batch_id    text NOT NULL,
    dwh_source_file text,
    dwh_row_number  bigint,
    dwh_loaded_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS crm_sales_details_batch_idx
    ON {{ silver }}.crm_sales_details (dwh_batch_id);

-- ERP customer birth data: one row per customer and batch.
CREATE TABLE IF NOT EXISTS {{ silver }}.erp_cust_az12 (
    cid             text NOT NULL,            -- the CRM customer key (NAS prefix removed)
    bdate           date,                     -- NULL when in the future
    gen             text NOT NULL,            -- Male | Female | n/a
    dwh_batch_id    text NOT NULL,
    dwh_source_file text,
    dwh_row_number  bigint,
    dwh_loaded_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS erp_cust_az12_batch_idx
    ON {{ silver }}.erp_cust_az12 (dwh_batch_id);
CREATE UNIQUE INDEX IF NOT EXISTS erp_cust_az12_batch_key_uq
    ON {{ silver }}.erp_cust_az12 (dwh_batch_id, cid);
CREATE INDEX IF NOT EXISTS erp_cust_az12_key_idx  -- latest row per customer
    ON {{ silver }}.erp_cust_az12 (cid, dwh_batch_id);

-- ERP customer locations: one row per customer and batch.
CREATE TABLE IF NOT EXISTS {{ silver }}.erp_loc_a101 (
    cid             text NOT NULL,            -- the CRM customer key (dash removed)
    cntry           text NOT NULL,            -- country name, n/a when blank
    dwh_batch_id    text NOT NULL,
    dwh_source_file text,
    dwh_row_number  bigint,
    dwh_loaded_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS erp_loc_a101_batch_idx
    ON {{ silver }}.erp_loc_a101 (dwh_batch_id);
CREATE UNIQUE INDEX IF NOT EXISTS erp_loc_a101_batch_key_uq
    ON {{ silver }}.erp_loc_a101 (dwh_batch_id, cid);
CREATE INDEX IF NOT EXISTS erp_loc_a101_key_idx
    ON {{ silver }}.erp_loc_a101 (cid, dwh_batch_id);

-- ERP product categories: one row per category and batch.
CREATE TABLE IF NOT EXISTS {{ silver }}.erp_px_cat_g1v2 (
    id              text NOT NULL,            -- category id, e.g. CO_RF
    cat             text,
    subcat          text,
    maintenance     text,
    dwh_batch_id    text NOT NULL,
    dwh_source_file text,
    dwh_row_number  bigint,
    dwh_loaded_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS erp_px_cat_g1v2_batch_idx
    ON {{ silver }}.erp_px_cat_g1v2 (dwh_batch_id);
CREATE UNIQUE INDEX IF NOT EXISTS erp_px_cat_g1v2_batch_key_uq
    ON {{ silver }}.erp_px_cat_g1v2 (dwh_batch_id, id);

-- ================================================================ gold
-- A sales star schema. Surrogate keys are identities that never change once assigned,
-- dwh_batch_id is the batch that last wrote the row (an older batch never overwrites it).

CREATE TABLE IF NOT EXISTS {{ gold }}.dim_customers (
    customer_key    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id     bigint NOT NULL UNIQUE,   -- CRM cst_id
    customer_number text,                     -- CRM cst_key
    first_name      text,
    last_name       text,
    country         text NOT NULL,            -- from the ERP location, n/a when unknown
    marital_status  text NOT NULL,
    gender          text NOT NULL,            -- CRM, else ERP, n/a when neither knows
    birthdate       date,                     -- from the ERP
    create_date     date,
    dwh_batch_id    text NOT NULL,
    dwh_updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS dim_customers_batch_idx ON {{ gold }}.dim_customers (dwh_batch_id);

-- Current products only (the history row with no successor).
CREATE TABLE IF NOT EXISTS {{ gold }}.dim_products (
    product_key     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    product_number  text NOT NULL UNIQUE,
    product_id      bigint,                   -- CRM prd_id of the current row
    product_name    text,
    category_id     text,
    category        text,                     -- from the ERP, NULL when it does not know it
    subcategory     text,
    maintenance     text,
    cost            numeric,
    product_line    text,
    start_date      date,
    dwh_batch_id    text NOT NULL,
    dwh_updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS dim_products_batch_idx ON {{ gold }}.dim_products (dwh_batch_id);

-- One row per sales line (order number + product number). product_key and customer_key
-- are NULL while the product/customer is unknown, customer_id is kept so the customer
-- can be linked when it arrives later.
CREATE TABLE IF NOT EXISTS {{ gold }}.fact_sales (
    order_number    text NOT NULL,
    product_number  text NOT NULL,
    product_key     bigint REFERENCES {{ gold }}.dim_products (product_key),
    customer_key    bigint REFERENCES {{ gold }}.dim_customers (customer_key),
    customer_id     bigint,
    order_date      date,
    shipping_date   date,
    due_date        date,
    sales_amount    numeric,
    quantity        bigint,
    price           numeric,
    dwh_batch_id    text NOT NULL,
    dwh_updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT fact_sales_line_uq UNIQUE (order_number, product_number)
);
CREATE INDEX IF NOT EXISTS fact_sales_batch_idx ON {{ gold }}.fact_sales (dwh_batch_id);
CREATE INDEX IF NOT EXISTS fact_sales_product_idx ON {{ gold }}.fact_sales (product_key);
CREATE INDEX IF NOT EXISTS fact_sales_customer_idx ON {{ gold }}.fact_sales (customer_key);
-- The lines still waiting for their product / customer (small, scanned by every load).
CREATE INDEX IF NOT EXISTS fact_sales_unlinked_product_idx
    ON {{ gold }}.fact_sales (product_number) WHERE product_key IS NULL;
CREATE INDEX IF NOT EXISTS fact_sales_unlinked_customer_idx
    ON {{ gold }}.fact_sales (customer_id) WHERE customer_key IS NULL;

-- ================================================================ materialized views
-- Each has a unique index, so it can also be refreshed CONCURRENTLY.

-- Sales per calendar month and product line (lines without an order date are left out).
CREATE MATERIALIZED VIEW IF NOT EXISTS {{ gold }}.mv_monthly_sales_by_product_line AS
SELECT
    date_trunc('month', f.order_date)::date   AS sales_month,
    coalesce(p.product_line, 'n/a')           AS product_line,
    count(DISTINCT f.order_number)            AS orders,
    count(*)                                  AS sales_lines,
    count(DISTINCT f.customer_key)            AS customers,
    sum(f.quantity)                           AS quantity,
    sum(f.sales_amount)                       AS sales_amount
FROM {{ gold }}.fact_sales AS f
LEFT JOIN {{ gold }}.dim_products AS p ON p.product_key = f.product_key
WHERE f.order_date IS NOT NULL
GROUP BY 1, 2;
CREATE UNIQUE INDEX IF NOT EXISTS mv_monthly_sales_by_product_line_uq
    ON {{ gold }}.mv_monthly_sales_by_product_line (sales_month, product_line);

-- Every customer with what they bought so far (zero when nothing yet).
CREATE MATERIALIZED VIEW IF NOT EXISTS {{ gold }}.mv_customer_lifetime_value AS
SELECT
    c.customer_key,
    c.customer_id,
    c.customer_number,
    c.first_name,
    c.last_name,
    c.country,
    count(DISTINCT f.order_number)            AS orders,
    count(f.order_number)                     AS sales_lines,
    coalesce(sum(f.quantity), 0)              AS quantity,
    coalesce(sum(f.sales_amount), 0)          AS lifetime_value,
    round(coalesce(sum(f.sales_amount), 0)
          / nullif(count(DISTINCT f.order_number), 0), 2) AS average_order_value,
    min(f.order_date)                         AS first_order_date,
    max(f.order_date)                         AS last_order_date
FROM {{ gold }}.dim_customers AS c
LEFT JOIN {{ gold }}.fact_sales AS f ON f.customer_key = c.customer_key
GROUP BY c.customer_key;
CREATE UNIQUE INDEX IF NOT EXISTS mv_customer_lifetime_value_uq
    ON {{ gold }}.mv_customer_lifetime_value (customer_key);
