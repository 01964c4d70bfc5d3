-- {{ client }}: the ERP birth dates compared by the keys of their changed rows only, as
-- the locations are (V008; include/etl/warehouse/snapshot.py, "The changed rows only").
--
-- The ERP customer file's key as silver computes it from a bronze row: trimmed, the NAS
-- system prefix and any dash removed (NASAW00011000 -> AW00011000). The step
-- silver/erp_cust_az12.sql calls it for the key it cleans, and template.yaml names it as
-- the step's `bronze_key` function. Immutable, in SQL and a single expression (no FROM):
-- PostgreSQL inlines it where it is called with a plain column (its argument is used
-- three times: an expensive argument would keep it from being inlined).
CREATE OR REPLACE FUNCTION {{ silver }}.erp_cust_az12_cid(cid text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT replace(
        CASE WHEN left(shared.clean_text(cid), 3) = 'NAS' THEN substring(shared.clean_text(cid) FROM 4)
             ELSE shared.clean_text(cid) END,
        '-', ''
    )
$$;
