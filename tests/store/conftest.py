"""Every store test runs on SQLite (a temporary file) and on MariaDB (a fresh database).

MariaDB databases are created per test session (`meridian_t_<random>`), migrated once
and emptied before each test; the migration tests create their own empty databases.
"""

from __future__ import annotations

import secrets
import socket
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pymysql
import pytest
from sqlalchemy import delete

from meridian.store import Store, TaskRecord
from meridian.store.schema import Base
from meridian.tasks.spec import TaskSpec

MARIADB_HOST = "127.0.0.1"
MARIADB_PORT = 3306
BACKENDS = ["sqlite", "mariadb"]


def _mariadb_answers() -> bool:
    try:
        with socket.create_connection((MARIADB_HOST, MARIADB_PORT), timeout=1):
            return True
    except OSError:
        return False


class MariaDBDatabases:
    """Creates throw-away databases as root and drops them all at the end."""

    def __init__(self) -> None:
        self.created: list[str] = []

    def _admin(self) -> pymysql.Connection[Any]:
        return pymysql.connect(host=MARIADB_HOST, port=MARIADB_PORT, user="root", autocommit=True)

    def create(self) -> str:
        name = f"meridian_t_{secrets.token_hex(6)}"
        with self._admin() as conn, conn.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
        self.created.append(name)
        return f"mysql+pymysql://root@{MARIADB_HOST}:{MARIADB_PORT}/{name}"

    def drop_all(self) -> None:
        with self._admin() as conn, conn.cursor() as cursor:
            for name in self.created:
                cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")


@pytest.fixture(scope="session")
def mariadb() -> Iterator[MariaDBDatabases]:
    if not _mariadb_answers():
        # Fail, not skip: half the store's tests are about MariaDB, and CI starts it.
        pytest.fail(
            f"MariaDB is not answering on {MARIADB_HOST}:{MARIADB_PORT} (.ci/run starts it)"
        )
    databases = MariaDBDatabases()
    yield databases
    databases.drop_all()


@pytest.fixture(scope="session")
def mariadb_shared_url(mariadb: MariaDBDatabases) -> str:
    url = mariadb.create()
    store = Store(url)
    store.migrate()
    store.close()
    return url


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def empty_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A URL to a database with no tables at all."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'meridian.db'}"
    databases: MariaDBDatabases = request.getfixturevalue("mariadb")
    return databases.create()


@pytest.fixture
def store_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A URL to a migrated, empty database."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'meridian.db'}"
        with Store(url) as store:
            store.migrate()
        return url
    url = str(request.getfixturevalue("mariadb_shared_url"))
    with Store(url) as cleaner, cleaner._db.write() as session:
        for table in reversed(Base.metadata.sorted_tables):
            session.execute(delete(table))
    return url


class Clock:
    """A controllable clock for the Store's own timestamps (created_at, updated_at)."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=UTC))


@pytest.fixture
def store(store_url: str, clock: Clock) -> Iterator[Store]:
    store = Store(store_url, clock=clock)
    yield store
    store.close()


def make_spec(name: str = "nightly-etl", **overrides: Any) -> TaskSpec:
    body: dict[str, Any] = {
        "name": name,
        "business_unit": "payments",
        "data_source": {"provider": "aws", "region": "us-east-1"},
        "job": {"image": "registry.local/etl:1.2", "command": ["python", "-m", "etl"]},
    }
    body.update(overrides)
    return TaskSpec.model_validate(body)


@pytest.fixture
def spec_factory() -> Callable[..., TaskSpec]:
    return make_spec


def fetch(store: Store, task_id: str) -> TaskRecord:
    """get_task for a task the test knows exists."""
    task = store.get_task(task_id)
    assert task is not None, task_id
    return task
