-- {{ client }}: make loading gold.fact_usage_events (the high-volume fact: one row per
-- product usage event) cost close to writing its rows once.
--
-- The foreign key to dim_accounts checked each inserted or updated event against the
-- dimension, which the step's own join has just resolved (gold/fact_usage_events.sql);
-- the factory's quality gates check once per batch that every fact row joins its
-- dimensions. The account_key index is read by no query: the usage summary view
-- aggregates the whole table with a hash join. Kept: the unique event_id, the batch
-- index, the date index (analysts filter by date) and the partial index of the events
-- still waiting for their account.

ALTER TABLE {{ gold }}.fact_usage_events
    DROP CONSTRAINT IF EXISTS fact_usage_events_account_key_fkey;

DROP INDEX IF EXISTS {{ gold }}.fact_usage_events_account_idx;
