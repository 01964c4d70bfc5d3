-- gold_client2.fact_usage_events: upsert the batch's usage events on event_id, with the
-- account surrogate key looked up in dim_accounts (NULL when unknown: left join).
-- An older batch never overwrites a newer one. Events whose account was unknown when
-- they were loaded are attached once the account has arrived (any batch).

INSERT INTO gold_client2.fact_usage_events AS t (
    event_id, account_key, account_id, event_type, event_ts, event_date, quantity, feature,
    dwh_batch_id
)
SELECT s.event_id, a.account_key, s.account_id, s.event_type, s.event_ts, s.event_date,
       s.quantity, s.feature, s.dwh_batch_id
FROM silver_client2.app_usage_events s
LEFT JOIN gold_client2.dim_accounts a ON a.account_id = s.account_id
WHERE s.dwh_batch_id = %(batch_id)s
ON CONFLICT (event_id) DO UPDATE SET
    account_key    = EXCLUDED.account_key,
    account_id     = EXCLUDED.account_id,
    event_type     = EXCLUDED.event_type,
    event_ts       = EXCLUDED.event_ts,
    event_date     = EXCLUDED.event_date,
    quantity       = EXCLUDED.quantity,
    feature        = EXCLUDED.feature,
    dwh_batch_id   = EXCLUDED.dwh_batch_id,
    dwh_updated_at = now()
WHERE t.dwh_batch_id <= EXCLUDED.dwh_batch_id;

-- Late-arriving accounts.
UPDATE gold_client2.fact_usage_events f
SET account_key = a.account_key, dwh_updated_at = now()
FROM gold_client2.dim_accounts a
WHERE f.account_key IS NULL AND a.account_id = f.account_id;
