-- {{ silver }}.billing_plans: the batch's price list, typed and cleaned.
-- plan_code trimmed and upper-cased, names trimmed, tier / billing period lower-cased
-- (blank -> NULL). One row per plan_code: the last delivered row wins. The price list is
-- optional: a batch without it simply has no rows here.

DELETE FROM {{ silver }}.billing_plans WHERE dwh_batch_id = %(batch_id)s;

INSERT INTO {{ silver }}.billing_plans (
    plan_code, plan_name, tier, monthly_price, billing_period, is_active,
    dwh_batch_id, dwh_source_file, dwh_row_number
)
SELECT DISTINCT ON (c.plan_code)
    c.plan_code, c.plan_name, c.tier, c.monthly_price, c.billing_period, c.is_active,
    c.dwh_batch_id, c.dwh_source_file, c.dwh_row_number
FROM (
    SELECT
        upper(btrim(b.plan_code))                   AS plan_code,
        nullif(btrim(b.plan_name), '')              AS plan_name,
        nullif(lower(btrim(b.tier)), '')            AS tier,
        round(b.monthly_price, 2)                   AS monthly_price,
        nullif(lower(btrim(b.billing_period)), '')  AS billing_period,
        b.is_active,
        b.dwh_batch_id,
        b.dwh_source_file,
        b.dwh_row_number
    FROM {{ bronze }}.billing_plans b
    WHERE b.dwh_batch_id = %(batch_id)s
      AND nullif(btrim(b.plan_code), '') IS NOT NULL
) c
ORDER BY c.plan_code, c.dwh_source_file DESC, c.dwh_row_number DESC;
