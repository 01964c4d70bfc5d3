-- Silver: the CRM sales lines of one batch.
--   * order number and product number trimmed, lines without either are dropped
--   * date integers (YYYYMMDD) -> dates (NULL for 0, a wrong length or no real date)
--   * sales recomputed as quantity * |price| when missing, not positive or inconsistent
--   * price derived as sales / quantity when missing or not positive.
-- Both amount rules need a usable price for the first and a usable sales amount for the
-- second: when the price is missing, the delivered sales amount is kept (sign dropped).

DELETE FROM {{ silver }}.crm_sales_details WHERE dwh_batch_id = %(batch_id)s;

INSERT INTO {{ silver }}.crm_sales_details (
    sls_ord_num, sls_prd_key, sls_cust_id, sls_order_dt, sls_ship_dt, sls_due_dt,
    sls_sales, sls_quantity, sls_price, dwh_batch_id, dwh_source_file, dwh_row_number
)
SELECT
    ord_num,
    prd_key,
    sls_cust_id,
    shared.yyyymmdd_to_date(sls_order_dt),
    shared.yyyymmdd_to_date(sls_ship_dt),
    shared.yyyymmdd_to_date(sls_due_dt),
    sales,
    sls_quantity,
    CASE
        WHEN sls_price > 0 THEN sls_price
        ELSE round(sales / nullif(sls_quantity, 0), 2)
    END,
    dwh_batch_id,
    dwh_source_file,
    dwh_row_number
FROM (
    SELECT
        amounts.*,
        CASE
            WHEN unit_price IS NULL THEN nullif(abs(sls_sales), 0)
            WHEN sls_sales IS NULL
              OR sls_sales <= 0
              OR sls_sales <> sls_quantity * unit_price THEN sls_quantity * unit_price
            ELSE sls_sales
        END AS sales
    FROM (
        SELECT
            b.*,
            shared.clean_text(b.sls_ord_num) AS ord_num,
            shared.clean_text(b.sls_prd_key) AS prd_key,
            nullif(abs(b.sls_price), 0) AS unit_price   -- |price|, NULL when unusable
        FROM {{ bronze }}.crm_sales_details AS b
        WHERE b.dwh_batch_id = %(batch_id)s
        -- A fence: without it the planner folds this subquery into the outer ones and
        -- evaluates clean_text twice per line (in the filter below and in the output).
        -- The fence is faster (docs/benchmarks.md).
        OFFSET 0
    ) AS amounts
    WHERE ord_num IS NOT NULL
      AND prd_key IS NOT NULL
) AS lines;
