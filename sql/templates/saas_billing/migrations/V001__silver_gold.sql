-- {{ client }} (SaaS subscriptions): silver and gold schemas, tables and materialized views.
-- Idempotent: every object is created only if it does not exist yet. The bronze tables
-- are created by the runtime from include/clients/{{ client }}.yaml, not here.

CREATE SCHEMA IF NOT EXISTS {{ silver }};
CREATE SCHEMA IF NOT EXISTS {{ gold }};

-- ================================================================ silver
-- Cleaned, typed, one row per natural key and batch (the last delivered row wins).

CREATE TABLE IF NOT EXISTS {{ silver }}.billing_invoices (
    invoice_no      text NOT NULL,          -- upper case, trimmed
    account_id      text NOT NULL,          -- upper case, trimmed
    plan_code       text,                   -- upper case, NULL when blank
    invoice_date    date NOT NULL,
    due_date        date,
    seats           integer,
    amount          numeric(14, 2) NOT NULL,
    currency        text NOT NULL,          -- ISO code, USD when blank
    status          text NOT NULL,          -- paid | open | overdue | void | unknown
    auto_renew      boolean,
    dwh_batch_id    text NOT NULL,
    dwh_source_file text,
    dwh_row_number  bigint,
    dwh_loaded_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS billing_invoices_batch_idx
    ON {{ silver }}.billing_invoices (dwh_batch_id);
CREATE UNIQUE INDEX IF NOT EXISTS billing_invoices_batch_key_uq
    ON {{ silver }}.billing_invoices (dwh_batch_id, invoice_no);

CREATE TABLE IF NOT EXISTS {{ silver }}.billing_plans (
    plan_code       text NOT NULL,
    plan_name       text,
    tier            text,                   -- lower case, NULL when blank
    monthly_price   numeric(12, 2),
    billing_period  text,                   -- monthly | annual
    is_active       boolean,
    dwh_batch_id    text NOT NULL,
    dwh_source_file text,
    dwh_row_number  bigint,
    dwh_loaded_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS billing_plans_batch_idx
    ON {{ silver }}.billing_plans (dwh_batch_id);
CREATE UNIQUE INDEX IF NOT EXISTS billing_plans_batch_key_uq
    ON {{ silver }}.billing_plans (dwh_batch_id, plan_code);

CREATE TABLE IF NOT EXISTS {{ silver }}.app_accounts (
    account_id      text NOT NULL,
    company_name    text,
    country_code    text,                   -- ISO alpha-2, upper case, NULL when blank
    segment         text NOT NULL,          -- SMB | Mid-Market | Enterprise | Unknown
    signup_date     date,
    is_active       boolean,
    dwh_batch_id    text NOT NULL,
    dwh_source_file text,
    dwh_row_number  bigint,
    dwh_loaded_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS app_accounts_batch_idx
    ON {{ silver }}.app_accounts (dwh_batch_id);
CREATE UNIQUE INDEX IF NOT EXISTS app_accounts_batch_key_uq
    ON {{ silver }}.app_accounts (dwh_batch_id, account_id);

CREATE TABLE IF NOT EXISTS {{ silver }}.app_usage_events (
    event_id        text NOT NULL,          -- lower case, trimmed
    account_id      text NOT NULL,
    event_type      text NOT NULL,          -- lower case, 'unknown' when blank
    event_ts        timestamp NOT NULL,
    event_date      date NOT NULL,
    quantity        bigint NOT NULL,        -- 1 when not delivered
    feature         text,
    dwh_batch_id    text NOT NULL,
    dwh_source_file text,
    dwh_row_number  bigint,
    dwh_loaded_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS app_usage_events_batch_idx
    ON {{ silver }}.app_usage_events (dwh_batch_id);
CREATE UNIQUE INDEX IF NOT EXISTS app_usage_events_batch_key_uq
    ON {{ silver }}.app_usage_events (dwh_batch_id, event_id);

-- ================================================================ gold
-- Surrogate keys are identities, assigned once and never changed by the upserts.
-- dwh_batch_id is the batch that last wrote the row; an older batch never overwrites it.

CREATE TABLE IF NOT EXISTS {{ gold }}.dim_accounts (
    account_key     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id      text NOT NULL UNIQUE,
    company_name    text,
    country_code    text,
    segment         text NOT NULL,
    signup_date     date,
    is_active       boolean,
    dwh_batch_id    text NOT NULL,
    dwh_created_at  timestamptz NOT NULL DEFAULT now(),
    dwh_updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS dim_accounts_batch_idx ON {{ gold }}.dim_accounts (dwh_batch_id);

CREATE TABLE IF NOT EXISTS {{ gold }}.dim_plans (
    plan_key        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    plan_code       text NOT NULL UNIQUE,
    plan_name       text,
    tier            text,
    monthly_price   numeric(12, 2),
    billing_period  text,
    is_active       boolean,
    dwh_batch_id    text NOT NULL,
    dwh_created_at  timestamptz NOT NULL DEFAULT now(),
    dwh_updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS dim_plans_batch_idx ON {{ gold }}.dim_plans (dwh_batch_id);

-- account_id / plan_code are kept on the facts so a dimension member that arrives in a
-- later batch is still attached (see the fact steps).
CREATE TABLE IF NOT EXISTS {{ gold }}.fact_invoices (
    invoice_key     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    invoice_no      text NOT NULL UNIQUE,
    account_key     bigint REFERENCES {{ gold }}.dim_accounts (account_key),
    plan_key        bigint REFERENCES {{ gold }}.dim_plans (plan_key),
    account_id      text NOT NULL,
    plan_code       text,
    invoice_date    date NOT NULL,
    due_date        date,
    seats           integer,
    amount          numeric(14, 2) NOT NULL,
    currency        text NOT NULL,
    status          text NOT NULL,
    auto_renew      boolean,
    dwh_batch_id    text NOT NULL,
    dwh_created_at  timestamptz NOT NULL DEFAULT now(),
    dwh_updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS fact_invoices_batch_idx ON {{ gold }}.fact_invoices (dwh_batch_id);
CREATE INDEX IF NOT EXISTS fact_invoices_account_idx ON {{ gold }}.fact_invoices (account_key);
CREATE INDEX IF NOT EXISTS fact_invoices_date_idx ON {{ gold }}.fact_invoices (invoice_date);
CREATE INDEX IF NOT EXISTS fact_invoices_unresolved_account_idx
    ON {{ gold }}.fact_invoices (account_id) WHERE account_key IS NULL;
CREATE INDEX IF NOT EXISTS fact_invoices_unresolved_plan_idx
    ON {{ gold }}.fact_invoices (plan_code) WHERE plan_key IS NULL AND plan_code IS NOT NULL;

CREATE TABLE IF NOT EXISTS {{ gold }}.fact_usage_events (
    event_key       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id        text NOT NULL UNIQUE,
    account_key     bigint REFERENCES {{ gold }}.dim_accounts (account_key),
    account_id      text NOT NULL,
    event_type      text NOT NULL,
    event_ts        timestamp NOT NULL,
    event_date      date NOT NULL,
    quantity        bigint NOT NULL,
    feature         text,
    dwh_batch_id    text NOT NULL,
    dwh_created_at  timestamptz NOT NULL DEFAULT now(),
    dwh_updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS fact_usage_events_batch_idx ON {{ gold }}.fact_usage_events (dwh_batch_id);
CREATE INDEX IF NOT EXISTS fact_usage_events_account_idx ON {{ gold }}.fact_usage_events (account_key);
CREATE INDEX IF NOT EXISTS fact_usage_events_date_idx ON {{ gold }}.fact_usage_events (event_date);
CREATE INDEX IF NOT EXISTS fact_usage_events_unresolved_account_idx
    ON {{ gold }}.fact_usage_events (account_id) WHERE account_key IS NULL;

-- ================================================================ materialized views
-- Each has a unique index, so it can also be refreshed CONCURRENTLY.

-- Billed and collected revenue per month, plan and currency (void invoices excluded).
CREATE MATERIALIZED VIEW IF NOT EXISTS {{ gold }}.mv_monthly_revenue AS
SELECT
    date_trunc('month', f.invoice_date)::date                       AS revenue_month,
    coalesce(p.plan_code, f.plan_code, 'UNKNOWN')                   AS plan_code,
    max(p.tier)                                                     AS tier,
    f.currency,
    count(*)                                                        AS invoice_count,
    count(DISTINCT f.account_id)                                    AS billed_accounts,
    sum(f.seats)                                                    AS seats,
    sum(f.amount)                                                   AS billed_amount,
    coalesce(sum(f.amount) FILTER (WHERE f.status = 'paid'), 0)     AS paid_amount,
    coalesce(sum(f.amount) FILTER (WHERE f.status IN ('open', 'overdue')), 0) AS outstanding_amount
FROM {{ gold }}.fact_invoices f
LEFT JOIN {{ gold }}.dim_plans p ON p.plan_key = f.plan_key
WHERE f.status <> 'void'
GROUP BY 1, 2, 4
WITH DATA;
CREATE UNIQUE INDEX IF NOT EXISTS mv_monthly_revenue_uq
    ON {{ gold }}.mv_monthly_revenue (revenue_month, plan_code, currency);

-- One row per account: product usage next to what it was billed.
CREATE MATERIALIZED VIEW IF NOT EXISTS {{ gold }}.mv_account_usage_summary AS
SELECT
    a.account_key,
    a.account_id,
    a.company_name,
    a.segment,
    a.country_code,
    a.is_active,
    coalesce(u.event_count, 0)          AS event_count,
    coalesce(u.api_calls, 0)            AS api_calls,
    coalesce(u.active_days, 0)          AS active_days,
    u.first_event_at,
    u.last_event_at,
    coalesce(i.invoice_count, 0)        AS invoice_count,
    coalesce(i.billed_amount, 0)        AS billed_amount,
    coalesce(i.outstanding_amount, 0)   AS outstanding_amount,
    i.last_invoice_date
FROM {{ gold }}.dim_accounts a
LEFT JOIN (
    SELECT
        account_key,
        count(*)                                                    AS event_count,
        coalesce(sum(quantity) FILTER (WHERE event_type = 'api_call'), 0) AS api_calls,
        count(DISTINCT event_date)                                  AS active_days,
        min(event_ts)                                               AS first_event_at,
        max(event_ts)                                               AS last_event_at
    FROM {{ gold }}.fact_usage_events
    WHERE account_key IS NOT NULL
    GROUP BY account_key
) u ON u.account_key = a.account_key
LEFT JOIN (
    SELECT
        account_key,
        count(*)                                                    AS invoice_count,
        sum(amount)                                                 AS billed_amount,
        coalesce(sum(amount) FILTER (WHERE status IN ('open', 'overdue')), 0) AS outstanding_amount,
        max(invoice_date)                                           AS last_invoice_date
    FROM {{ gold }}.fact_invoices
    WHERE account_key IS NOT NULL AND status <> 'void'
    GROUP BY account_key
) i ON i.account_key = a.account_key
WITH DATA;
CREATE UNIQUE INDEX IF NOT EXISTS mv_account_usage_summary_uq
    ON {{ gold }}.mv_account_usage_summary (account_key);
