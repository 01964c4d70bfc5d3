-- Gold: upsert the sales lines of one batch into fact_sales.
-- One row per (order number, product number): a line delivered twice in the batch
-- keeps its last row. Product and customer keys are looked up in the dimensions (NULL
-- when unknown). A newer batch's row is never overwritten by an older batch, and an
-- unchanged row is left alone.

WITH lines AS (
    SELECT DISTINCT ON (sls_ord_num, sls_prd_key) *
    FROM silver_client1.crm_sales_details
    WHERE dwh_batch_id = %(batch_id)s
    ORDER BY sls_ord_num, sls_prd_key, dwh_row_number DESC
)
INSERT INTO gold_client1.fact_sales AS f (
    order_number, product_number, product_key, customer_key, customer_id,
    order_date, shipping_date, due_date, sales_amount, quantity, price, dwh_batch_id
)
SELECT
    s.sls_ord_num,
    s.sls_prd_key,
    p.product_key,
    c.customer_key,
    s.sls_cust_id,
    s.sls_order_dt,
    s.sls_ship_dt,
    s.sls_due_dt,
    s.sls_sales,
    s.sls_quantity,
    s.sls_price,
    s.dwh_batch_id
FROM lines AS s
LEFT JOIN gold_client1.dim_products AS p ON p.product_number = s.sls_prd_key
LEFT JOIN gold_client1.dim_customers AS c ON c.customer_id = s.sls_cust_id
ON CONFLICT (order_number, product_number) DO UPDATE SET
    product_key    = EXCLUDED.product_key,
    customer_key   = EXCLUDED.customer_key,
    customer_id    = EXCLUDED.customer_id,
    order_date     = EXCLUDED.order_date,
    shipping_date  = EXCLUDED.shipping_date,
    due_date       = EXCLUDED.due_date,
    sales_amount   = EXCLUDED.sales_amount,
    quantity       = EXCLUDED.quantity,
    price          = EXCLUDED.price,
    dwh_batch_id   = EXCLUDED.dwh_batch_id,
    dwh_updated_at = now()
WHERE f.dwh_batch_id <= EXCLUDED.dwh_batch_id
  AND (f.product_key, f.customer_key, f.customer_id, f.order_date, f.shipping_date,
       f.due_date, f.sales_amount, f.quantity, f.price, f.dwh_batch_id)
      IS DISTINCT FROM
      (EXCLUDED.product_key, EXCLUDED.customer_key, EXCLUDED.customer_id, EXCLUDED.order_date,
       EXCLUDED.shipping_date, EXCLUDED.due_date, EXCLUDED.sales_amount, EXCLUDED.quantity,
       EXCLUDED.price, EXCLUDED.dwh_batch_id);

-- Late-arriving dimensions: link the lines of earlier batches whose product or customer
-- was unknown then and is known now. (The partial indexes keep this to the open lines.)
UPDATE gold_client1.fact_sales AS f
SET product_key = p.product_key, dwh_updated_at = now()
FROM gold_client1.dim_products AS p
WHERE f.product_key IS NULL
  AND p.product_number = f.product_number;

UPDATE gold_client1.fact_sales AS f
SET customer_key = c.customer_key, dwh_updated_at = now()
FROM gold_client1.dim_customers AS c
WHERE f.customer_key IS NULL
  AND c.customer_id = f.customer_id;
