"""The Airflow side: the DAG factory, every task, and the functions the tasks run."""
