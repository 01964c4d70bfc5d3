-- Silver: the ERP customer locations of one batch.
--   * CID -> the CRM customer key: trimmed, dashes removed (AW-00011000 -> AW00011000)
--   * country spellings unified: DE/Germany -> Germany, US/USA/United States ->
--     United States, GB/UK -> United Kingdom, blank -> n/a, anything else trimmed
--   * one row per customer (the last one in the file).

DELETE FROM {{ silver }}.erp_loc_a101 WHERE dwh_batch_id = %(batch_id)s;

INSERT INTO {{ silver }}.erp_loc_a101 (
    cid, cntry, dwh_batch_id, dwh_source_file, dwh_row_number
)
SELECT DISTINCT ON (cid)
    cid,
    CASE
        WHEN country IS NULL THEN 'n/a'
        WHEN upper(country) IN ('DE', 'GERMANY') THEN 'Germany'
        WHEN upper(country) IN ('US', 'USA', 'UNITED STATES') THEN 'United States'
        WHEN upper(country) IN ('GB', 'UK', 'UNITED KINGDOM') THEN 'United Kingdom'
        ELSE country
    END,
    dwh_batch_id,
    dwh_source_file,
    dwh_row_number
FROM (
    SELECT
        {{ silver }}.erp_loc_a101_cid(b.cid) AS cid,   -- trimmed, dashes removed (V008)
        shared.clean_text(b.cntry) AS country,
        b.dwh_batch_id,
        b.dwh_source_file,
        b.dwh_row_number
    FROM {{ bronze }}.erp_loc_a101 AS b
    WHERE b.dwh_batch_id = %(batch_id)s
) AS locations
WHERE cid IS NOT NULL
  AND cid <> ''
ORDER BY cid, dwh_row_number DESC;
