-- What each SQL step last wrote for a batch, so that running it again when nothing it
-- reads has changed can be skipped (include/sqlstep.py).
--
-- write_id orders the writes of all steps: the version of a silver or gold table is the
-- highest write_id of the steps that write it (any batch). fingerprint is a hash of the
-- step's SQL text, its parameters, the applied migrations and the version of every
-- table the step reads, taken right after the step wrote. A step whose fingerprint,
-- computed again before it runs, is unchanged would write exactly what it wrote then.
-- The row is written in the step's own transaction: a step that fails or is killed
-- leaves its previous row (and its previous rows in the warehouse) as they were.
CREATE SEQUENCE IF NOT EXISTS tools.sql_step_write_seq;

CREATE TABLE IF NOT EXISTS tools.sql_step_state (
    client_schema   text NOT NULL,
    layer           text NOT NULL CHECK (layer IN ('silver', 'gold', 'views')),
    step_name       text NOT NULL,
    batch_id        text NOT NULL,
    target_table    text NOT NULL,             -- schema.table the step writes
    write_id        bigint NOT NULL,           -- nextval of tools.sql_step_write_seq
    fingerprint     text NOT NULL,
    written_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (client_schema, layer, step_name, batch_id)
);
-- the version of a table: max(write_id) of its writers
CREATE INDEX IF NOT EXISTS sql_step_state_target_idx
    ON tools.sql_step_state (client_schema, target_table, write_id);
