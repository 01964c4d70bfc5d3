-- Views: keep {{ gold }}.mv_monthly_sales_by_product_line up to date for one batch.
-- Sales per month and product line. Only the months the batch may have changed are
-- recomputed (every product line of such a month), not the whole history:
-- - months of the sales lines written by this batch, or by a later batch than the last
--   one this summary was updated for (a batch whose refresh never ran);
-- - months that lines moved away from, or of lines linked late to their customer or
--   product ({{ gold }}.fact_sales_moves);
-- - months of the lines of a product whose product line is not the one the summary
--   last counted it under ({{ gold }}.fact_sales_product_lines).
-- A first run (nothing recorded yet in tools.sql_step_state) recomputes every month,
-- without looking for what changed (touched_months is then empty: its queries are not
-- run at all).

SET LOCAL work_mem = '256MB';
-- No statement is JIT-compiled: the plan of a day's update is costed with its first-run
-- branch over the whole fact table, so PostgreSQL compiled it (~250 ms at 2.46M lines,
-- more than the day's work; docs/benchmarks.md, session 18), as the snapshot steps found.
SET LOCAL jit = off;

-- The last batch this summary was updated for ('' before its first run).
CREATE TEMP TABLE since ON COMMIT DROP AS
SELECT coalesce(max(batch_id), '') AS batch_id
FROM tools.sql_step_state
WHERE client_schema = '{{ client }}' AND layer = 'views' AND step_name = 'mv_monthly_sales_by_product_line';

CREATE TEMP TABLE touched_months ON COMMIT DROP AS
WITH relined AS (
    SELECT p.product_key
    FROM {{ gold }}.dim_products AS p
    LEFT JOIN {{ gold }}.fact_sales_product_lines AS l ON l.product_key = p.product_key
    WHERE l.product_line IS DISTINCT FROM coalesce(p.product_line, 'n/a')
)
SELECT DISTINCT date_trunc('month', lines.order_date::timestamp)::date AS sales_month
FROM (
    SELECT written.order_date
    FROM (   -- lines as written, and where changed lines were before
        SELECT order_date, dwh_batch_id FROM {{ gold }}.fact_sales
        UNION ALL
        SELECT order_date, dwh_batch_id FROM {{ gold }}.fact_sales_moves
    ) AS written
    WHERE written.dwh_batch_id = %(batch_id)s OR written.dwh_batch_id > (SELECT batch_id FROM since)
    UNION ALL
    SELECT f.order_date
    FROM {{ gold }}.fact_sales AS f
    WHERE f.product_key IN (SELECT product_key FROM relined)
) AS lines
WHERE lines.order_date IS NOT NULL
  AND (SELECT batch_id FROM since) <> '';

-- Their figures, from the lines of two branches of which one runs (the other's condition
-- on `since` is checked once, before it reads anything): a first run reads every line; a
-- later run reads the touched months' lines through the month index (template migration
-- V007), so a day costs its months, not the history. (One statement without branches
-- either read the whole table each day or, given every month, read a first run's lines
-- through the index, 1.4 s slower at 2M lines: docs/benchmarks.md, session 18.)
CREATE TEMP TABLE fresh ON COMMIT DROP AS
SELECT
    date_trunc('month', f.order_date::timestamp)::date AS sales_month,
    coalesce(p.product_line, 'n/a')           AS product_line,
    count(DISTINCT f.order_number)            AS orders,
    count(*)                                  AS sales_lines,
    count(DISTINCT f.customer_key)            AS customers,
    sum(f.quantity)                           AS quantity,
    sum(f.sales_amount)                       AS sales_amount
FROM (
    SELECT * FROM {{ gold }}.fact_sales
    WHERE (SELECT batch_id FROM since) = ''
    UNION ALL
    SELECT * FROM {{ gold }}.fact_sales
    WHERE (SELECT batch_id FROM since) <> ''
      AND date_trunc('month', order_date::timestamp)::date = ANY (ARRAY(SELECT sales_month FROM touched_months))
) AS f
LEFT JOIN {{ gold }}.dim_products AS p ON p.product_key = f.product_key
WHERE f.order_date IS NOT NULL
GROUP BY 1, 2;

-- One statement with OR: the summary holds a few hundred rows, a scan of it costs nothing.
DELETE FROM {{ gold }}.mv_monthly_sales_by_product_line AS s
WHERE (SELECT batch_id FROM since) = ''
   OR s.sales_month IN (SELECT sales_month FROM touched_months);

INSERT INTO {{ gold }}.mv_monthly_sales_by_product_line (
    sales_month, product_line, orders, sales_lines, customers, quantity, sales_amount
)
SELECT * FROM fresh;

-- The product line each product is now counted under.
INSERT INTO {{ gold }}.fact_sales_product_lines AS l (product_key, product_line)
SELECT p.product_key, coalesce(p.product_line, 'n/a')
FROM {{ gold }}.dim_products AS p
ON CONFLICT (product_key) DO UPDATE SET product_line = EXCLUDED.product_line
WHERE l.product_line IS DISTINCT FROM EXCLUDED.product_line;
