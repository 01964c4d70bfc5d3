-- The day a snapshot delivery was compared, as the step's own current_date saw it (its
-- session's time zone): a step that compares bronze dates with today's compares again
-- the keys dated between its base delivery's day and today (include/etl/warehouse/
-- snapshot.py, bronze_key.clock). Deliveries recorded before this migration have none:
-- their recorded_at's date stands in for it.
ALTER TABLE tools.snapshot_delivery ADD COLUMN IF NOT EXISTS compared_on date;
ALTER TABLE tools.snapshot_delivery ALTER COLUMN compared_on SET DEFAULT current_date;
COMMENT ON COLUMN tools.snapshot_delivery.compared_on IS
    'current_date of the transaction that compared (or recorded) the delivery';
