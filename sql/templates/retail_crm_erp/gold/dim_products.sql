-- Gold: upsert the current products of one batch into dim_products.
-- Current = the history row with no successor (silver left its end date empty). The
-- category comes from the latest ERP row of the category as of this batch. An existing
-- product keeps its product_key, a newer batch's row is never overwritten by an older
-- batch, and an unchanged row is left alone.

WITH current_products AS (
    -- one row per product number, should two keys ever share one
    SELECT DISTINCT ON (prd_number) *
    FROM {{ silver }}.crm_prd_info
    WHERE dwh_batch_id = %(batch_id)s
      AND prd_end_dt IS NULL
      AND prd_number <> ''
    ORDER BY prd_number, prd_start_dt DESC NULLS LAST, prd_id DESC
),
categories AS (
    SELECT DISTINCT ON (id) id, cat, subcat, maintenance
    FROM {{ silver }}.erp_px_cat_g1v2
    WHERE dwh_batch_id <= %(batch_id)s
    ORDER BY id, dwh_batch_id DESC, dwh_row_number DESC
)
INSERT INTO {{ gold }}.dim_products AS d (
    product_number, product_id, product_name, category_id, category, subcategory,
    maintenance, cost, product_line, start_date, dwh_batch_id
)
SELECT
    p.prd_number,
    p.prd_id,
    p.prd_nm,
    p.cat_id,
    c.cat,
    c.subcat,
    c.maintenance,
    p.prd_cost,
    p.prd_line,
    p.prd_start_dt,
    p.dwh_batch_id
FROM current_products AS p
LEFT JOIN categories AS c ON c.id = p.cat_id
ON CONFLICT (product_number) DO UPDATE SET
    product_id     = EXCLUDED.product_id,
    product_name   = EXCLUDED.product_name,
    category_id    = EXCLUDED.category_id,
    category       = EXCLUDED.category,
    subcategory    = EXCLUDED.subcategory,
    maintenance    = EXCLUDED.maintenance,
    cost           = EXCLUDED.cost,
    product_line   = EXCLUDED.product_line,
    start_date     = EXCLUDED.start_date,
    dwh_batch_id   = EXCLUDED.dwh_batch_id,
    dwh_updated_at = now()
WHERE d.dwh_batch_id <= EXCLUDED.dwh_batch_id
  AND (d.product_id, d.product_name, d.category_id, d.category, d.subcategory,
       d.maintenance, d.cost, d.product_line, d.start_date, d.dwh_batch_id)
      IS DISTINCT FROM
      (EXCLUDED.product_id, EXCLUDED.product_name, EXCLUDED.category_id, EXCLUDED.category,
       EXCLUDED.subcategory, EXCLUDED.maintenance, EXCLUDED.cost, EXCLUDED.product_line,
       EXCLUDED.start_date, EXCLUDED.dwh_batch_id);
