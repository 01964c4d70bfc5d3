-- docker-compose: the warehouse database beside Airflow's metadata database.
--
-- Least privilege: the pipelines connect as the role `etl`, which owns `warehouse` and
-- nothing else; the superuser `airflow` (POSTGRES_USER) keeps Airflow's metadata.
--
-- The postgres image runs this once, on an empty data volume, as
-- `psql -v ON_ERROR_STOP=1 --username airflow --dbname airflow -f <this file>`. The
-- password comes from ETL_DB_PASSWORD in the postgres service's environment, read with
-- psql's \getenv (PostgreSQL 15+), so no shell wrapper is needed and the password is
-- quoted as an SQL literal by :'etl_password'.
\getenv etl_password ETL_DB_PASSWORD
\if :{?etl_password}
\else
DO $$ BEGIN RAISE EXCEPTION 'ETL_DB_PASSWORD is not set in the postgres service environment'; END $$;
\endif

CREATE ROLE etl LOGIN PASSWORD :'etl_password';
\unset etl_password
-- Byte-order collation (C) with UTF-8 character classes: text sorts and indexes on keys
-- compare with memcmp, in the same order as C.UTF-8 (docs/benchmarks.md).
CREATE DATABASE warehouse OWNER etl
    TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C.UTF-8';
-- client4's demo source database (an application's database, read incrementally).
CREATE DATABASE app_source OWNER etl TEMPLATE template0 ENCODING 'UTF8';
-- Only the owner (and superusers) may connect to these databases.
REVOKE ALL ON DATABASE warehouse FROM PUBLIC;
REVOKE ALL ON DATABASE app_source FROM PUBLIC;
REVOKE ALL ON DATABASE airflow FROM PUBLIC;
