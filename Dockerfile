# The Airflow image for docker-compose (and a starting point for a production image):
# the official Airflow 3.3.2 image plus this package's pinned dependencies.
FROM apache/airflow:3.3.2-python3.11
COPY requirements.txt constraints.txt /tmp/cp/
RUN pip install --no-cache-dir -r /tmp/cp/requirements.txt -c /tmp/cp/constraints.txt
