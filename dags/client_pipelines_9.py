"""Client DAGs, shard 9 of 16: the clients whose name hashes here
(include/etl/config.py: shard_of). Sixteen small files rather than one, so the DAG
processor parses them in parallel and no file comes near the import timeout."""

# The Airflow modules the factory builds with, named here so that the DAG processor
# imports them once, in the process it forks each parse from ([dag_processor]
# parsing_pre_import_modules), instead of in every parse of every file.
import airflow.providers.common.sql.operators.sql
import airflow.providers.standard.decorators.python
import airflow.providers.standard.operators.empty
import airflow.sdk.bases.sensor
import airflow.sdk.definitions.decorators
import airflow.sdk.definitions.timetables.trigger
import airflow.triggers.base
from airflow.sdk import get_parsing_context

from include.etl.orchestration.factory import build_shard

# A worker running a task of one client builds only that client's DAG (if it is here).
dags, config_errors = build_shard(__file__, only=get_parsing_context().dag_id)
globals().update(dags)
