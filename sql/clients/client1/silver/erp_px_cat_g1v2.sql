-- Silver: the ERP product categories of one batch: trimmed, one row per category id
-- (the last one in the file).

DELETE FROM silver_client1.erp_px_cat_g1v2 WHERE dwh_batch_id = %(batch_id)s;

INSERT INTO silver_client1.erp_px_cat_g1v2 (
    id, cat, subcat, maintenance, dwh_batch_id, dwh_source_file, dwh_row_number
)
SELECT DISTINCT ON (id)
    id, cat, subcat, maintenance, dwh_batch_id, dwh_source_file, dwh_row_number
FROM (
    SELECT
        silver_client1.clean_text(b.id) AS id,
        silver_client1.clean_text(b.cat) AS cat,
        silver_client1.clean_text(b.subcat) AS subcat,
        silver_client1.clean_text(b.maintenance) AS maintenance,
        b.dwh_batch_id,
        b.dwh_source_file,
        b.dwh_row_number
    FROM bronze_client1.erp_px_cat_g1v2 AS b
    WHERE b.dwh_batch_id = %(batch_id)s
) AS categories
WHERE id IS NOT NULL
ORDER BY id, dwh_row_number DESC;
