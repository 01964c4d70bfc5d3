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
    CASE WHEN bdate > current_date THEN NULL ELSE bdate END,
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
        replace(
            CASE WHEN left(raw_cid, 3) = 'NAS' THEN substring(raw_cid FROM 4) ELSE raw_cid END,
            '-', ''
        ) AS cid,
        bdate,
        shared.clean_text(gen) AS gen,
        dwh_batch_id,
        dwh_source_file,
        dwh_row_number
    FROM (
        SELECT b.*, shared.clean_text(b.cid) AS raw_cid
        FROM {{ bronze }}.erp_cust_az12 AS b
        WHERE b.dwh_batch_id = %(batch_id)s
    ) AS trimmed
    WHERE raw_cid IS NOT NULL
) AS customers
WHERE cid <> ''
ORDER BY cid, dwh_row_number DESC;
