#!/bin/sh
# One-shot schema job (temporalio/admin-tools) for docker-compose.temporal.yml: brings the
# `temporal` and `temporal_visibility` databases to the schema of the pinned server.
# Safe to re-run: setup-schema keeps a newer recorded version, and update-schema applies
# only the versions above it, which is also how a server upgrade migrates the schema.
# Connection and credentials come from the environment temporal-sql-tool reads
# (SQL_PLUGIN, SQL_HOST, SQL_PORT, SQL_USER, SQL_PASSWORD), so no password is in argv.
set -eu
: "${SQL_HOST:?}" "${SQL_USER:?}" "${SQL_PASSWORD:?}"
schema=/etc/temporal/schema/mysql/v8

for db in temporal temporal_visibility; do
  case "$db" in
    temporal) versioned="$schema/temporal/versioned" ;;
    *) versioned="$schema/visibility/versioned" ;;
  esac
  echo "schema of $db: setting up"
  temporal-sql-tool --db "$db" setup-schema -v 0.0
  temporal-sql-tool --db "$db" update-schema -d "$versioned"
done
echo "schema ready"
