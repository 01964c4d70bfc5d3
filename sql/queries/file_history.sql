-- What happened to file X in batch Y: one row with every stage's outcome.
-- Parameters: %(client)s, %(batch_id)s, %(file)s (the logical file name).
SELECT f.logical_source_file,
       f.physical_file_name,
       f.parquet_name,
       f.convert_status,
       f.mapping_validation_status,
       f.row_validation_status,
       f.load_status,
       f.total_rows,
       f.rejected_rows,
       f.loaded_rows,
       f.error_message,
       (SELECT count(*) FROM tools.job_execution_log j
         WHERE j.client_schema = f.client_schema AND j.batch_id = f.batch_id
           AND j.task_id LIKE f.logical_source_file || '.%%') AS task_attempts,
       b.status AS batch_status
FROM tools.file_audit_log f
JOIN tools.batch b USING (client_schema, batch_id)
WHERE f.client_schema = %(client)s
  AND f.batch_id = %(batch_id)s
  AND f.logical_source_file = %(file)s;
