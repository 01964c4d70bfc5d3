-- Silver: the ERP product categories of one batch: trimmed, one row per category id
-- (the last one in the file).

DELETE FROM {{ silver }}.erp_px_cat_g1v2 WHERE dwh_batch_id = %(batch_id)s;

INSERT INTO {{ silver }}.erp_px_cat_g1v2 (
    id, cat, subcat, maintenance, dwh_batch_id, dwh_source_file, dwh_row_number
)
SELECT DISTINCT ON (id)
    id, cat, subcat, maintenance, dwh_batch_id, dwh_source_file, dwh_row_number
FROM (
    SELECT
        shared.clean_text(b.id) AS id,
        shared.clean_text(b.cat) AS cat,
        shared.clean_text(b.subcat) AS subcat,
        shared.clean_text(b.maintenance) AS maintenance,
        b.dwh_batch_id,
        b.dwh_source_file,
        b.dwh_row_number
    FROM {{ bronze }}.erp_px_cat_g1v2 AS b
    WHERE b.dwh_batch_id = %(batch_id)s
) AS categories
WHERE id IS NOT NULL
ORDER BY id, dwh_row_number DESC;
