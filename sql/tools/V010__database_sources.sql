-- Database sources (include/etl/ingest/extract.py): each source's high-water mark, the
-- window each batch extracted, and a way for a SQL step to write a line into its task log.

-- The greatest (watermark, tie-break key) a successful bronze load of the source has
-- taken; moved in the transaction that commits those bronze rows, never backwards (an
-- older batch run again leaves it).
CREATE TABLE IF NOT EXISTS tools.watermarks (
    client_schema       text NOT NULL,
    logical_source_file text NOT NULL,
    watermark           timestamptz NOT NULL,
    tiebreak            text NOT NULL,
    batch_id            text NOT NULL,
    updated_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (client_schema, logical_source_file)
);

-- The window a batch extracts from a source, fixed when it first extracts (a cleared task
-- or a restart reads the same window again), and what the latest extract of it found.
CREATE TABLE IF NOT EXISTS tools.extract_window (
    client_schema       text NOT NULL,
    batch_id            text NOT NULL,
    logical_source_file text NOT NULL,
    full_load           boolean NOT NULL,
    lower_watermark     timestamptz,          -- NULL: no lower bound (a full load)
    lower_key           text,                 -- the mark's key when the bound is the mark itself
    upper_watermark     timestamptz,          -- the source's greatest watermark when planned
    planned_at          timestamptz NOT NULL DEFAULT now(),
    extracted_rows      bigint,
    last_watermark      timestamptz,          -- the window's greatest (watermark, key)
    last_key            text,
    extracted_at        timestamptz,
    PRIMARY KEY (client_schema, batch_id, logical_source_file)
);
CREATE INDEX IF NOT EXISTS extract_window_recent_idx
    ON tools.extract_window (client_schema, logical_source_file, batch_id DESC);

-- A SQL step's note for its task log: SELECT shared.note(format(...)) logs the text
-- (a NOTICE, which the SQL step writes into the log as it runs).
CREATE OR REPLACE FUNCTION shared.note(message text)
RETURNS void
LANGUAGE plpgsql VOLATILE
AS $$
BEGIN
    RAISE NOTICE '%', message;
END
$$;
