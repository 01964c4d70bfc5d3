-- Silver: the CRM product history of one batch.
--   * prd_key split: its first five characters are the category id (with "_" as the
--     ERP writes it: CO-RF -> CO_RF), the rest from the seventh is the product number
--   * a product id delivered twice keeps its last row
--   * missing cost -> 0, product line M/R/S/T -> Mountain/Road/Other Sales/Touring, else n/a
--   * the delivered end date is not trusted: a row is valid until the day before the
--     next row of the same key starts, the last row (no successor) has no end date and
--     is the current product.

DELETE FROM {{ silver }}.crm_prd_info WHERE dwh_batch_id = %(batch_id)s;

INSERT INTO {{ silver }}.crm_prd_info (
    prd_id, prd_key, cat_id, prd_number, prd_nm, prd_cost, prd_line,
    prd_start_dt, prd_end_dt, dwh_batch_id, dwh_source_file, dwh_row_number
)
SELECT
    prd_id,
    prd_key,
    replace(left(prd_key, 5), '-', '_'),
    substring(prd_key FROM 7),
    shared.clean_text(prd_nm),
    coalesce(prd_cost, 0),
    CASE upper(shared.clean_text(prd_line))
        WHEN 'M' THEN 'Mountain'
        WHEN 'R' THEN 'Road'
        WHEN 'S' THEN 'Other Sales'
        WHEN 'T' THEN 'Touring'
        ELSE 'n/a'
    END,
    prd_start_dt,
    -- date - integer is a date, a row without a start date counts as the oldest
    lead(prd_start_dt) OVER (
        PARTITION BY prd_key
        ORDER BY prd_start_dt NULLS FIRST, prd_id
    ) - 1,
    dwh_batch_id,
    dwh_source_file,
    dwh_row_number
FROM (
    SELECT DISTINCT ON (b.prd_id)
        b.prd_id,
        shared.clean_text(b.prd_key) AS prd_key,
        b.prd_nm,
        b.prd_cost,
        b.prd_line,
        b.prd_start_dt,
        b.dwh_batch_id,
        b.dwh_source_file,
        b.dwh_row_number
    FROM {{ bronze }}.crm_prd_info AS b
    WHERE b.dwh_batch_id = %(batch_id)s
      AND b.prd_id IS NOT NULL
      AND shared.clean_text(b.prd_key) IS NOT NULL
    ORDER BY b.prd_id, b.dwh_row_number DESC
) AS products;
