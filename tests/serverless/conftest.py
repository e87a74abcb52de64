"""The engine harness's fixtures (tests/integration), for the end-to-end burst tests."""

from tests.integration.conftest import engine, kubesim, mariadb_url

__all__ = ["engine", "kubesim", "mariadb_url"]
