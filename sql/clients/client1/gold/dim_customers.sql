-- Gold: upsert the customers of one batch into dim_customers.
-- The CRM row of the batch is enriched with the ERP birth data and location: for each
-- customer the latest ERP row as of this batch (any batch up to this one), so an ERP
-- file delivered earlier still counts. Gender comes from the CRM, from the ERP when the
-- CRM does not know it. An existing customer keeps its customer_key, a row written by a
-- newer batch is never overwritten by an older one, and an unchanged row is left alone
-- (running the step twice changes nothing).

WITH crm AS (
    SELECT *
    FROM silver_client1.crm_cust_info
    WHERE dwh_batch_id = %(batch_id)s
),
birth AS (
    SELECT DISTINCT ON (cid) cid, bdate, gen
    FROM silver_client1.erp_cust_az12
    WHERE dwh_batch_id <= %(batch_id)s
      AND cid IN (SELECT cst_key FROM crm)
    ORDER BY cid, dwh_batch_id DESC, dwh_row_number DESC
),
location AS (
    SELECT DISTINCT ON (cid) cid, cntry
    FROM silver_client1.erp_loc_a101
    WHERE dwh_batch_id <= %(batch_id)s
      AND cid IN (SELECT cst_key FROM crm)
    ORDER BY cid, dwh_batch_id DESC, dwh_row_number DESC
)
INSERT INTO gold_client1.dim_customers AS d (
    customer_id, customer_number, first_name, last_name, country, marital_status,
    gender, birthdate, create_date, dwh_batch_id
)
SELECT
    c.cst_id,
    c.cst_key,
    c.cst_firstname,
    c.cst_lastname,
    coalesce(l.cntry, 'n/a'),
    c.cst_marital_status,
    CASE WHEN c.cst_gndr <> 'n/a' THEN c.cst_gndr ELSE coalesce(b.gen, 'n/a') END,
    b.bdate,
    c.cst_create_date,
    c.dwh_batch_id
FROM crm AS c
LEFT JOIN birth AS b ON b.cid = c.cst_key
LEFT JOIN location AS l ON l.cid = c.cst_key
ON CONFLICT (customer_id) DO UPDATE SET
    customer_number = EXCLUDED.customer_number,
    first_name      = EXCLUDED.first_name,
    last_name       = EXCLUDED.last_name,
    country         = EXCLUDED.country,
    marital_status  = EXCLUDED.marital_status,
    gender          = EXCLUDED.gender,
    birthdate       = EXCLUDED.birthdate,
    create_date     = EXCLUDED.create_date,
    dwh_batch_id    = EXCLUDED.dwh_batch_id,
    dwh_updated_at  = now()
WHERE d.dwh_batch_id <= EXCLUDED.dwh_batch_id
  AND (d.customer_number, d.first_name, d.last_name, d.country, d.marital_status,
       d.gender, d.birthdate, d.create_date, d.dwh_batch_id)
      IS DISTINCT FROM
      (EXCLUDED.customer_number, EXCLUDED.first_name, EXCLUDED.last_name, EXCLUDED.country,
       EXCLUDED.marital_status, EXCLUDED.gender, EXCLUDED.birthdate, EXCLUDED.create_date,
       EXCLUDED.dwh_batch_id);
