-- {{ gold }}.fact_invoices: upsert the batch's invoices on invoice_no, with the account
-- and plan surrogate keys looked up in the dimensions (NULL when unknown: left join).
-- An older batch never overwrites a newer one. Facts whose account or plan was unknown
-- when they were loaded are attached once the member has arrived (any batch).

INSERT INTO {{ gold }}.fact_invoices AS t (
    invoice_no, account_key, plan_key, account_id, plan_code, invoice_date, due_date,
    seats, amount, currency, status, auto_renew, dwh_batch_id
)
SELECT s.invoice_no, a.account_key, p.plan_key, s.account_id, s.plan_code, s.invoice_date,
       s.due_date, s.seats, s.amount, s.currency, s.status, s.auto_renew, s.dwh_batch_id
FROM {{ silver }}.billing_invoices s
LEFT JOIN {{ gold }}.dim_accounts a ON a.account_id = s.account_id
LEFT JOIN {{ gold }}.dim_plans p ON p.plan_code = s.plan_code
WHERE s.dwh_batch_id = %(batch_id)s
ON CONFLICT (invoice_no) DO UPDATE SET
    account_key    = EXCLUDED.account_key,
    plan_key       = EXCLUDED.plan_key,
    account_id     = EXCLUDED.account_id,
    plan_code      = EXCLUDED.plan_code,
    invoice_date   = EXCLUDED.invoice_date,
    due_date       = EXCLUDED.due_date,
    seats          = EXCLUDED.seats,
    amount         = EXCLUDED.amount,
    currency       = EXCLUDED.currency,
    status         = EXCLUDED.status,
    auto_renew     = EXCLUDED.auto_renew,
    dwh_batch_id   = EXCLUDED.dwh_batch_id,
    dwh_updated_at = now()
WHERE t.dwh_batch_id <= EXCLUDED.dwh_batch_id;

-- Late-arriving dimension members.
UPDATE {{ gold }}.fact_invoices f
SET account_key = a.account_key, dwh_updated_at = now()
FROM {{ gold }}.dim_accounts a
WHERE f.account_key IS NULL AND a.account_id = f.account_id;

UPDATE {{ gold }}.fact_invoices f
SET plan_key = p.plan_key, dwh_updated_at = now()
FROM {{ gold }}.dim_plans p
WHERE f.plan_key IS NULL AND f.plan_code IS NOT NULL AND p.plan_code = f.plan_code;
