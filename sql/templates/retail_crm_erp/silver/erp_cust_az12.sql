-- Silver: the ERP customer birth data of one batch.
--   * CID -> the CRM customer key: trimmed, the NAS system prefix and any dash removed
--     (NASAW00011000 -> AW00011000)
--   * birth dates in the future -> NULL
--   * gender M/Male, F/Female in any case and spacing -> Male/Female, else n/a
--   * one row per customer (the last one in the file).

DELETE FROM {{ silver }}.erp_cust_az12 WHERE dwh_batch_id = %(batch_id)s;

INSERT INTO {{ silver }}.erp_cust_az12 (
    cid, bdate, gen, dwh_batch_id, dwh_source_file, dwh_row_number
)
SELECT DISTINCT ON (cid)
    cid,
    bdate,
    CASE
        WHEN upper(gen) IN ('M', 'MALE') THEN 'Male'
        WHEN upper(gen) IN ('F', 'FEMALE') THEN 'Female'
        ELSE 'n/a'
    END,
    dwh_batch_id,
    dwh_source_file,
    dwh_row_number
FROM (
    SELECT
        {{ silver }}.erp_cust_az12_cid(b.cid) AS cid,   -- trimmed, NAS and dashes removed (V009)
        -- in the future: none (the bronze date itself compared, as the step's bronze_key says)
        CASE WHEN b.bdate > current_date THEN NULL ELSE b.bdate END AS bdate,
        shared.clean_text(b.gen) AS gen,
        b.dwh_batch_id,
        b.dwh_source_file,
        b.dwh_row_number
    FROM {{ bronze }}.erp_cust_az12 AS b
    WHERE b.dwh_batch_id = %(batch_id)s
) AS customers
WHERE cid IS NOT NULL
  AND cid <> ''
ORDER BY cid, dwh_row_number DESC;
