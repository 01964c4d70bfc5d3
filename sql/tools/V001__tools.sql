-- The tools schema: client reference and config (synchronised from the YAML files),
-- batches, and the audit / log tables every pipeline step writes. Operators answer
-- "what happened to file X in batch Y" from here.

CREATE SCHEMA IF NOT EXISTS tools;

-- ---------------------------------------------------------------- reference and config
CREATE TABLE IF NOT EXISTS tools.client_reference (
    client_id       integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    client_schema   text NOT NULL UNIQUE,
    display_name    text NOT NULL,
    owner           text NOT NULL,
    last_batch_id   integer NOT NULL DEFAULT 0,
    config_file     text NOT NULL,
    config_version  text NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS tools.client_config (
    client_schema       text NOT NULL REFERENCES tools.client_reference (client_schema),
    logical_source_file text NOT NULL,
    source_system       text NOT NULL,
    source_type         text NOT NULL,
    file_pattern        text NOT NULL,
    target_schema       text NOT NULL,
    target_table        text NOT NULL,
    is_required         boolean NOT NULL,
    key_columns         text[] NOT NULL,
    reject_max_rows     integer,
    reject_max_ratio    numeric NOT NULL,
    reader_options      jsonb NOT NULL,
    config_version      text NOT NULL,
    PRIMARY KEY (client_schema, logical_source_file)
);

CREATE TABLE IF NOT EXISTS tools.column_mapping (
    client_schema       text NOT NULL,
    logical_source_file text NOT NULL,
    ordinal             integer NOT NULL,
    source_column       text NOT NULL,
    target_column       text NOT NULL,
    data_type           text NOT NULL,
    is_required         boolean NOT NULL,
    PRIMARY KEY (client_schema, logical_source_file, target_column),
    FOREIGN KEY (client_schema, logical_source_file)
        REFERENCES tools.client_config (client_schema, logical_source_file) ON DELETE CASCADE
);

CREATE OR REPLACE VIEW tools.required_columns AS
SELECT client_schema, logical_source_file, source_column, target_column
FROM tools.column_mapping
WHERE is_required;

-- Silver transformations, gold integrations and view refreshes, in run order.
CREATE TABLE IF NOT EXISTS tools.sql_step_config (
    client_schema   text NOT NULL,
    layer           text NOT NULL CHECK (layer IN ('silver', 'gold', 'views')),
    step_name       text NOT NULL,
    sql_file        text,
    target_table    text NOT NULL,
    run_order       integer NOT NULL,
    depends_on      text[] NOT NULL DEFAULT '{}',
    config_version  text NOT NULL,
    PRIMARY KEY (client_schema, layer, step_name)
);
CREATE OR REPLACE VIEW tools.transformation_config AS
    SELECT * FROM tools.sql_step_config WHERE layer = 'silver';
CREATE OR REPLACE VIEW tools.integration_config AS
    SELECT * FROM tools.sql_step_config WHERE layer = 'gold';
CREATE OR REPLACE VIEW tools.mv_refresh_config AS
    SELECT * FROM tools.sql_step_config WHERE layer = 'views';
CREATE OR REPLACE VIEW tools.integration_dependencies AS
    SELECT client_schema, step_name, unnest(depends_on) AS depends_on
    FROM tools.sql_step_config WHERE layer = 'gold';

-- ---------------------------------------------------------------- batches
CREATE TABLE IF NOT EXISTS tools.batch (
    client_schema   text NOT NULL REFERENCES tools.client_reference (client_schema),
    batch_id        text NOT NULL CHECK (batch_id ~ '^BATCH[0-9]{6,}$'),
    status          text NOT NULL DEFAULT 'RUNNING'
                    CHECK (status IN ('RUNNING', 'SUCCESS', 'PARTIAL', 'FAILED')),
    mode            text NOT NULL,
    config_version  text NOT NULL,
    manifest_path   text,
    message         text,
    started_at      timestamptz NOT NULL DEFAULT now(),
    ended_at        timestamptz,
    PRIMARY KEY (client_schema, batch_id)
);

-- Every DAG run that worked on a batch. A run owns exactly one batch, so clearing
-- open_batch returns the same batch id.
CREATE TABLE IF NOT EXISTS tools.batch_run (
    client_schema   text NOT NULL,
    dag_run_id      text NOT NULL,
    batch_id        text NOT NULL,
    mode            text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (client_schema, dag_run_id),
    FOREIGN KEY (client_schema, batch_id) REFERENCES tools.batch (client_schema, batch_id)
);

-- ---------------------------------------------------------------- audit and logs
CREATE TABLE IF NOT EXISTS tools.file_audit_log (
    client_schema               text NOT NULL,
    batch_id                    text NOT NULL,
    logical_source_file         text NOT NULL,
    source_system               text NOT NULL,
    physical_file_name          text,
    parquet_name                text,
    file_size_bytes             bigint,
    convert_status              text,
    mapping_validation_status   text,
    row_validation_status       text,
    load_status                 text,
    total_rows                  bigint,
    rejected_rows               bigint,
    loaded_rows                 bigint,
    error_message               text,
    created_at                  timestamptz NOT NULL DEFAULT now(),
    updated_at                  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (client_schema, batch_id, logical_source_file),
    FOREIGN KEY (client_schema, batch_id) REFERENCES tools.batch (client_schema, batch_id)
);

-- One row per task attempt.
CREATE TABLE IF NOT EXISTS tools.job_execution_log (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    client_schema   text NOT NULL,
    batch_id        text,
    dag_run_id      text,
    task_id         text NOT NULL,
    try_number      integer,
    status          text NOT NULL CHECK (status IN ('RUNNING', 'SUCCESS', 'FAILED', 'SKIPPED')),
    rows_processed  bigint,
    message         text,
    started_at      timestamptz NOT NULL DEFAULT now(),
    ended_at        timestamptz
);
CREATE INDEX IF NOT EXISTS job_execution_log_batch_idx
    ON tools.job_execution_log (client_schema, batch_id);

CREATE TABLE IF NOT EXISTS tools.mapping_validation_log (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    client_schema       text NOT NULL,
    batch_id            text NOT NULL,
    logical_source_file text NOT NULL,
    status              text NOT NULL,
    missing_columns     text[] NOT NULL DEFAULT '{}',
    extra_columns       text[] NOT NULL DEFAULT '{}',
    message             text,
    logged_at           timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS tools.row_validation_log (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    client_schema       text NOT NULL,
    batch_id            text NOT NULL,
    logical_source_file text NOT NULL,
    status              text NOT NULL,
    total_rows          bigint NOT NULL,
    rejected_rows       bigint NOT NULL,
    duplicate_keys      bigint NOT NULL,
    message             text,
    logged_at           timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS tools.load_error_log (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    client_schema       text NOT NULL,
    batch_id            text NOT NULL,
    logical_source_file text NOT NULL,
    stage               text NOT NULL,
    target_table        text,
    error_message       text NOT NULL,
    logged_at           timestamptz NOT NULL DEFAULT now()
);

-- Dead letters: rows that failed validation, with where they came from and why.
CREATE TABLE IF NOT EXISTS tools.rejected_rows (
    client_schema       text NOT NULL,
    batch_id            text NOT NULL,
    logical_source_file text NOT NULL,
    physical_file_name  text NOT NULL,
    source_row_number   bigint NOT NULL,
    column_name         text,
    reason              text NOT NULL,
    raw_record          jsonb NOT NULL,
    rejected_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (client_schema, batch_id, logical_source_file, source_row_number)
);

-- SQL steps (silver transformations, gold integrations, view refreshes): one row per attempt.
CREATE TABLE IF NOT EXISTS tools.sql_step_log (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    client_schema   text NOT NULL,
    batch_id        text NOT NULL,
    layer           text NOT NULL CHECK (layer IN ('silver', 'gold', 'views')),
    step_name       text NOT NULL,
    sql_file        text,
    target_table    text NOT NULL,
    status          text NOT NULL CHECK (status IN ('RUNNING', 'SUCCESS', 'FAILED')),
    rows_in_batch   bigint,
    try_number      integer,
    error_message   text,
    started_at      timestamptz NOT NULL DEFAULT now(),
    ended_at        timestamptz
);
CREATE INDEX IF NOT EXISTS sql_step_log_batch_idx ON tools.sql_step_log (client_schema, batch_id);
CREATE OR REPLACE VIEW tools.transformation_log AS
    SELECT * FROM tools.sql_step_log WHERE layer = 'silver';
CREATE OR REPLACE VIEW tools.integration_log AS
    SELECT * FROM tools.sql_step_log WHERE layer = 'gold';
CREATE OR REPLACE VIEW tools.mv_refresh_log AS
    SELECT * FROM tools.sql_step_log WHERE layer = 'views';
