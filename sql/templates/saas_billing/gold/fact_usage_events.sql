-- {{ gold }}.fact_usage_events: merge the batch's usage events on event_id, with the
-- account surrogate key looked up in dim_accounts (NULL when unknown: left join).
-- An older batch never overwrites a newer one, and an unchanged event is left alone.
-- Events whose account was unknown when they were loaded are attached once the account
-- has arrived (any batch).
--
-- As retail_crm_erp's fact_sales (see there): existing events are UPDATEd only where this batch
-- is as new or newer and differs, new events are a plain INSERT (anti-join on event_id),
-- both in one statement that sees the table as it was before the batch. Silver holds
-- one row per event and batch (its unique index), so no de-duplication is needed.

WITH events AS (
    SELECT s.event_id, a.account_key, s.account_id, s.event_type, s.event_ts, s.event_date,
           s.quantity, s.feature, s.dwh_batch_id
    FROM {{ silver }}.app_usage_events AS s
    LEFT JOIN {{ gold }}.dim_accounts AS a ON a.account_id = s.account_id
    WHERE s.dwh_batch_id = %(batch_id)s
),
changed AS (
    UPDATE {{ gold }}.fact_usage_events AS t
    SET account_key    = e.account_key,
        account_id     = e.account_id,
        event_type     = e.event_type,
        event_ts       = e.event_ts,
        event_date     = e.event_date,
        quantity       = e.quantity,
        feature        = e.feature,
        dwh_batch_id   = e.dwh_batch_id,
        dwh_updated_at = now()
    FROM events AS e
    WHERE t.event_id = e.event_id
      AND t.dwh_batch_id <= e.dwh_batch_id
      AND (t.account_key, t.account_id, t.event_type, t.event_ts, t.event_date, t.quantity,
           t.feature, t.dwh_batch_id)
          IS DISTINCT FROM
          (e.account_key, e.account_id, e.event_type, e.event_ts, e.event_date, e.quantity,
           e.feature, e.dwh_batch_id)
    RETURNING 1
)
INSERT INTO {{ gold }}.fact_usage_events (
    event_id, account_key, account_id, event_type, event_ts, event_date, quantity, feature,
    dwh_batch_id
)
SELECT e.event_id, e.account_key, e.account_id, e.event_type, e.event_ts, e.event_date,
       e.quantity, e.feature, e.dwh_batch_id
FROM events AS e
WHERE NOT EXISTS (
    SELECT 1 FROM {{ gold }}.fact_usage_events AS t WHERE t.event_id = e.event_id
);

-- Late-arriving accounts.
UPDATE {{ gold }}.fact_usage_events f
SET account_key = a.account_key, dwh_updated_at = now()
FROM {{ gold }}.dim_accounts a
WHERE f.account_key IS NULL AND a.account_id = f.account_id;
