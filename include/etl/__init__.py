"""The ETL product: a client's batch from delivered files to gold, as plain typed functions.

Module map, in the order a batch meets them (each layer imports only the ones below it;
``make lint`` checks it):

- ``orchestration``: the only Airflow code. ``factory`` builds one DAG per client,
  ``operators`` holds every task, ``tasks`` says what each Python task does, and
  ``connections`` opens the warehouse connection of a running task.
- ``batches``: batch ids, claiming the delivered files, manifests, closing a batch.
- ``warehouse``: PostgreSQL. ``migrations`` (schemas, bronze tables, config sync),
  ``sqlstep`` (one silver / gold / view step), ``quality`` (the gates' checks),
  ``audit`` (the ``tools`` log tables), ``connection``.
- ``ingest``: a delivery file by file. ``landing`` (folders and moves), ``convert``
  (to Parquet), ``validation`` (columns, rows, dead letters), ``bronze`` (COPY).
- ``config``: the typed client config, read from ``include/clients``.
"""
