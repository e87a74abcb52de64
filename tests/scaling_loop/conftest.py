"""Every scenario here runs the real engine against real Temporal, kubesim and MariaDB."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import mariadb_available


@pytest.fixture(autouse=True)
def _mariadb() -> None:
    if not mariadb_available():
        pytest.fail("MariaDB is not answering on 127.0.0.1:3306 (.ci/run starts it)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)
