-- One active batch run per client. open_batch takes the lease (under the client's
-- advisory lock) and close_batch gives it back; a lease whose DAG run is no longer
-- active in Airflow is taken over by the next run.
CREATE TABLE IF NOT EXISTS tools.client_lease (
    client_schema   text PRIMARY KEY REFERENCES tools.client_reference (client_schema),
    dag_run_id      text NOT NULL,
    batch_id        text NOT NULL,
    acquired_at     timestamptz NOT NULL DEFAULT now()
);
