-- Backfills and queued runs.
-- * A run's sensor reserves the client (a lease with no batch yet) once its files are
--   there, so runs that start together (a backfill's days) queue instead of failing.
-- * A backfill's batch records the delivery day it was opened for.
ALTER TABLE tools.client_lease ALTER COLUMN batch_id DROP NOT NULL;
ALTER TABLE tools.batch ADD COLUMN IF NOT EXISTS delivery_date date;
COMMENT ON COLUMN tools.batch.delivery_date IS
    'backfill batches: the day (YYYYMMDD stamp in the file names) whose deliveries they claimed';
