#!/bin/sh
# Run by the MySQL image's entrypoint once, on the first start with an empty data volume,
# after it created $MYSQL_USER. Temporal's account gets rights on its two databases and
# nothing else: it never needs root, and MySQL's root password is random and unused.
# (Sourced, not executed, so the entrypoint's docker_process_sql runs it as root over the
# init server's socket.)
docker_process_sql --database=mysql <<EOSQL
CREATE DATABASE IF NOT EXISTS \`temporal\`;
CREATE DATABASE IF NOT EXISTS \`temporal_visibility\`;
GRANT ALL PRIVILEGES ON \`temporal\`.* TO '${MYSQL_USER}'@'%';
GRANT ALL PRIVILEGES ON \`temporal_visibility\`.* TO '${MYSQL_USER}'@'%';
EOSQL
