-- {{ client }}: make loading gold.fact_sales cost close to writing its rows once.
--
-- Measured on 2M sales lines (docs/benchmarks.md): every fact row paid two foreign-key
-- checks (a lookup in each dimension per inserted or updated row) and the maintenance
-- of two indexes that no query reads. The step already resolves both keys by joining
-- the dimensions (gold/fact_sales.sql), so the foreign keys only re-checked what the
-- join had just found; the factory's quality gates check that every fact row joins its
-- dimensions once per batch instead of once per row.
--
-- Kept: the unique (order_number, product_number) constraint (one row per sales line;
-- the step finds existing lines through it), the batch index (rows per batch, for the
-- step log and the reports) and the two small partial indexes of the lines still
-- waiting for a late-arriving product or customer.

ALTER TABLE {{ gold }}.fact_sales
    DROP CONSTRAINT IF EXISTS fact_sales_product_key_fkey,
    DROP CONSTRAINT IF EXISTS fact_sales_customer_key_fkey;

-- product_key / customer_key: only read by the materialized views, which aggregate the
-- whole table with hash joins and never use these indexes.
DROP INDEX IF EXISTS {{ gold }}.fact_sales_product_idx;
DROP INDEX IF EXISTS {{ gold }}.fact_sales_customer_idx;
