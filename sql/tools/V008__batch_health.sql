-- Batch health: each closed successful batch judged against the client's recent
-- successful batches (include/etl/warehouse/health.py). An unhealthy batch stays SUCCESS;
-- this row says why it is marked, and what it was compared with.
CREATE TABLE IF NOT EXISTS tools.batch_health (
    client_schema   text NOT NULL,
    batch_id        text NOT NULL,
    healthy         boolean NOT NULL,
    reasons         text[] NOT NULL DEFAULT '{}',
    figures         jsonb NOT NULL,     -- seconds, loaded_rows, rejected_rows of the batch
    baseline        jsonb NOT NULL,     -- the batches compared with, and their medians
    judged_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (client_schema, batch_id),
    FOREIGN KEY (client_schema, batch_id) REFERENCES tools.batch (client_schema, batch_id)
);

-- Alerts sent (or attempted): one row per batch outcome and target, so "who was told
-- what, when" is one query, and a callback run twice does not alert twice.
CREATE TABLE IF NOT EXISTS tools.alert_log (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    client_schema   text NOT NULL,
    batch_id        text,
    dag_run_id      text,
    event           text NOT NULL,
    target          text NOT NULL,
    subject         text NOT NULL,
    status          text NOT NULL CHECK (status IN ('SENT', 'FAILED')),
    error_message   text,
    sent_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS alert_log_client_idx ON tools.alert_log (client_schema, sent_at);
