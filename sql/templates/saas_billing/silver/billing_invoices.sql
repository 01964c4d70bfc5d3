-- {{ silver }}.billing_invoices: the batch's invoices, typed and cleaned.
-- Codes and ids trimmed and upper-cased, blank plan code -> NULL, blank currency -> USD,
-- status lower-cased onto paid | open | overdue | void | unknown, seats outside
-- 0..1,000,000 -> NULL. One row per invoice_no: the last delivered row wins (latest file,
-- then highest row number), so a re-export or a corrected copy replaces the earlier line.

DELETE FROM {{ silver }}.billing_invoices WHERE dwh_batch_id = %(batch_id)s;

INSERT INTO {{ silver }}.billing_invoices (
    invoice_no, account_id, plan_code, invoice_date, due_date, seats, amount,
    currency, status, auto_renew, dwh_batch_id, dwh_source_file, dwh_row_number
)
SELECT DISTINCT ON (c.invoice_no)
    c.invoice_no, c.account_id, c.plan_code, c.invoice_date, c.due_date, c.seats, c.amount,
    c.currency, c.status, c.auto_renew, c.dwh_batch_id, c.dwh_source_file, c.dwh_row_number
FROM (
    SELECT
        upper(btrim(b.invoice_no))                              AS invoice_no,
        upper(btrim(b.account_id))                              AS account_id,
        nullif(upper(btrim(b.plan_code)), '')                   AS plan_code,
        b.invoice_date,
        b.due_date,
        CASE WHEN b.seats BETWEEN 0 AND 1000000 THEN round(b.seats)::integer END AS seats,
        round(b.amount, 2)                                      AS amount,
        coalesce(nullif(upper(btrim(b.currency)), ''), 'USD')   AS currency,
        CASE lower(btrim(b.status))
            WHEN 'paid' THEN 'paid'
            WHEN 'open' THEN 'open'
            WHEN 'overdue' THEN 'overdue'
            WHEN 'void' THEN 'void'
            ELSE 'unknown'
        END                                                     AS status,
        b.auto_renew,
        b.dwh_batch_id,
        b.dwh_source_file,
        b.dwh_row_number
    FROM {{ bronze }}.billing_invoices b
    WHERE b.dwh_batch_id = %(batch_id)s
      AND nullif(btrim(b.invoice_no), '') IS NOT NULL
      AND nullif(btrim(b.account_id), '') IS NOT NULL
      AND b.invoice_date IS NOT NULL
      AND b.amount IS NOT NULL
) c
ORDER BY c.invoice_no, c.dwh_source_file DESC, c.dwh_row_number DESC;
