"""The operator console: pages over the warehouse's ``tools`` log, served by Airflow's
api-server as a plugin (``plugins/etl_console.py``)."""
