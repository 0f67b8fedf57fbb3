#!/bin/sh
# Run once by the postgres image, on its first start with an empty data volume (/docker-entrypoint-initdb.d/):
# two login roles, neither a superuser, each owning one database:
#   sohoa   (SOHOA_DB_PASSWORD)   database sohoa   — catalog, batch registry and work queue, accounts, audit trail
#   prefect (PREFECT_DB_PASSWORD) database prefect — Prefect's server (its migrations enable pg_trgm, a trusted
#                                                    extension a database owner may create)
# Names can be changed with SOHOA_DB_USER/SOHOA_DB_NAME/PREFECT_DB_USER/PREFECT_DB_NAME. Passwords are read by psql
# from the environment (\getenv), never put on a command line. Later changes of the passwords in .env do not reach
# an existing volume: ALTER ROLE … PASSWORD by hand.
set -eu
: "${SOHOA_DB_PASSWORD:?set SOHOA_DB_PASSWORD}" "${PREFECT_DB_PASSWORD:?set PREFECT_DB_PASSWORD}"
export SOHOA_DB_USER="${SOHOA_DB_USER:-sohoa}" SOHOA_DB_NAME="${SOHOA_DB_NAME:-sohoa}"
export PREFECT_DB_USER="${PREFECT_DB_USER:-prefect}" PREFECT_DB_NAME="${PREFECT_DB_NAME:-prefect}"
psql -v ON_ERROR_STOP=1 --no-password --username "$POSTGRES_USER" --dbname "${POSTGRES_DB:-postgres}" <<'SQL'
\getenv sohoa_user SOHOA_DB_USER
\getenv sohoa_db SOHOA_DB_NAME
\getenv sohoa_pw SOHOA_DB_PASSWORD
\getenv prefect_user PREFECT_DB_USER
\getenv prefect_db PREFECT_DB_NAME
\getenv prefect_pw PREFECT_DB_PASSWORD
CREATE ROLE :"sohoa_user" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'sohoa_pw';
CREATE DATABASE :"sohoa_db" OWNER :"sohoa_user" ENCODING 'UTF8' TEMPLATE template0;
REVOKE ALL ON DATABASE :"sohoa_db" FROM PUBLIC;
CREATE ROLE :"prefect_user" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'prefect_pw';
CREATE DATABASE :"prefect_db" OWNER :"prefect_user" ENCODING 'UTF8' TEMPLATE template0;
REVOKE ALL ON DATABASE :"prefect_db" FROM PUBLIC;
SQL
