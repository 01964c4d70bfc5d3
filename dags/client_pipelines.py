"""Airflow DAGs: one ETL DAG per client config in include/clients/ (see include/factory.py)."""

from include.factory import build_all

dags, config_errors = build_all()
globals().update(dags)
