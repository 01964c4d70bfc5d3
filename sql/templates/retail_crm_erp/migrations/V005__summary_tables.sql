-- {{ client }}: the two reporting views become summary tables that each batch updates for
-- what it touched, instead of materialized views recomputed from the whole fact table
-- after every batch (REFRESH rescans and re-aggregates all history: ~3 s each on a
-- 2M-line fact, whatever the batch's size). Their names, columns and rows are the
-- same, so queries on them do not change; views/*.sql keep them up to date.
--
-- What a batch can change in them, and how the refresh finds it:
-- - sales lines the batch inserted or updated: fact rows with the batch's dwh_batch_id;
-- - where an updated line was before (its customer, product and date may change):
--   {{ gold }}.fact_sales_moves, written by gold/fact_sales.sql;
-- - a customer's name or country, a product's line: compared with what the summary
--   (customers) or fact_sales_product_lines (products) last used;
-- - lines linked late to a customer or product that arrived with this batch: that
--   customer or product is new to the summary, so it is recomputed.

-- Where each sales line updated by a batch was before the update.
CREATE TABLE IF NOT EXISTS {{ gold }}.fact_sales_moves (
    dwh_batch_id    text NOT NULL,            -- the batch that moved the line
    customer_key    bigint,                   -- the line's values before the update
    product_key     bigint,
    order_date      date,
    dwh_recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS fact_sales_moves_batch_idx ON {{ gold }}.fact_sales_moves (dwh_batch_id);

-- The product line each product had when the monthly summary was last updated.
CREATE TABLE IF NOT EXISTS {{ gold }}.fact_sales_product_lines (
    product_key     bigint PRIMARY KEY,
    product_line    text NOT NULL
);
INSERT INTO {{ gold }}.fact_sales_product_lines (product_key, product_line)
SELECT product_key, coalesce(product_line, 'n/a') FROM {{ gold }}.dim_products
ON CONFLICT (product_key) DO NOTHING;

-- The summaries, with the rows the materialized views hold now.
CREATE TABLE {{ gold }}.monthly_sales_by_product_line_v5 AS
    SELECT * FROM {{ gold }}.mv_monthly_sales_by_product_line;
DROP MATERIALIZED VIEW {{ gold }}.mv_monthly_sales_by_product_line;
ALTER TABLE {{ gold }}.monthly_sales_by_product_line_v5 RENAME TO mv_monthly_sales_by_product_line;
ALTER TABLE {{ gold }}.mv_monthly_sales_by_product_line
    ADD CONSTRAINT mv_monthly_sales_by_product_line_pk PRIMARY KEY (sales_month, product_line);

CREATE TABLE {{ gold }}.customer_lifetime_value_v5 AS
    SELECT * FROM {{ gold }}.mv_customer_lifetime_value;
DROP MATERIALIZED VIEW {{ gold }}.mv_customer_lifetime_value;
ALTER TABLE {{ gold }}.customer_lifetime_value_v5 RENAME TO mv_customer_lifetime_value;
ALTER TABLE {{ gold }}.mv_customer_lifetime_value
    ADD CONSTRAINT mv_customer_lifetime_value_pk PRIMARY KEY (customer_key);
