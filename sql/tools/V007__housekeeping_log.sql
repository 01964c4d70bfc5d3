-- What the housekeeping DAG removed (or, in a dry run, would remove): one row per client,
-- batch and kind of thing (raw files, Parquet, manifests, bronze tables, tools rows), so
-- an operator can see what retention freed and when.
CREATE TABLE IF NOT EXISTS tools.housekeeping_log (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    dag_run_id      text,
    client_schema   text NOT NULL,
    batch_id        text,
    kind            text NOT NULL,      -- raw_files | parquet | manifests | bronze_tables | tools_rows | airflow_metadata
    items           bigint NOT NULL,    -- files, tables or rows
    bytes           bigint,             -- files only
    dry_run         boolean NOT NULL,
    detail          text,
    logged_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS housekeeping_log_client_idx ON tools.housekeeping_log (client_schema, logged_at);
