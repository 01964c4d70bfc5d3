-- Gold: merge the customers of one batch into dim_customers.
-- The batch's customers are those whose CRM row came with it and those whose ERP birth
-- data or location did (with their latest CRM row: the CRM customers are a snapshot
-- delivery, so an unchanged customer's row stays in the batch that brought it). Each
-- gold row carries the batch that last wrote it.
-- The CRM row of the batch is enriched with the ERP birth data and location: for each
-- customer the latest ERP row as of this batch (any batch up to this one), so an ERP
-- file delivered earlier still counts. Gender comes from the CRM, from the ERP when the
-- CRM does not know it. An existing customer keeps its customer_key, a row written by a
-- newer batch is never overwritten by an older one, and an unchanged row is left alone
-- (running the step twice changes nothing).
--
-- Written for speed (docs/benchmarks.md), in the shape of fact_sales.sql:
--   * the latest ERP row per customer is found in one pass over the ERP rows of the
--     batches up to this one (a hash semi-join to the batch's customers, then one sort
--     for DISTINCT ON), not by one index lookup per customer;
--   * each customer of the batch is matched once against the dimension (one left join
--     on customer_id) and classified: new customers are a plain INSERT, customers that
--     exist and differ (and whose row is from this batch or an older one) are UPDATEd,
--     unchanged ones cost nothing more. Into an empty dimension (a first batch, a
--     rebuild) the customers are inserted without being matched at all. All writes are
--     one statement, so they see the table as it was before the batch. One run per
--     client at a time (the client lease) means no concurrent batch inserts the same
--     customer; should one ever do so, the unique customer_id constraint fails the step
--     rather than duplicate a customer.

-- The sorts and hashes below hold a few hundred thousand rows: give this transaction
-- the memory to keep them off disk (the default 4MB spills).
SET LOCAL work_mem = '256MB';
-- A day's customers (a few thousand) are matched to the dimension through its key index,
-- not by reading the whole dimension into a hash: with the default random_page_cost (4,
-- for spinning disks) the planner hashed all 333k customers for 9k (0.5 s against
-- 0.25 s; a first batch costs the same either way; docs/benchmarks.md, session 20). As
-- in fact_sales.sql.
SET LOCAL random_page_cost = 1.1;

WITH erp_changed AS MATERIALIZED (
    -- customers whose ERP birth data or location changed with the batch: their CRM row
    -- may not have (the CRM customers are a snapshot delivery: silver holds a customer's
    -- row once until it changes), and they are the batch's customers too
    SELECT cid FROM {{ silver }}.erp_cust_az12 WHERE dwh_batch_id = %(batch_id)s
    UNION
    SELECT cid FROM {{ silver }}.erp_loc_a101 WHERE dwh_batch_id = %(batch_id)s
),
crm AS MATERIALIZED (
    -- the batch's customers: the CRM rows that came with it, and for the customers whose
    -- ERP rows changed alone, their latest CRM row from an earlier batch, unless the CRM
    -- no longer held them since (a vanished key: no batch after it brings the customer)
    SELECT * FROM {{ silver }}.crm_cust_info WHERE dwh_batch_id = %(batch_id)s
    UNION ALL
    (SELECT l.* FROM
        (SELECT DISTINCT ON (c.cst_id) c.*
         FROM {{ silver }}.crm_cust_info AS c
         WHERE c.dwh_batch_id < %(batch_id)s
           AND c.cst_key IN (SELECT cid FROM erp_changed)
           AND NOT EXISTS (SELECT FROM {{ silver }}.crm_cust_info AS n
                           WHERE n.dwh_batch_id = %(batch_id)s AND n.cst_id = c.cst_id)
         ORDER BY c.cst_id, c.dwh_batch_id DESC, c.dwh_row_number DESC) AS l
     WHERE NOT EXISTS (
         SELECT FROM tools.snapshot_vanished AS g
         WHERE g.client_schema = '{{ client }}' AND g.table_name = '{{ silver }}.crm_cust_info'
           AND g.key = jsonb_build_array(l.cst_id)
           AND g.batch_id > l.dwh_batch_id AND g.batch_id <= %(batch_id)s))
),
birth AS NOT MATERIALIZED (
    SELECT DISTINCT ON (e.cid) e.cid, e.bdate, e.gen
    FROM {{ silver }}.erp_cust_az12 AS e
    WHERE e.dwh_batch_id <= %(batch_id)s
      AND EXISTS (SELECT FROM crm WHERE crm.cst_key = e.cid)   -- hash semi-join
    ORDER BY e.cid, e.dwh_batch_id DESC, e.dwh_row_number DESC
),
location AS NOT MATERIALIZED (
    SELECT DISTINCT ON (e.cid) e.cid, e.cntry
    FROM {{ silver }}.erp_loc_a101 AS e
    WHERE e.dwh_batch_id <= %(batch_id)s
      AND EXISTS (SELECT FROM crm WHERE crm.cst_key = e.cid)   -- hash semi-join
    ORDER BY e.cid, e.dwh_batch_id DESC, e.dwh_row_number DESC
),
customers AS NOT MATERIALIZED (   -- inlined, as birth and location: read by the branch that runs
    -- the batch's customers as the dimension will hold them
    SELECT
        c.cst_id                                    AS customer_id,
        c.cst_key                                   AS customer_number,
        c.cst_firstname                             AS first_name,
        c.cst_lastname                              AS last_name,
        coalesce(l.cntry, 'n/a')                    AS country,
        c.cst_marital_status                        AS marital_status,
        CASE WHEN c.cst_gndr <> 'n/a' THEN c.cst_gndr
             ELSE coalesce(b.gen, 'n/a') END        AS gender,
        b.bdate                                     AS birthdate,
        c.cst_create_date                           AS create_date,
        %(batch_id)s::text                          AS dwh_batch_id   -- the batch writing it
    FROM crm AS c
    LEFT JOIN birth AS b ON b.cid = c.cst_key
    LEFT JOIN location AS l ON l.cid = c.cst_key
),
classified AS MATERIALIZED (
    -- each customer with what the dimension holds for it: new, changed or the same
    SELECT n.*,
           d.customer_id IS NULL AS is_new,
           d.customer_id IS NOT NULL
           AND d.dwh_batch_id <= n.dwh_batch_id
           AND (d.customer_number, d.first_name, d.last_name, d.country, d.marital_status,
                d.gender, d.birthdate, d.create_date, d.dwh_batch_id)
               IS DISTINCT FROM
               (n.customer_number, n.first_name, n.last_name, n.country, n.marital_status,
                n.gender, n.birthdate, n.create_date, n.dwh_batch_id) AS is_changed
    FROM customers AS n
    LEFT JOIN {{ gold }}.dim_customers AS d ON d.customer_id = n.customer_id
    WHERE EXISTS (SELECT FROM {{ gold }}.dim_customers)   -- a first batch skips the matching
),
changed AS (
    UPDATE {{ gold }}.dim_customers AS d
    SET customer_number = n.customer_number,
        first_name      = n.first_name,
        last_name       = n.last_name,
        country         = n.country,
        marital_status  = n.marital_status,
        gender          = n.gender,
        birthdate       = n.birthdate,
        create_date     = n.create_date,
        dwh_batch_id    = n.dwh_batch_id,
        dwh_updated_at  = now()
    FROM classified AS n
    WHERE n.is_changed   -- none on a re-delivered batch: the table is then not scanned
      AND d.customer_id = n.customer_id
    RETURNING 1
)
INSERT INTO {{ gold }}.dim_customers (
    customer_id, customer_number, first_name, last_name, country, marital_status,
    gender, birthdate, create_date, dwh_batch_id
)
SELECT
    n.customer_id, n.customer_number, n.first_name, n.last_name, n.country,
    n.marital_status, n.gender, n.birthdate, n.create_date, n.dwh_batch_id
FROM classified AS n
WHERE n.is_new   -- a plain insert of the customers the dimension does not hold yet
UNION ALL
SELECT
    n.customer_id, n.customer_number, n.first_name, n.last_name, n.country,
    n.marital_status, n.gender, n.birthdate, n.create_date, n.dwh_batch_id
FROM customers AS n
WHERE NOT EXISTS (SELECT FROM {{ gold }}.dim_customers);   -- a first batch: every customer is new
