-- {{ client }}: what a day's snapshot needs to clean and compare only the keys of its
-- changed rows (include/etl/warehouse/snapshot.py, "The changed rows only").
--
-- The ERP location file's customer key as silver computes it from a bronze row
-- (trimmed, dashes removed: AW-00011000 -> AW00011000). The step silver/erp_loc_a101.sql
-- calls it for the key it cleans, and template.yaml names it as the step's bronze_key, so
-- the keys of a day's changed rows are found with the very function that cleans them.
-- Immutable, in SQL: PostgreSQL inlines it into the statements that call it.
CREATE OR REPLACE FUNCTION {{ silver }}.erp_loc_a101_cid(cid text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT replace(shared.clean_text(cid), '-', '')
$$;

-- The customers' latest row per changed key, read through the key (as the ERP tables'
-- key indexes of V001 do): a day's few thousand keys, not a scan of every customer row
-- (0.06 s against 0.14-0.24 s for 3,431 keys of 336k rows, docs/benchmarks.md, session 21).
CREATE INDEX IF NOT EXISTS crm_cust_info_key_idx
    ON {{ silver }}.crm_cust_info (cst_id, dwh_batch_id);
