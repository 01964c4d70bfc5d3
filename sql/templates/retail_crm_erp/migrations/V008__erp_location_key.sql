-- {{ client }}: the ERP location file's customer key as silver computes it from a
-- bronze row (trimmed, dashes removed: AW-00011000 -> AW00011000). The step
-- silver/erp_loc_a101.sql calls it for the key it cleans, and template.yaml names it as
-- the step's bronze_key, so a day's snapshot finds the keys of its changed rows with the
-- very function that cleans them (include/etl/warehouse/snapshot.py). Immutable, in SQL:
-- PostgreSQL inlines it into the statements that call it.

CREATE OR REPLACE FUNCTION {{ silver }}.erp_loc_a101_cid(cid text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT replace(shared.clean_text(cid), '-', '')
$$;
