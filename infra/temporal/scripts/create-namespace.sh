#!/bin/sh
# One-shot job (temporalio/admin-tools) for docker-compose.temporal.yml, started once the
# server is healthy: creates Meridian's namespace and registers its search attributes.
# MERIDIAN_SEARCH_ATTRIBUTES lists them as NAME=Type, space-separated; it must match
# meridian/tasks/contracts.py SEARCH_ATTRIBUTES (tests/deploy/test_compose.py checks).
# Idempotent: what exists is left alone; any other failure exits non-zero so that
# `docker compose up` reports it (and the restart policy retries a few times).
set -eu
: "${TEMPORAL_ADDRESS:?}" "${TEMPORAL_NAMESPACE:?}" "${MERIDIAN_SEARCH_ATTRIBUTES:?}"
ns="$TEMPORAL_NAMESPACE"

if temporal operator namespace describe --namespace "$ns" >/dev/null 2>&1; then
  echo "namespace $ns exists"
else
  temporal operator namespace create --namespace "$ns" \
    --retention "${TEMPORAL_NAMESPACE_RETENTION:-7d}"
  echo "namespace $ns created"
fi

existing=$(temporal operator search-attribute list --namespace "$ns")
for pair in $MERIDIAN_SEARCH_ATTRIBUTES; do
  name=${pair%%=*}
  type=${pair#*=}
  if printf '%s\n' "$existing" | grep -qw -- "$name"; then
    echo "search attribute $name exists"
  else
    temporal operator search-attribute create --namespace "$ns" --name "$name" --type "$type"
    echo "search attribute $name ($type) registered"
  fi
done
