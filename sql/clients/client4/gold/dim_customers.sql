-- Gold: the current customers. What the batch wrote into silver is applied: a customer
-- it soft-deleted leaves, the others are inserted or replace their older row.
DELETE FROM {{ gold }}.dim_customers AS g
USING {{ silver }}.customers AS s
WHERE s.dwh_batch_id = %(batch_id)s AND s.deleted AND g.customer_id = s.customer_id;

INSERT INTO {{ gold }}.dim_customers AS g
    (customer_id, full_name, email, country, plan, updated_at, dwh_batch_id)
SELECT customer_id, full_name, email, country, plan, updated_at, dwh_batch_id
FROM {{ silver }}.customers
WHERE dwh_batch_id = %(batch_id)s AND NOT deleted
ON CONFLICT (customer_id) DO UPDATE SET
    full_name = EXCLUDED.full_name,
    email = EXCLUDED.email,
    country = EXCLUDED.country,
    plan = EXCLUDED.plan,
    updated_at = EXCLUDED.updated_at,
    dwh_batch_id = EXCLUDED.dwh_batch_id
WHERE EXCLUDED.updated_at >= g.updated_at;
