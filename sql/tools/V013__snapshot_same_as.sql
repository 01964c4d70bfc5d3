-- A snapshot delivered again as it was (include/etl/warehouse/snapshot.py, "The same
-- snapshot again"): its silver step neither cleans nor compares it. The delivery record
-- says which step compared it, how many keys (a day's changed rows only, when the step
-- declares how a bronze row's key is computed) and, when it was not compared, which batch
-- it repeats.
ALTER TABLE tools.snapshot_delivery ADD COLUMN IF NOT EXISTS step_digest text;
ALTER TABLE tools.snapshot_delivery ADD COLUMN IF NOT EXISTS same_as_batch text;
COMMENT ON COLUMN tools.snapshot_delivery.step_digest IS
    'a hash of the silver step that took the snapshot (its SQL, key, table columns and the applied migrations)';
COMMENT ON COLUMN tools.snapshot_delivery.same_as_batch IS
    'the earlier batch whose bronze rows this batch delivered again, unchanged: not cleaned or compared (NULL: compared)';
ALTER TABLE tools.snapshot_delivery ADD COLUMN IF NOT EXISTS compared_keys bigint;
COMMENT ON COLUMN tools.snapshot_delivery.compared_keys IS
    'the keys compared: those of the rows changed since the delivery before (NULL: every key delivered; 0: the same snapshot again)';
ALTER TABLE tools.snapshot_delivery ADD COLUMN IF NOT EXISTS bronze_tables text;
COMMENT ON COLUMN tools.snapshot_delivery.bronze_tables IS
    'the tables that held the batch''s bronze rows when it was compared (a reload makes new ones: a later batch then compares in full)';
