-- docker-compose: the warehouse database beside Airflow's metadata database.
CREATE DATABASE warehouse OWNER airflow;
