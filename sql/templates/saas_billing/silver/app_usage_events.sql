-- {{ silver }}.app_usage_events: the batch's metered usage events, typed and cleaned.
-- event_id trimmed and lower-cased (ids are case-insensitive hex tokens), account_id
-- trimmed and upper-cased, event type / feature lower-cased (blank type -> 'unknown',
-- blank feature -> NULL), quantity 1 when not delivered. The app delivers at least once:
-- one row per event_id, the last delivered row wins.

DELETE FROM {{ silver }}.app_usage_events WHERE dwh_batch_id = %(batch_id)s;

INSERT INTO {{ silver }}.app_usage_events (
    event_id, account_id, event_type, event_ts, event_date, quantity, feature,
    dwh_batch_id, dwh_source_file, dwh_row_number
)
SELECT DISTINCT ON (c.event_id)
    c.event_id, c.account_id, c.event_type, c.event_ts, c.event_ts::date, c.quantity, c.feature,
    c.dwh_batch_id, c.dwh_source_file, c.dwh_row_number
FROM (
    SELECT
        lower(btrim(b.event_id))                                    AS event_id,
        upper(btrim(b.account_id))                                  AS account_id,
        coalesce(nullif(lower(btrim(b.event_type)), ''), 'unknown') AS event_type,
        b.event_ts,
        coalesce(b.quantity, 1)                                     AS quantity,
        nullif(lower(btrim(b.feature)), '')                         AS feature,
        b.dwh_batch_id,
        b.dwh_source_file,
        b.dwh_row_number
    FROM {{ bronze }}.app_usage_events b
    WHERE b.dwh_batch_id = %(batch_id)s
      AND nullif(btrim(b.event_id), '') IS NOT NULL
      AND nullif(btrim(b.account_id), '') IS NOT NULL
      AND b.event_ts IS NOT NULL
) c
ORDER BY c.event_id, c.dwh_source_file DESC, c.dwh_row_number DESC;
