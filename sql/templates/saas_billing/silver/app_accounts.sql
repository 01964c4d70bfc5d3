-- {{ silver }}.app_accounts: the batch's accounts, typed and cleaned.
-- account_id trimmed and upper-cased, company name trimmed, country code upper-cased
-- (blank -> NULL), segment mapped onto SMB | Mid-Market | Enterprise | Unknown.
-- One row per account_id: the last delivered row wins (the app re-sends renamed accounts).

DELETE FROM {{ silver }}.app_accounts WHERE dwh_batch_id = %(batch_id)s;

INSERT INTO {{ silver }}.app_accounts (
    account_id, company_name, country_code, segment, signup_date, is_active,
    dwh_batch_id, dwh_source_file, dwh_row_number
)
SELECT DISTINCT ON (c.account_id)
    c.account_id, c.company_name, c.country_code, c.segment, c.signup_date, c.is_active,
    c.dwh_batch_id, c.dwh_source_file, c.dwh_row_number
FROM (
    SELECT
        upper(btrim(b.account_id))                  AS account_id,
        nullif(btrim(b.company_name), '')           AS company_name,
        nullif(upper(btrim(b.country_code)), '')    AS country_code,
        CASE replace(lower(btrim(b.segment)), ' ', '-')
            WHEN 'smb' THEN 'SMB'
            WHEN 'mid-market' THEN 'Mid-Market'
            WHEN 'midmarket' THEN 'Mid-Market'
            WHEN 'enterprise' THEN 'Enterprise'
            ELSE 'Unknown'
        END                                         AS segment,
        b.signup_date,
        b.is_active,
        b.dwh_batch_id,
        b.dwh_source_file,
        b.dwh_row_number
    FROM {{ bronze }}.app_accounts b
    WHERE b.dwh_batch_id = %(batch_id)s
      AND nullif(btrim(b.account_id), '') IS NOT NULL
) c
ORDER BY c.account_id, c.dwh_source_file DESC, c.dwh_row_number DESC;
