#!/bin/bash
# One database per service, owned by POSTGRES_USER. The postgres image runs this on an empty data
# volume only; it is idempotent, so after adding a service to HELPDESK_DATABASES run it again with
#   docker-compose exec postgres bash /docker-entrypoint-initdb.d/10-create-databases.sh
set -euo pipefail

for db in ${HELPDESK_DATABASES:-tickets gateway intake routing kb analytics surveys}; do
    psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres <<-SQL
	SELECT 'CREATE DATABASE "$db" OWNER "$POSTGRES_USER"'
	WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$db')\gexec
	SQL
done
