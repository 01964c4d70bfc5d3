-- Gold: upsert the current products of one batch into dim_products.
-- Current = the history row with no successor (silver left its end date empty). The
-- batch's products are those whose row came with it, and those whose ERP category did
-- (with their current row: the products are a snapshot delivery, so an unchanged
-- product's row stays in the batch that brought it, unless the product has vanished
-- since). The category comes from the latest ERP row of the category as of this batch.
-- An existing product keeps its product_key, a newer batch's row is never overwritten
-- by an older batch, and an unchanged row is left alone.

WITH recategorized AS MATERIALIZED (
    -- categories whose ERP row changed with the batch (the ERP categories are a snapshot
    -- delivery too): their products take the new names though their own rows did not change
    SELECT id FROM {{ silver }}.erp_px_cat_g1v2 WHERE dwh_batch_id = %(batch_id)s
),
candidates AS (
    SELECT * FROM {{ silver }}.crm_prd_info WHERE dwh_batch_id = %(batch_id)s
    UNION ALL
    -- for the products of those categories that the batch did not bring: each product
    -- id's latest row before the batch, still current unless its id vanished since
    (SELECT l.* FROM
        (SELECT DISTINCT ON (p.prd_id) p.*
         FROM {{ silver }}.crm_prd_info AS p
         WHERE p.dwh_batch_id < %(batch_id)s
           AND p.cat_id IN (SELECT id FROM recategorized)
           AND NOT EXISTS (SELECT FROM {{ silver }}.crm_prd_info AS n
                           WHERE n.dwh_batch_id = %(batch_id)s AND n.prd_id = p.prd_id)
         ORDER BY p.prd_id, p.dwh_batch_id DESC, p.dwh_row_number DESC) AS l
     WHERE NOT EXISTS (
         SELECT FROM tools.snapshot_vanished AS g
         WHERE g.client_schema = '{{ client }}' AND g.table_name = '{{ silver }}.crm_prd_info'
           AND g.key = jsonb_build_array(l.prd_id)
           AND g.batch_id > l.dwh_batch_id AND g.batch_id <= %(batch_id)s))
),
current_products AS (
    -- one row per product number, should two keys ever share one
    SELECT DISTINCT ON (prd_number) *
    FROM candidates AS c
    WHERE c.prd_end_dt IS NULL
      AND c.prd_number <> ''
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
    %(batch_id)s::text   -- the batch writing it
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
