-- A SQL step that runs again for a later batch, because an earlier batch was run again
-- with other rows (a snapshot delivery's later comparisons, include/etl/warehouse/snapshot.py),
-- logs that run under the later batch too: the console's batch page and "what happened to
-- batch Y" in SQL then show when and why its rows were recomputed.
ALTER TABLE tools.sql_step_log ADD COLUMN IF NOT EXISTS again_after text;
COMMENT ON COLUMN tools.sql_step_log.again_after IS
    'the earlier batch whose run of this step ran it again for this batch (NULL: a run of its own)';

-- The per-layer views show the new column (a view's * is the column list it was created with).
CREATE OR REPLACE VIEW tools.transformation_log AS
    SELECT * FROM tools.sql_step_log WHERE layer = 'silver';
CREATE OR REPLACE VIEW tools.integration_log AS
    SELECT * FROM tools.sql_step_log WHERE layer = 'gold';
CREATE OR REPLACE VIEW tools.mv_refresh_log AS
    SELECT * FROM tools.sql_step_log WHERE layer = 'views';
