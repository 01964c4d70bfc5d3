# The Airflow image of this repository: Airflow 3.3 plus the pinned dependencies.
FROM apache/airflow:3.3.2-python3.11
COPY requirements.txt constraints.txt /
RUN pip install --no-cache-dir -r /requirements.txt -c /constraints.txt
