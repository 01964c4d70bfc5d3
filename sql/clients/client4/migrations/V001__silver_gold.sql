-- {{ client }} (online shop, application database): silver and gold.
-- The bronze table is created by the runtime from include/clients/{{ client }}.yaml.

CREATE SCHEMA IF NOT EXISTS {{ silver }};
CREATE SCHEMA IF NOT EXISTS {{ gold }};

-- The newest version of each customer the source has shown us (soft-deleted ones too,
-- flagged); dwh_batch_id is the batch that wrote that version.
CREATE TABLE IF NOT EXISTS {{ silver }}.customers (
    customer_id  bigint PRIMARY KEY,
    full_name    text,
    email        text,
    country      text,
    plan         text,
    deleted      boolean NOT NULL,
    updated_at   timestamp NOT NULL,
    dwh_batch_id text NOT NULL
);
CREATE INDEX IF NOT EXISTS customers_batch_idx ON {{ silver }}.customers (dwh_batch_id);

-- The current customers (a soft-deleted customer leaves).
CREATE TABLE IF NOT EXISTS {{ gold }}.dim_customers (
    customer_id  bigint PRIMARY KEY,
    full_name    text,
    email        text,
    country      text,
    plan         text,
    updated_at   timestamp NOT NULL,
    dwh_batch_id text NOT NULL
);
CREATE INDEX IF NOT EXISTS dim_customers_batch_idx ON {{ gold }}.dim_customers (dwh_batch_id);
