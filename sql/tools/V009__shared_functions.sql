-- SQL every client's steps may use, kept once in the schema `shared` (not one copy per
-- client schema). Small, immutable SQL functions: PostgreSQL inlines them into the
-- statements that call them. Replaced, never altered in place: a change is a new
-- migration with CREATE OR REPLACE, and every step that calls it runs again (the step
-- fingerprint includes the applied migrations).

CREATE SCHEMA IF NOT EXISTS shared;

-- Trimmed text, NULL when nothing is left (spaces, tabs and line breaks are trimmed).
CREATE OR REPLACE FUNCTION shared.clean_text(value text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT nullif(btrim(value, E' \t\r\n'), '')
$$;

-- A YYYYMMDD integer as a date, NULL when it is not a real calendar date (0, negative,
-- wrong number of digits, month 13, 30 February, ...). Checked with arithmetic before
-- make_date is called, so it never raises.
CREATE OR REPLACE FUNCTION shared.yyyymmdd_to_date(value bigint)
RETURNS date
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN value BETWEEN 10000101 AND 99991231
         -- the day must exist in that month (and year, for February)
         AND mod(value, 100) BETWEEN 1 AND
             CASE mod(value / 100, 100)
                 WHEN 1 THEN 31 WHEN 3 THEN 31 WHEN 5 THEN 31 WHEN 7 THEN 31
                 WHEN 8 THEN 31 WHEN 10 THEN 31 WHEN 12 THEN 31
                 WHEN 4 THEN 30 WHEN 6 THEN 30 WHEN 9 THEN 30 WHEN 11 THEN 30
                 WHEN 2 THEN
                     CASE
                         WHEN mod(value / 10000, 4) = 0
                          AND (mod(value / 10000, 100) <> 0 OR mod(value / 10000, 400) = 0)
                         THEN 29
                         ELSE 28
                     END
                 ELSE 0  -- no such month
             END
        THEN make_date((value / 10000)::int, mod(value / 100, 100)::int, mod(value, 100)::int)
    END
$$;
