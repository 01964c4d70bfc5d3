-- Snapshot deliveries (include/etl/warehouse/snapshot.py): a file delivered in full every
-- day adds to silver only what changed since the batches before it. These tables keep
-- what the silver rows alone cannot say.

-- Each batch's snapshot of a silver table: the rows it delivered, the rows silver kept
-- (new keys and changed content), the keys it no longer holds.
CREATE TABLE IF NOT EXISTS tools.snapshot_delivery (
    client_schema   text NOT NULL,
    table_name      text NOT NULL,          -- silver_<client>.<table>
    batch_id        text NOT NULL,
    delivered_rows  bigint NOT NULL,        -- the snapshot's rows after silver's cleaning
    changed_rows    bigint NOT NULL,        -- kept in silver: new keys and changed rows
    vanished_keys   bigint NOT NULL,        -- keys held before and absent from the snapshot
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (client_schema, table_name, batch_id)
);

-- A key a snapshot no longer holds: deleted at the source as of that batch. Its last
-- row stays in silver (the history); a later snapshot that holds the key again adds it
-- back as a new row.
CREATE TABLE IF NOT EXISTS tools.snapshot_vanished (
    client_schema   text NOT NULL,
    table_name      text NOT NULL,
    batch_id        text NOT NULL,
    key             jsonb NOT NULL,         -- the key columns' values, in the config's order
    PRIMARY KEY (client_schema, table_name, batch_id, key)
);
CREATE INDEX IF NOT EXISTS snapshot_vanished_key_idx
    ON tools.snapshot_vanished (client_schema, table_name, key);
