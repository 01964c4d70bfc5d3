"""Client DAGs, shard 7 of 8: the clients whose name hashes here
(include/etl/config.py: shard_of). Eight small files rather than one, so the DAG
processor parses them in parallel and no file comes near the import timeout."""

from airflow.sdk import get_parsing_context

from include.etl.orchestration.factory import build_shard

# A worker running a task of one client builds only that client's DAG (if it is here).
dags, config_errors = build_shard(__file__, only=get_parsing_context().dag_id)
globals().update(dags)
