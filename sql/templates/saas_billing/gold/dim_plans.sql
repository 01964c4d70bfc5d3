-- {{ gold }}.dim_plans: upsert the batch's price list (SCD type 1) on plan_code.
-- plan_key is assigned once and kept; an older batch never overwrites a newer one.
-- Plans absent from a price list are kept (the list is optional and may be partial).

INSERT INTO {{ gold }}.dim_plans AS t (
    plan_code, plan_name, tier, monthly_price, billing_period, is_active, dwh_batch_id
)
SELECT s.plan_code, s.plan_name, s.tier, s.monthly_price, s.billing_period, s.is_active,
       s.dwh_batch_id
FROM {{ silver }}.billing_plans s
WHERE s.dwh_batch_id = %(batch_id)s
ON CONFLICT (plan_code) DO UPDATE SET
    plan_name      = EXCLUDED.plan_name,
    tier           = EXCLUDED.tier,
    monthly_price  = EXCLUDED.monthly_price,
    billing_period = EXCLUDED.billing_period,
    is_active      = EXCLUDED.is_active,
    dwh_batch_id   = EXCLUDED.dwh_batch_id,
    dwh_updated_at = now()
WHERE t.dwh_batch_id <= EXCLUDED.dwh_batch_id;
