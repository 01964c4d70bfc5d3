-- Views: keep {{ gold }}.mv_customer_lifetime_value up to date for one batch.
-- Every customer with what they bought so far (zero when nothing yet). Only the customers
-- the batch may have changed are recomputed, not the whole history:
-- - customers of the sales lines written by this batch, or by a later batch than the
--   last one this summary was updated for (a batch whose refresh never ran);
-- - customers that lines moved away from ({{ gold }}.fact_sales_moves);
-- - customers the dimension step wrote with the same batches: new customers, and those
--   whose number, name or country changed (a dimension row carries the batch that last
--   wrote it), found without comparing every customer with the summary.
-- A first run (nothing recorded yet in tools.sql_step_state) recomputes every customer,
-- without looking for what changed (touched_customers then holds every customer: the
-- queries that look for changes are not run at all).
-- The touched customers' lines are read through the fact table's customer index
-- (template migration V007), so a day costs its customers' lines, not the history.

SET LOCAL work_mem = '256MB';
-- No statement is JIT-compiled: the plan of a day's update is costed with its first-run
-- branch over the whole fact table, so PostgreSQL compiled it (~250 ms at 2.46M lines,
-- more than the day's work; docs/benchmarks.md, session 18), as the snapshot steps found.
SET LOCAL jit = off;

-- The last batch this summary was updated for ('' before its first run).
CREATE TEMP TABLE since ON COMMIT DROP AS
SELECT coalesce(max(batch_id), '') AS batch_id
FROM tools.sql_step_state
WHERE client_schema = '{{ client }}' AND layer = 'views' AND step_name = 'mv_customer_lifetime_value';

CREATE TEMP TABLE touched_customers ON COMMIT DROP AS
SELECT customers.customer_key
FROM (
    SELECT written.customer_key
    FROM (   -- lines as written, and where changed lines were before
        SELECT customer_key, dwh_batch_id FROM {{ gold }}.fact_sales
        UNION ALL
        SELECT customer_key, dwh_batch_id FROM {{ gold }}.fact_sales_moves
    ) AS written
    WHERE written.dwh_batch_id = %(batch_id)s OR written.dwh_batch_id > (SELECT batch_id FROM since)
    UNION
    SELECT c.customer_key
    FROM {{ gold }}.dim_customers AS c
    WHERE c.dwh_batch_id = %(batch_id)s OR c.dwh_batch_id > (SELECT batch_id FROM since)
) AS customers
WHERE customers.customer_key IS NOT NULL
  AND (SELECT batch_id FROM since) <> ''
UNION ALL   -- a first run: every customer
SELECT c.customer_key
FROM {{ gold }}.dim_customers AS c
WHERE (SELECT batch_id FROM since) = '';

ANALYZE touched_customers;   -- a temporary table has no statistics until analyzed

-- Their figures.
CREATE TEMP TABLE fresh ON COMMIT DROP AS
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
WHERE c.customer_key IN (SELECT customer_key FROM touched_customers)
GROUP BY c.customer_key;

-- Two statements rather than one with OR: with an OR, every run would scan the whole
-- summary; the second statement finds the touched customers' rows by the key.
DELETE FROM {{ gold }}.mv_customer_lifetime_value
WHERE (SELECT batch_id FROM since) = '';

DELETE FROM {{ gold }}.mv_customer_lifetime_value AS s
USING touched_customers AS t
WHERE s.customer_key = t.customer_key;

INSERT INTO {{ gold }}.mv_customer_lifetime_value (
    customer_key, customer_id, customer_number, first_name, last_name, country, orders,
    sales_lines, quantity, lifetime_value, average_order_value, first_order_date,
    last_order_date
)
SELECT * FROM fresh;
