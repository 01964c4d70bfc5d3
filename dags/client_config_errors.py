"""Airflow DAG import errors for broken client configs.

The client DAGs are built in client_pipelines_<k>.py from every config that is valid. This
file raises the errors of the others, so each shows in the UI's import errors naming the
config file and the field, while every valid client's DAG keeps running.
"""

from include.etl.config import load_clients

_, errors = load_clients()
if errors:
    raise ValueError("invalid client config: " + " | ".join(errors[name] for name in sorted(errors)))
