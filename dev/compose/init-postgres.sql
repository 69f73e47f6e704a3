-- One PostgreSQL server for the compose stack: Airflow's metadata, the customer source, analytics.
CREATE USER airflow WITH PASSWORD 'airflow';
CREATE DATABASE airflow OWNER airflow;
CREATE DATABASE customer_db OWNER airflow;
CREATE DATABASE analytics OWNER airflow;
