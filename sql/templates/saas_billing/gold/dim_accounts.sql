-- {{ gold }}.dim_accounts: upsert the batch's accounts (SCD type 1) on account_id.
-- account_key is assigned once and kept; a batch older than the one that last wrote a
-- row never overwrites it (re-running an old batch is harmless).

INSERT INTO {{ gold }}.dim_accounts AS t (
    account_id, company_name, country_code, segment, signup_date, is_active, dwh_batch_id
)
SELECT s.account_id, s.company_name, s.country_code, s.segment, s.signup_date, s.is_active,
       s.dwh_batch_id
FROM {{ silver }}.app_accounts s
WHERE s.dwh_batch_id = %(batch_id)s
ON CONFLICT (account_id) DO UPDATE SET
    company_name   = EXCLUDED.company_name,
    country_code   = EXCLUDED.country_code,
    segment        = EXCLUDED.segment,
    signup_date    = EXCLUDED.signup_date,
    is_active      = EXCLUDED.is_active,
    dwh_batch_id   = EXCLUDED.dwh_batch_id,
    dwh_updated_at = now()
WHERE t.dwh_batch_id <= EXCLUDED.dwh_batch_id;
