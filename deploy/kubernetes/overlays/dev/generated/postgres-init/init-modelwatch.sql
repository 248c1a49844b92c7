-- Runs once, when the PostgreSQL volume is first initialised (docker-entrypoint-initdb.d).
-- POSTGRES_DB (mlflow) holds MLflow's tracking and registry store; the prediction log
-- (MODELWATCH_STORE_URL) gets a database of its own.
CREATE DATABASE modelwatch;
