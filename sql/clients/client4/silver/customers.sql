-- Silver: the newest version of each customer, one row per customer_id.
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
