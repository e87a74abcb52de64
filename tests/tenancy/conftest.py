"""The store's backends (a SQLite file and a fresh MariaDB database) for the quota tests."""

from tests.store.conftest import (  # noqa: F401  (fixtures, used by name)
    backend,
    clock,
    mariadb,
    mariadb_shared_url,
    store,
    store_url,
)
