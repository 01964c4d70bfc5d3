"""Airflow DAGs: one ETL DAG per client config in include/clients/ (the factory:
include/etl/orchestration/factory.py)."""

from airflow.sdk import get_parsing_context

from include.etl.orchestration.factory import build_all

# A worker running a task of one client builds only that client's DAG.
dags, config_errors = build_all(only=get_parsing_context().dag_id)
globals().update(dags)
