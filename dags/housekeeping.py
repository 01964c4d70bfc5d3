"""Airflow DAG ``housekeeping``: each client's retention and Airflow's metadata, daily
(see include/etl/orchestration/housekeeping.py)."""

from airflow.sdk import get_parsing_context

from include.etl.orchestration.housekeeping import DAG_ID, build_housekeeping

# A worker running a client's task needs no housekeeping DAG.
if get_parsing_context().dag_id in (None, DAG_ID):
    housekeeping = build_housekeeping()
