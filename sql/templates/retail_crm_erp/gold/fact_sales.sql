-- Gold: merge the sales lines of one batch into fact_sales.
-- One row per (order number, product number): a line delivered twice in the batch
-- keeps its last row. Product and customer keys are looked up in the dimensions (NULL
-- when unknown). A newer batch's row is never overwritten by an older batch, and an
-- unchanged row is left alone.
--
-- Written for speed (docs/benchmarks.md): instead of one INSERT ... ON CONFLICT DO
-- UPDATE, which probes the unique index, takes a row lock and checks the update for
-- every line, each line of the batch is matched once against the table (one left join
-- on the unique key) and classified: new lines are a plain INSERT, lines that exist and
-- differ (and whose row is from this batch or an older one) are UPDATEd, unchanged lines
-- cost nothing more. A batch delivered again writes no row. Into an empty table (a
-- client's first batch, a rebuild) the lines are inserted without being matched or
-- classified at all, which costs less (docs/benchmarks.md). The merge's writes
-- (insert, update, moves) are one statement, so they see the table as it was before the
-- batch, empty or not. One run per client at a time (the client lease) means no
-- concurrent batch inserts the same keys; should one ever do so, the unique constraint
-- fails the step rather than duplicate a line.

-- The batch's lines are sorted once (DISTINCT ON) and hashed once (the match): give this
-- transaction the memory to do that with less spilling to disk.
SET LOCAL work_mem = '256MB';
-- A day's lines are matched to the table through its unique index, one probe a line, not
-- by reading the whole table into a hash twice (the match, then the update): with the
-- default random_page_cost (4, for spinning disks) the planner read the whole table for
-- a day's lines, twice as slow (docs/benchmarks.md). Storage that is not an SSD may want
-- 4 here again.
SET LOCAL random_page_cost = 1.1;
-- And the batch's lines are read through silver's batch index (BRIN), never by reading
-- the whole silver table: the planner costs that index by how closely batch ids follow
-- the table's physical order, which a batch run again breaks (its rows land in the
-- space its old rows left), and then read all 2.5M silver lines for a day's 52k (0.36 s
-- at 10 days of history, growing with every day; 18 ms through the index). Every other
-- table here is read through an index too (the dimensions' keys into their hashes, the
-- fact's unique key and open-line indexes); a first batch costs the same either way
-- (docs/benchmarks.md, session 19).
SET LOCAL enable_seqscan = off;

WITH lines AS NOT MATERIALIZED (   -- inlined: read once, by the branch that runs
    SELECT
        s.sls_ord_num   AS order_number,
        s.sls_prd_key   AS product_number,
        p.product_key,
        c.customer_key,
        s.sls_cust_id   AS customer_id,
        s.sls_order_dt  AS order_date,
        s.sls_ship_dt   AS shipping_date,
        s.sls_due_dt    AS due_date,
        s.sls_sales     AS sales_amount,
        s.sls_quantity  AS quantity,
        s.sls_price     AS price,
        s.dwh_batch_id
    FROM (
        -- only the columns gold needs: a narrower sort
        SELECT DISTINCT ON (sls_ord_num, sls_prd_key)
            sls_ord_num, sls_prd_key, sls_cust_id, sls_order_dt, sls_ship_dt, sls_due_dt,
            sls_sales, sls_quantity, sls_price, dwh_batch_id
        FROM {{ silver }}.crm_sales_details
        WHERE dwh_batch_id = %(batch_id)s
        ORDER BY sls_ord_num, sls_prd_key, dwh_row_number DESC
    ) AS s
    LEFT JOIN {{ gold }}.dim_products AS p ON p.product_number = s.sls_prd_key
    LEFT JOIN {{ gold }}.dim_customers AS c ON c.customer_id = s.sls_cust_id
),
classified AS MATERIALIZED (
    -- each line with what the table holds for its key: new, changed or the same
    SELECT l.*,
           f.customer_key AS previous_customer_key,
           f.product_key  AS previous_product_key,
           f.order_date   AS previous_order_date,
           f.order_number IS NULL AS is_new,
           f.order_number IS NOT NULL
           AND f.dwh_batch_id <= l.dwh_batch_id
           AND (f.product_key, f.customer_key, f.customer_id, f.order_date, f.shipping_date,
                f.due_date, f.sales_amount, f.quantity, f.price, f.dwh_batch_id)
               IS DISTINCT FROM
               (l.product_key, l.customer_key, l.customer_id, l.order_date, l.shipping_date,
                l.due_date, l.sales_amount, l.quantity, l.price, l.dwh_batch_id) AS is_changed
    FROM lines AS l
    LEFT JOIN {{ gold }}.fact_sales AS f
      ON f.order_number = l.order_number AND f.product_number = l.product_number
    WHERE EXISTS (SELECT FROM {{ gold }}.fact_sales)   -- a first batch skips the matching
),
changed AS (
    UPDATE {{ gold }}.fact_sales AS f
    SET product_key    = l.product_key,
        customer_key   = l.customer_key,
        customer_id    = l.customer_id,
        order_date     = l.order_date,
        shipping_date  = l.shipping_date,
        due_date       = l.due_date,
        sales_amount   = l.sales_amount,
        quantity       = l.quantity,
        price          = l.price,
        dwh_batch_id   = l.dwh_batch_id,
        dwh_updated_at = now()
    FROM classified AS l
    WHERE l.is_changed   -- none on a re-delivered batch: the table is then not scanned
      AND f.order_number = l.order_number
      AND f.product_number = l.product_number
    RETURNING 1
),
moved AS (
    -- where the updated lines were before, when that is a customer, product or date the
    -- summaries (views/*.sql) count them under: those rows must be recomputed too
    INSERT INTO {{ gold }}.fact_sales_moves (dwh_batch_id, customer_key, product_key, order_date)
    SELECT DISTINCT %(batch_id)s, l.previous_customer_key, l.previous_product_key, l.previous_order_date
    FROM classified AS l
    WHERE l.is_changed
      AND (l.previous_customer_key, l.previous_product_key, l.previous_order_date)
          IS DISTINCT FROM (l.customer_key, l.product_key, l.order_date)
    RETURNING 1
)
INSERT INTO {{ gold }}.fact_sales (
    order_number, product_number, product_key, customer_key, customer_id,
    order_date, shipping_date, due_date, sales_amount, quantity, price, dwh_batch_id
)
SELECT
    l.order_number, l.product_number, l.product_key, l.customer_key, l.customer_id,
    l.order_date, l.shipping_date, l.due_date, l.sales_amount, l.quantity, l.price,
    l.dwh_batch_id
FROM classified AS l
WHERE l.is_new   -- a plain insert of the keys the table does not hold yet
UNION ALL
SELECT
    l.order_number, l.product_number, l.product_key, l.customer_key, l.customer_id,
    l.order_date, l.shipping_date, l.due_date, l.sales_amount, l.quantity, l.price,
    l.dwh_batch_id
FROM lines AS l
WHERE NOT EXISTS (SELECT FROM {{ gold }}.fact_sales);   -- a first batch: every line is new

-- Late-arriving dimensions: link the lines of earlier batches whose product or customer
-- was unknown then and is known now. (The partial indexes keep this to the open lines.)
-- The month of each linked line is recorded as moved: its product line and customer
-- count change in the monthly summary.
WITH linked AS (
    UPDATE {{ gold }}.fact_sales AS f
    SET product_key = p.product_key, dwh_updated_at = now()
    FROM {{ gold }}.dim_products AS p
    WHERE f.product_key IS NULL
      AND p.product_number = f.product_number
    RETURNING f.order_date
)
INSERT INTO {{ gold }}.fact_sales_moves (dwh_batch_id, order_date)
SELECT DISTINCT %(batch_id)s, order_date FROM linked;

WITH linked AS (
    UPDATE {{ gold }}.fact_sales AS f
    SET customer_key = c.customer_key, dwh_updated_at = now()
    FROM {{ gold }}.dim_customers AS c
    WHERE f.customer_key IS NULL
      AND c.customer_id = f.customer_id
    RETURNING f.order_date
)
INSERT INTO {{ gold }}.fact_sales_moves (dwh_batch_id, order_date)
SELECT DISTINCT %(batch_id)s, order_date FROM linked;
