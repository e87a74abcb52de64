"""Run the Alembic migrations that ship inside the package, without an alembic.ini."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, text

from meridian.store.db import Database

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
# MySQL DDL is not transactional, so concurrent start-ups take a named lock instead.
MYSQL_MIGRATION_LOCK = "meridian.migrate"
MYSQL_MIGRATION_LOCK_TIMEOUT_S = 300


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def upgrade_to_head(db: Database) -> None:
    config = alembic_config()
    # On SQLite the write engine begins with BEGIN IMMEDIATE: a second process starting
    # at the same moment waits, then finds the schema at head and does nothing.
    with db.write_engine.connect() as connection:
        if db.is_mysql:
            acquired = connection.execute(
                text("SELECT GET_LOCK(:name, :timeout)"),
                {"name": MYSQL_MIGRATION_LOCK, "timeout": MYSQL_MIGRATION_LOCK_TIMEOUT_S},
            ).scalar()
            if acquired != 1:
                raise TimeoutError("another process holds the migration lock")
            connection.commit()
        try:
            with migrating(db, connection):
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
        finally:
            if db.is_mysql:
                connection.execute(
                    text("SELECT RELEASE_LOCK(:name)"), {"name": MYSQL_MIGRATION_LOCK}
                )
                connection.commit()


@contextmanager
def migrating(db: Database, connection: Connection) -> Iterator[None]:
    """The transaction a migration runs in (the API's start-up and the alembic CLI).

    On SQLite, Alembic's batch mode rebuilds a table (new table, copy, drop the old one),
    and with foreign keys on, dropping `tasks` would cascade and delete every task's
    events and placements. The pragma is a no-op inside a transaction, so it is turned
    off on the bare connection before the transaction begins, what it let through is
    checked before the commit, and it is turned back on before the connection returns
    to the pool."""
    if db.is_mysql:
        with connection.begin():
            yield
        return
    dbapi = connection.connection.dbapi_connection
    assert dbapi is not None
    dbapi.execute("PRAGMA foreign_keys=OFF")
    try:
        with connection.begin():
            yield
            broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise RuntimeError(f"the migration broke foreign keys: {broken[:5]}")
    finally:
        dbapi.execute("PRAGMA foreign_keys=ON")


def current_revision(db: Database) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with db.engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()
