-- A SQL step may write tables besides its target (e.g. gold.fact_sales records where the
-- lines it moves were before, for the summaries). Those tables get the step's write_id
-- too, so the steps that read them see a new version (include/sqlstep.py) and a step
-- writing a side table can still be skipped when nothing it reads has changed.
ALTER TABLE tools.sql_step_state
    ADD COLUMN IF NOT EXISTS also_writes text[] NOT NULL DEFAULT '{}';
CREATE INDEX IF NOT EXISTS sql_step_state_also_writes_idx
    ON tools.sql_step_state USING gin (also_writes);
