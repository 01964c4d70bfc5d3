-- Silver: the CRM customers of one batch, cleaned and de-duplicated.
--   * names and codes trimmed, blank -> NULL
--   * marital status M/S -> Married/Single, gender M/F -> Male/Female, else n/a
--   * rows without a customer id are dropped
--   * a customer delivered more than once keeps its most recent row (latest
--     cst_create_date, the later row in the file on a tie or when no date is known).

DELETE FROM {{ silver }}.crm_cust_info WHERE dwh_batch_id = %(batch_id)s;

INSERT INTO {{ silver }}.crm_cust_info (
    cst_id, cst_key, cst_firstname, cst_lastname, cst_marital_status, cst_gndr,
    cst_create_date, dwh_batch_id, dwh_source_file, dwh_row_number
)
SELECT
    cst_id,
    shared.clean_text(cst_key),
    shared.clean_text(cst_firstname),
    shared.clean_text(cst_lastname),
    CASE upper(shared.clean_text(cst_marital_status))
        WHEN 'M' THEN 'Married'
        WHEN 'S' THEN 'Single'
        ELSE 'n/a'
    END,
    CASE upper(shared.clean_text(cst_gndr))
        WHEN 'M' THEN 'Male'
        WHEN 'F' THEN 'Female'
        ELSE 'n/a'
    END,
    cst_create_date,
    dwh_batch_id,
    dwh_source_file,
    dwh_row_number
FROM (
    SELECT
        b.*,
        row_number() OVER (
            PARTITION BY b.cst_id
            ORDER BY b.cst_create_date DESC NULLS LAST, b.dwh_row_number DESC
        ) AS recency
    FROM {{ bronze }}.crm_cust_info AS b
    WHERE b.dwh_batch_id = %(batch_id)s
      AND b.cst_id IS NOT NULL
) AS ranked
WHERE recency = 1;
