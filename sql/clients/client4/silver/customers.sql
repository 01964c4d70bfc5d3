-- Silver: the newest version of each customer, one row per customer_id (hard deletes: below).
-- The batch's rows (its window, read again over the lookback) are upserted by key, and a
-- row never overwrites a newer version: a late or out-of-order row whose updated_at is
-- not later than silver's is skipped, and the log says how many were. The batch that
-- wrote a version may write it again (a cleared task): the same rows, nothing changes.
WITH batch AS (
    SELECT DISTINCT ON (customer_id)
        customer_id,
        btrim(full_name)          AS full_name,
        lower(btrim(email))       AS email,
        upper(btrim(country))     AS country,
        plan,
        coalesce(deleted, false)  AS deleted,
        updated_at,
        dwh_batch_id
    FROM {{ bronze }}.shop_customers
    WHERE dwh_batch_id = %(batch_id)s
    ORDER BY customer_id, updated_at DESC
),
written AS (
    INSERT INTO {{ silver }}.customers AS s
        (customer_id, full_name, email, country, plan, deleted, updated_at, dwh_batch_id)
    SELECT customer_id, full_name, email, country, plan, deleted, updated_at, dwh_batch_id
    FROM batch
    ON CONFLICT (customer_id) DO UPDATE SET
        full_name = EXCLUDED.full_name,
        email = EXCLUDED.email,
        country = EXCLUDED.country,
        plan = EXCLUDED.plan,
        deleted = EXCLUDED.deleted,
        updated_at = EXCLUDED.updated_at,
        dwh_batch_id = EXCLUDED.dwh_batch_id
    WHERE EXCLUDED.updated_at > s.updated_at
       OR (EXCLUDED.updated_at = s.updated_at AND EXCLUDED.dwh_batch_id = s.dwh_batch_id)
    RETURNING 1
)
SELECT shared.note(format(
    'customers: %%s rows in the batch, %%s written, %%s not newer than silver''s (skipped)',
    (SELECT count(*) FROM batch),
    (SELECT count(*) FROM written),
    (SELECT count(*) FROM batch) - (SELECT count(*) FROM written)
));

-- Hard deletes. A full load reads the whole source (the first run, a full_load run, and
-- every `full_load_every`): a customer silver holds that it did not bring is no longer in
-- the source, so it is marked deleted, written by this batch, and gold drops it. A key the
-- batch rejected (in the source but invalid, e.g. no updated_at) is not gone. Only rows
-- of earlier batches: reprocessing an older full load never deletes what a newer batch
-- brought.
WITH gone AS (
    UPDATE {{ silver }}.customers AS s
    SET deleted = true, dwh_batch_id = %(batch_id)s
    WHERE NOT s.deleted
      AND s.dwh_batch_id < %(batch_id)s
      AND EXISTS (SELECT FROM tools.extract_window AS w
                  WHERE w.client_schema = '{{ client }}' AND w.batch_id = %(batch_id)s
                    AND w.logical_source_file = 'customers' AND w.full_load)
      AND NOT EXISTS (SELECT FROM {{ bronze }}.shop_customers AS b
                      WHERE b.dwh_batch_id = %(batch_id)s AND b.customer_id = s.customer_id)
      AND NOT EXISTS (SELECT FROM tools.rejected_rows AS r
                      WHERE r.client_schema = '{{ client }}' AND r.batch_id = %(batch_id)s
                        AND r.logical_source_file = 'customers'
                        AND r.raw_record ->> 'customer_id' = s.customer_id::text)
    RETURNING 1
)
SELECT shared.note(format(
    'customers: %%s no longer in the source (a full load): marked deleted', (SELECT count(*) FROM gone)
));
