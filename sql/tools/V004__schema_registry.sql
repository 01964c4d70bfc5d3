-- Issue #4: bad input gets a clear error, and nothing is lost.
--
-- Schema registry: the expected schema of every logical file, versioned. A new version
-- is recorded whenever the config's columns (source name, target, type, required)
-- change; validate_mapping compares each delivered file with the latest version.
CREATE TABLE IF NOT EXISTS tools.schema_registry (
    client_schema       text NOT NULL,
    logical_source_file text NOT NULL,
    version             integer NOT NULL CHECK (version > 0),
    schema_hash         text NOT NULL,
    columns             jsonb NOT NULL,   -- [{source, target, type, required}, ...] in order
    config_version      text NOT NULL,
    registered_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (client_schema, logical_source_file, version)
);

-- Drift between a delivered file and its registered schema, and what the file's
-- schema_drift policy did about it.
CREATE TABLE IF NOT EXISTS tools.schema_drift_log (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    client_schema       text NOT NULL,
    batch_id            text NOT NULL,
    logical_source_file text NOT NULL,
    physical_file_name  text,
    schema_version      integer NOT NULL,
    policy              text NOT NULL CHECK (policy IN ('fail', 'accept_additive')),
    added_columns       text[] NOT NULL DEFAULT '{}',
    missing_columns     text[] NOT NULL DEFAULT '{}',
    retyped_columns     jsonb NOT NULL DEFAULT '[]',  -- [{column, registered, delivered, sample}]
    action              text NOT NULL CHECK (action IN ('ACCEPTED', 'FAILED')),
    message             text NOT NULL,
    logged_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS schema_drift_log_batch_idx
    ON tools.schema_drift_log (client_schema, batch_id);

-- The content checksum of each delivered file: the same file delivered twice is refused.
ALTER TABLE tools.file_audit_log ADD COLUMN IF NOT EXISTS file_sha256 text;
CREATE INDEX IF NOT EXISTS file_audit_log_sha256_idx
    ON tools.file_audit_log (client_schema, logical_source_file, file_sha256);

-- How each DAG run that worked on a batch ended (SUCCESS, PARTIAL or FAILED).
ALTER TABLE tools.batch_run ADD COLUMN IF NOT EXISTS status text
    CHECK (status IN ('SUCCESS', 'PARTIAL', 'FAILED'));
ALTER TABLE tools.batch_run ADD COLUMN IF NOT EXISTS message text;
ALTER TABLE tools.batch_run ADD COLUMN IF NOT EXISTS ended_at timestamptz;
