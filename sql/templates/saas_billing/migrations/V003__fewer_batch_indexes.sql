-- {{ client }}: drop the silver B-trees on dwh_batch_id that a unique (dwh_batch_id, <key>)
-- index already covers (its leading column serves every batch lookup); each one only
-- cost writes. The same change as client1's V004.

DROP INDEX IF EXISTS {{ silver }}.billing_invoices_batch_idx;
DROP INDEX IF EXISTS {{ silver }}.billing_plans_batch_idx;
DROP INDEX IF EXISTS {{ silver }}.app_accounts_batch_idx;
DROP INDEX IF EXISTS {{ silver }}.app_usage_events_batch_idx;
